#!/usr/bin/env bash
# Every picture and number of "What did it learn?"
# (docs/user_guides/analysis_tools.md), from the main job's own output:
#
#   bash tools/run_demo.sh --with-baseline      # the main job + vanilla twin
#   bash tools/analysis_tools/what_it_learned.sh [--seeds SUMMARY_JSON]
#
# Writes under OUT (default work_dirs/what_it_learned): dilation/ and
# dilation_val/ (dilation maps of a 128x128 and a 64x64 image), stats/
# (statistics over the validation set), rf/ (receptive fields, PAD and
# regular), activation/, and summary.{md,json} (the guide's tables, by
# learned_summary.py). --seeds takes a sweep's summary.json of the demo
# configs (tools/analysis_tools/sweep.py, see the README's main job) for
# the spread between seeds. --update-docs then copies the pictures to
# docs/images/ and the JSON files and tables to docs/what_it_learned/
# (what the repository's guide shows).
#
# PAD_DIR / REG_DIR (default work_dirs/<config name>) name the runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
PAD_CFG=configs/demo/pad_deeplabv3plus_r18_textures.py
REG_CFG=configs/demo/deeplabv3plus_r18_textures.py
PAD_DIR=${PAD_DIR:-work_dirs/pad_deeplabv3plus_r18_textures}
REG_DIR=${REG_DIR:-work_dirs/deeplabv3plus_r18_textures}
OUT=${OUT:-work_dirs/what_it_learned}
SEEDS=
UPDATE_DOCS=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seeds) SEEDS=${2:?--seeds needs a summary.json}; shift ;;
        --update-docs) UPDATE_DOCS=1 ;;
        *) echo "what_it_learned.sh: unknown argument $1 (allowed:" \
                "--seeds SUMMARY_JSON, --update-docs)" >&2; exit 2 ;;
    esac
    shift
done
for dir in "$PAD_DIR" "$REG_DIR"; do
    if [[ ! -f "$dir/last_checkpoint" ]]; then
        echo "what_it_learned.sh: no $dir/last_checkpoint; train both" \
             "models first: bash tools/run_demo.sh --with-baseline" >&2
        exit 1
    fi
done
if [[ -n "$SEEDS" && ! -f "$SEEDS" ]]; then
    echo "what_it_learned.sh: --seeds $SEEDS: no such file" >&2
    exit 1
fi
PAD_CKPT=$(cat "$PAD_DIR/last_checkpoint")
REG_CKPT=$(cat "$REG_DIR/last_checkpoint")
rm -rf "$OUT"
# a 128x128 PAD-Textures image (the demo trains on 64x64 crops; the model is
# fully convolutional, and at 128x128 layer4 has 16x16 instead of 8x8 pixels)
$PY -c "from pad_mm.datasets.textures import make_textures_dataset as m; m('data/pad_textures_128', seed=5, num_train=1, num_val=4, size=128)"
IMG=data/pad_textures_128/images/val/000000.png
$PY tools/analysis_tools/visualize_dilation.py $PAD_CFG "$PAD_CKPT" $IMG --out-dir "$OUT/dilation"
$PY tools/analysis_tools/visualize_dilation.py $PAD_CFG "$PAD_CKPT" data/pad_textures/images/val/000000.png --out-dir "$OUT/dilation_val"
$PY tools/analysis_tools/dilation_stats.py $PAD_CFG "$PAD_CKPT" --out-dir "$OUT/stats"
$PY tools/analysis_tools/visualize_rf.py $PAD_CFG "$PAD_CKPT" $IMG --pixels 40,20 20,100 110,110 --baseline-config $REG_CFG --baseline-checkpoint "$REG_CKPT" --out-dir "$OUT/rf"
$PY tools/analysis_tools/visualize_activation.py $PAD_CFG "$PAD_CKPT" $IMG --baseline-config $REG_CFG --baseline-checkpoint "$REG_CKPT" --out-dir "$OUT/activation"
if [[ -n "$SEEDS" ]]; then
    cp "$SEEDS" "$OUT/seeds.json"
fi
$PY tools/analysis_tools/learned_summary.py "$OUT"

if [[ $UPDATE_DOCS == 1 ]]; then
    cp "$OUT/dilation/000000_dilation.png" docs/images/dilation_maps.png
    cp "$OUT/dilation_val/000000_dilation.png" docs/images/dilation_maps_val.png
    cp "$OUT/stats/dilation_stats.png" docs/images/dilation_stats.png
    cp "$OUT/rf/rf.png" docs/images/rf.png
    cp "$OUT/activation/activation.png" docs/images/activation.png
    DOCS=docs/what_it_learned
    rm -rf $DOCS
    mkdir -p $DOCS/dilation $DOCS/dilation_val $DOCS/stats $DOCS/rf $DOCS/activation
    cp "$OUT/dilation/000000_dilation.json" $DOCS/dilation/
    cp "$OUT/dilation_val/000000_dilation.json" $DOCS/dilation_val/
    cp "$OUT/stats/dilation_stats.json" $DOCS/stats/
    cp "$OUT/rf/rf.json" $DOCS/rf/
    cp "$OUT/activation/activation.json" $DOCS/activation/
    cp "$OUT/summary.md" "$OUT/summary.json" $DOCS/
    if [[ -f "$OUT/seeds.json" ]]; then cp "$OUT/seeds.json" $DOCS/; fi
    echo "copied the pictures to docs/images/ and the numbers to $DOCS/"
fi
