#!/usr/bin/env bash
# The checks that need a GPU, prepared so that a session lent the device machine runs them in one call.
#
#   bash bench/device.sh prep        # here (PyPI reachable): wheels the device image lacks -> .whl/,
#                                    # the Multi30k mirror -> .data/multi30k (both git-ignored via .git/info/exclude)
#   device run: command "bash bench/device.sh run", carry [".whl", ".data"], timeout_s 600
#
# `run` writes to $OUT, step by step so that a step cut short by its time limit loses only itself:
#   beam_search_gpu.json   bench/beam_search.py at its defaults (batch 64, beam 5): the >= 10x goal of issue 4
#   multi30k_results.json  recipes/multi30k/results.json after `reproduce --only gru_bahdanau_de_en,...`
#                          (the 512-unit, 20-epoch run marked large, and its greedy retest)
#   run.log                everything printed
# Copy them back by hand: bench/results/beam_search_gpu.json, and the new rows into recipes/multi30k/results.json
# (`seqzoo reproduce recipes/multi30k --report-only` then rewrites results.md and the plot).
# The device image has torch, Lightning, torchmetrics, tokenizers, safetensors, sacrebleu and huggingface-hub;
# seqzoo's other needs for these two steps (datasets, jsonargparse) travel as wheels. seqzoo itself runs from
# the checkout (PYTHONPATH), not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 jsonargparse==4.53.0 docstring-parser==0.18.0
        typeshed-client==2.15.0 importlib-resources==7.1.0"

case "${1:-}" in
prep)
    for p in /.whl/ /.data/; do grep -qxF "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done
    rm -rf .whl && mkdir -p .whl .data
    # shellcheck disable=SC2086
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl $WHEELS
    src="${SEQZOO_DATA:-../shared/data}/multi30k/raw"
    [ -f "$src/train.de.gz" ] || { echo "no Multi30k mirror at $src (set SEQZOO_DATA)" >&2; exit 1; }
    mkdir -p .data/multi30k && cp -r "$src" .data/multi30k/
    du -sh .whl .data
    ;;
run)
    shift
    OUT="${OUT:-/tmp/seqzoo-device-out}"
    mkdir -p "$OUT"
    exec > >(tee "$OUT/run.log") 2>&1
    if compgen -G ".whl/*.whl" > /dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        export PYTHONPATH="/tmp/site:$PWD"
    else
        export PYTHONPATH="$PWD"
    fi
    export PYTHONUNBUFFERED=1 SEQZOO_DATA="$PWD/.data"
    nvidia-smi -L 2>/dev/null || echo "no nvidia-smi: running on $(uname -m) CPU"
    python3 -c "import torch, lightning, pyarrow; print('torch', torch.__version__, 'lightning', lightning.__version__, \
'pyarrow', pyarrow.__version__, 'cuda', torch.cuda.is_available())"
    # datasets 5.2 asks for pyarrow >= 24; the image's version is not on record: say now if it does not import
    # (the beam bench below needs neither)
    python3 -c "import datasets; print('datasets', datasets.__version__)" || echo "datasets does not import here"
    echo "== beam search, batched vs per sentence"
    timeout 180 python3 bench/beam_search.py --out "$OUT/beam_search_gpu.json" || echo "beam bench failed: $?"
    echo "== multi30k: the 512-unit Bahdanau model (20 epochs), beam 5 and greedy"
    # extra arguments go to LightningCLI (e.g. --trainer.max_steps 2 for a dry run on a CPU)
    timeout "${TRAIN_SECONDS:-400}" python3 -m seqzoo.cli reproduce recipes/multi30k \
        --only gru_bahdanau_de_en gru_bahdanau_de_en_greedy -- "$@" || echo "multi30k run failed or cut: $?"
    cp recipes/multi30k/results.json "$OUT/multi30k_results.json"
    ls -la "$OUT"
    ;;
*)
    echo "usage: bash bench/device.sh prep | run [LightningCLI overrides]" >&2
    exit 2
    ;;
esac
