#!/usr/bin/env bash
# Install pad_mm and its pinned OpenMMLab stack into the current Python
# (use a virtualenv if you want isolation). Idempotent: steps whose packages
# are already at the right version are skipped; pip reuses its cached mmcv
# wheel, so a second run takes seconds.
#
#   bash tools/setup_env.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP="$PY -m pip install --disable-pip-version-check -q"

# prints the requirements of the list that are not met
missing() {
  $PY - "$@" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
from packaging.requirements import Requirement
for spec in sys.argv[1:]:
    req = Requirement(spec)
    try:
        v = version(req.name)
    except PackageNotFoundError:
        print(spec); continue
    if req.specifier and not req.specifier.contains(v, prereleases=True):
        print(spec)
PYEOF
}

$PY -c 'import packaging' 2>/dev/null || $PIP packaging

# 1. torch < 2.14 (mmcv 2.1.0 builds with C++17), a matching torchvision;
#    '!=2.13.0+cpu' keeps pip off a local CPU-only wheel without torchvision.
#    setuptools < 82 still ships pkg_resources (mmcv build, mmengine's
#    'mmseg::' config inheritance).
STEP1=("torch==2.13.0,!=2.13.0+cpu" "torchvision==0.28.0" "setuptools>=77,<82" wheel ninja)
if [ -n "$(missing "${STEP1[@]}")" ]; then $PIP "${STEP1[@]}"; fi
# 2. mmengine
if [ -n "$(missing mmengine==0.10.7)" ]; then $PIP mmengine==0.10.7; fi
# 3. full mmcv with ops, built from source (no wheels on PyPI); ~5 min once
if [ -n "$(missing mmcv==2.1.0)" ] || ! $PY -c 'import mmcv.ops' 2>/dev/null; then
  MMCV_WITH_OPS=1 $PIP --no-build-isolation mmcv==2.1.0
fi
# 4. the OpenMMLab codebases and what pad_mm's tools and tests use
STEP4=(mmsegmentation==1.2.2 mmpretrain==1.2.0 ftfy regex "matplotlib>=3.7"
       "pytest>=7" "pytest-xdist>=3.5" "onnx>=1.15" "onnxruntime>=1.17" "tensorboard>=2.14")
if [ -n "$(missing "${STEP4[@]}")" ]; then $PIP "${STEP4[@]}"; fi
#    openmim (`mim list / search / train pad_mm`) without its dependencies:
#    its opendatalab -> openxlab chain pins setuptools~=60.2, requests~=2.28,
#    rich~=13.4, tqdm~=4.65 and would downgrade them (the mim commands
#    pad_mm uses never import it); its other requirements are installed
MIM_DEPS=(click colorama model-index pandas tabulate rich requests)
if [ -n "$(missing "${MIM_DEPS[@]}")" ]; then $PIP "${MIM_DEPS[@]}"; fi
if [ -n "$(missing openmim==0.3.9)" ]; then $PIP --no-deps openmim==0.3.9; fi
# 5. pad_mm itself, editable (configs find it through custom_imports)
# (checked from another directory: the repo root itself is on sys.path here)
if ! (cd / && $PY - "$PWD" <<'PYEOF' 2>/dev/null
import os, sys, pad_mm
root = os.path.dirname(os.path.dirname(os.path.abspath(pad_mm.__file__)))
sys.exit(0 if os.path.samefile(root, sys.argv[1]) else 1)
PYEOF
)
then
  $PIP --no-deps --no-build-isolation -e .
fi
$PY - <<'PYEOF'
import torch, mmcv, mmengine, mmseg, mmpretrain, pad_mm
print(f'pad_mm {pad_mm.__version__}: torch {torch.__version__}, '
      f'mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
      f'mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}')
PYEOF
