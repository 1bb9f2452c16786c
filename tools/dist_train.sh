#!/usr/bin/env bash
# usage: tools/dist_train.sh CONFIG NUM_PROCS [train.py flags]
# Without CUDA the processes run on the CPU with the gloo backend.
# NNODES, NODE_RANK, PORT, MASTER_ADDR: see dist_env.sh.
CONFIG=$1
GPUS=$2
source "$(dirname "$0")/dist_env.sh"

dist_run "$GPUS" train.py "$CONFIG" --launcher pytorch "${@:3}"
