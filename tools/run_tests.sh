#!/usr/bin/env bash
# Set up (idempotent) and run the test suite: bash tools/run_tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
exec "${PYTHON:-python3}" -m pytest tests "$@"
