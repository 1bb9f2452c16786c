#!/usr/bin/env bash
# usage: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py flags]
# NNODES, NODE_RANK, PORT, MASTER_ADDR: see dist_env.sh.
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
source "$(dirname "$0")/dist_env.sh"

dist_run "$GPUS" test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
