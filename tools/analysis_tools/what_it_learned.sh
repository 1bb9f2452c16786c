#!/usr/bin/env bash
# Every picture and number of "What did it learn?"
# (docs/user_guides/analysis_tools.md), from the main job's own output:
#
#   bash tools/run_demo.sh --with-baseline      # the main job + vanilla twin
#   bash tools/analysis_tools/what_it_learned.sh \
#       [--seeds SUMMARY_JSON [--seeds-config NAME]] [--update-docs]
#
# Writes under OUT (default work_dirs/what_it_learned): dilation/ (the
# dilation maps of the first validation image against its right
# dilation), stats/ (statistics over the validation set), rf/ (receptive
# fields, PAD and regular), activation/, and summary.{md,json} (the
# guide's tables, by learned_summary.py). --seeds takes a sweep's
# summary.json with runs of the same config (--seeds-config: its name
# there) for the spread between seeds; the evidence sweep's
# evidence_pad_markov is the main job's PAD config. --update-docs then
# copies the pictures to docs/images/ and the JSON files and tables to
# docs/what_it_learned/ (what the repository's guide shows).
#
# PAD_CFG / REG_CFG (the main job's two configs), PAD_DIR / REG_DIR
# (default work_dirs/<config name>) and IMG name other runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
PAD_CFG=${PAD_CFG:-configs/demo/evidence/pad_fcn_patchnet_evidence.py}
REG_CFG=${REG_CFG:-configs/demo/evidence/fcn_patchnet_evidence.py}
PAD_DIR=${PAD_DIR:-work_dirs/$(basename "$PAD_CFG" .py)}
REG_DIR=${REG_DIR:-work_dirs/$(basename "$REG_CFG" .py)}
IMG=${IMG:-data/pad_evidence/images/val/000000.png}
OUT=${OUT:-work_dirs/what_it_learned}
SEEDS=()
UPDATE_DOCS=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seeds)
            [[ -f "${2:?--seeds needs a summary.json}" ]] || {
                echo "what_it_learned.sh: --seeds $2: no such file" >&2
                exit 1; }
            SEEDS+=(--seeds "$2"); shift ;;
        --seeds-config)
            SEEDS+=(--config-name "${2:?--seeds-config needs a name}")
            shift ;;
        --update-docs) UPDATE_DOCS=1 ;;
        *) echo "what_it_learned.sh: unknown argument $1 (allowed:" \
                "--seeds SUMMARY_JSON, --seeds-config NAME," \
                "--update-docs)" >&2; exit 2 ;;
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
# (relative to the repository: the JSON files name the checkpoints)
PAD_CKPT=$(realpath --relative-to=. "$(cat "$PAD_DIR/last_checkpoint")")
REG_CKPT=$(realpath --relative-to=. "$(cat "$REG_DIR/last_checkpoint")")
rm -rf "$OUT"
$PY tools/analysis_tools/visualize_dilation.py $PAD_CFG "$PAD_CKPT" $IMG --out-dir "$OUT/dilation"
$PY tools/analysis_tools/dilation_stats.py $PAD_CFG "$PAD_CKPT" --out-dir "$OUT/stats"
$PY tools/analysis_tools/visualize_rf.py $PAD_CFG "$PAD_CKPT" $IMG --baseline-config $REG_CFG --baseline-checkpoint "$REG_CKPT" --out-dir "$OUT/rf"
$PY tools/analysis_tools/visualize_activation.py $PAD_CFG "$PAD_CKPT" $IMG --baseline-config $REG_CFG --baseline-checkpoint "$REG_CKPT" --out-dir "$OUT/activation"
$PY tools/analysis_tools/learned_summary.py "$OUT" "${SEEDS[@]}"

if [[ $UPDATE_DOCS == 1 ]]; then
    STEM=$(basename "$IMG" .png)
    cp "$OUT/dilation/${STEM}_dilation.png" docs/images/dilation_maps.png
    cp "$OUT/stats/dilation_stats.png" docs/images/dilation_stats.png
    cp "$OUT/rf/rf.png" docs/images/rf.png
    cp "$OUT/activation/activation.png" docs/images/activation.png
    DOCS=docs/what_it_learned
    rm -rf $DOCS
    mkdir -p $DOCS/dilation $DOCS/stats $DOCS/rf $DOCS/activation
    cp "$OUT/dilation/${STEM}_dilation.json" $DOCS/dilation/
    cp "$OUT/stats/dilation_stats.json" $DOCS/stats/
    cp "$OUT/rf/rf.json" $DOCS/rf/
    cp "$OUT/activation/activation.json" $DOCS/activation/
    cp "$OUT/summary.md" "$OUT/summary.json" $DOCS/
    echo "copied the pictures to docs/images/ and the numbers to $DOCS/"
fi
