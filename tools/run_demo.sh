#!/usr/bin/env bash
# The main job: set up (idempotent), train the PAD model of the evidence
# setting (a PatchConvNet FCN whose three 3x3 convs are PAD layers) on the
# generated PAD-Evidence set (created under data/ on first use), evaluate
# the final checkpoint with tools/test.py, publish it (weights + plain
# meta, NAME-<sha256[:8]>.pth next to the checkpoints; see
# tools/publish_model.py).
#
#   bash tools/run_demo.sh                 # PAD model
#   bash tools/run_demo.sh configs/demo/evidence/fcn_patchnet_evidence.py
#                                          # the vanilla baseline (any config)
#   bash tools/run_demo.sh --with-baseline # both: PAD, then vanilla
#                                          # (the analysis tools' REG_CKPT)
#   bash tools/run_demo.sh --textures      # the first demo: PAD DeepLabV3+
#                                          # R18 on PAD-Textures
#   bash tools/run_demo.sh --cls           # the classification demo: PAD
#                                          # ResNet-18 on PAD-Textures-Cls
#   bash tools/run_demo.sh --cls --with-baseline
#
# Each model goes to work_dirs/<config name>/ (WORK_DIR=... sets it for a
# single model).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PAD_CONFIG=configs/demo/evidence/pad_fcn_patchnet_evidence.py
BASELINE_CONFIG=configs/demo/evidence/fcn_patchnet_evidence.py
WITH_BASELINE=0
while [[ $# -gt 0 && "$1" == --* ]]; do
    case "$1" in
        --cls)
            PAD_CONFIG=configs/demo_cls/pad_resnet18_textures_cls.py
            BASELINE_CONFIG=configs/demo_cls/resnet18_textures_cls.py ;;
        --textures)
            PAD_CONFIG=configs/demo/pad_deeplabv3plus_r18_textures.py
            BASELINE_CONFIG=configs/demo/deeplabv3plus_r18_textures.py ;;
        --with-baseline) WITH_BASELINE=1 ;;
        *) echo "run_demo.sh: unknown option $1 (allowed: --cls," \
                "--textures, --with-baseline)" >&2; exit 2 ;;
    esac
    shift
done
CONFIGS=("${1:-$PAD_CONFIG}")
if [[ $WITH_BASELINE == 1 ]]; then
    if [[ $# -gt 0 ]]; then
        echo "run_demo.sh: --with-baseline trains the demo and its vanilla" \
             "twin; it takes no CONFIG (got $1)" >&2
        exit 2
    fi
    if [[ -n "${WORK_DIR:-}" ]]; then
        echo "run_demo.sh: WORK_DIR names one model's folder; unset it" \
             "with --with-baseline (each model goes to work_dirs/<name>)" >&2
        exit 2
    fi
    CONFIGS+=("$BASELINE_CONFIG")
fi

bash tools/setup_env.sh
for CONFIG in "${CONFIGS[@]}"; do
    NAME=$(basename "$CONFIG" .py)
    DIR=${WORK_DIR:-work_dirs/$NAME}
    start=$(date +%s)
    $PY tools/train.py "$CONFIG" --work-dir "$DIR"
    end=$(date +%s)
    CKPT=$(cat "$DIR/last_checkpoint")
    $PY tools/test.py "$CONFIG" "$CKPT" --work-dir "$DIR/test"
    $PY tools/publish_model.py "$CKPT" "$DIR/$NAME.pth"
    echo "$NAME: train wall time: $((end - start)) s; checkpoint: $CKPT"
done
