#!/usr/bin/env bash
# Set up (idempotent) and run the test suite: bash tools/run_tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
# two pytest workers (one per core of the reference 2-core machine);
# PAD_MM_TEST_WORKERS=0 runs in one process
exec "${PYTHON:-python3}" -m pytest tests -n "${PAD_MM_TEST_WORKERS:-2}" "$@"
