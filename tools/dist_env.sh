# Sourced by dist_train.sh and dist_test.sh (mmseg's launch settings, read
# from the environment): NNODES, NODE_RANK, PORT, MASTER_ADDR.
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
TOOLS_DIR="$(dirname "${BASH_SOURCE[0]}")"

# dist_run NUM_PROCS SCRIPT [ARGS]: tools/SCRIPT ARGS in NUM_PROCS processes
# per node, started by torch.distributed.run.
dist_run() {
    PYTHONPATH="$TOOLS_DIR/..":$PYTHONPATH \
    python -m torch.distributed.run \
        --nnodes=$NNODES \
        --node_rank=$NODE_RANK \
        --master_addr=$MASTER_ADDR \
        --nproc_per_node=$1 \
        --master_port=$PORT \
        "$TOOLS_DIR/$2" \
        "${@:3}"
}
