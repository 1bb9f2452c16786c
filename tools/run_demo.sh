#!/usr/bin/env bash
# The main job: set up (idempotent), train the PAD DeepLabV3+ R18 demo on
# the generated PAD-Textures set (created under data/ on first use),
# evaluate the final checkpoint with tools/test.py, publish it (weights +
# plain meta, NAME-<sha256[:8]>.pth next to the checkpoints; see
# tools/publish_model.py).
#
#   bash tools/run_demo.sh                 # PAD model
#   bash tools/run_demo.sh configs/demo/deeplabv3plus_r18_textures.py
#                                          # the vanilla baseline
#   bash tools/run_demo.sh --cls           # the classification demo: PAD
#                                          # ResNet-18 on PAD-Textures-Cls
#   bash tools/run_demo.sh --cls configs/demo_cls/resnet18_textures_cls.py
#                                          # its vanilla baseline
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEFAULT_CONFIG=configs/demo/pad_deeplabv3plus_r18_textures.py
if [[ "${1:-}" == "--cls" ]]; then
    DEFAULT_CONFIG=configs/demo_cls/pad_resnet18_textures_cls.py
    shift
fi
CONFIG=${1:-$DEFAULT_CONFIG}
NAME=$(basename "$CONFIG" .py)
WORK_DIR=${WORK_DIR:-work_dirs/$NAME}

bash tools/setup_env.sh
start=$(date +%s)
$PY tools/train.py "$CONFIG" --work-dir "$WORK_DIR"
end=$(date +%s)
CKPT=$(cat "$WORK_DIR/last_checkpoint")
$PY tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/test"
$PY tools/publish_model.py "$CKPT" "$WORK_DIR/$NAME.pth"
echo "train wall time: $((end - start)) s; checkpoint: $CKPT"
