#!/usr/bin/env bash
# Benchmark the last N commits of main with asv (skipping those already
# measured), publish the HTML and serve it; or only publish and serve the
# results already committed.
#
#   tools/asv_history.sh [N] [--slice] [--no-preview] [--port P] [asv run options...]
#   tools/asv_history.sh --publish-only [--no-preview] [--port P]
#
# The options come in any order; whatever this script does not know goes to
# `asv run` as it is, and so does everything after `--`.  N (default 5) is
# the first bare number that is not the value of an asv option
# (`-s 3`, `--steps 3`, `-j 2`; `--steps=3` is always taken whole).
#
# --slice benchmarks only the representative subset listed in
# tools/asv_history_slice.txt (every kernel at 10^7 elements, float32,
# parallel, with out=; gelu, gelu_tanh and gelu_backward also in float64,
# which is what the kernel graph opens on, both precisions; every float32
# gelu case; the peers at 10^7; accuracy, ratios, memory, import): about 8
# minutes a commit on 2 cores instead of about 45 for the whole suite.
#
# --publish-only runs nothing: `asv publish` of the results in
# benchmarks/results (committed), the offline step, then the preview.  A
# fresh clone needs only asv installed (no environment is built): seconds.
#
# --no-preview stops after publishing (the site is in .asv/html).
#
# --port P serves the preview on port P (default 8080, else the next free of
# the four after it; 0: any free port).
#
# Results go to benchmarks/results (one folder per machine; commit them), the
# site to .asv/html, finished by tools/asv_offline.py (one machine per graph,
# each graph's default view, local copies of the page's libraries).  The
# preview serves it on 127.0.0.1 only, so only this machine can open the
# address it prints (http://127.0.0.1:8080 by default); `asv preview` would
# listen on every interface.  Each commit is built as a wheel and installed
# in an environment of its own under .asv/env, with the peers (torch 2.13.0,
# SciPy) beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

n=
preview=1
port=8080
slice=0
publish_only=0
run_args=()
# asv run options that take a value as the next word (a number there is
# theirs, not N)
takes_value=" -b --bench -a --attribute --cpu-affinity -s --steps -j --parallel -E --environment --python --date-period --set-commit-hash --launch-method -m --machine --durations --config "
while (( $# )); do
    case "$1" in
        --slice) slice=1 ;;
        --no-preview) preview=0 ;;
        --publish-only) publish_only=1 ;;
        --port)
            if (( $# < 2 )) || ! [[ "$2" =~ ^[0-9]+$ ]]; then
                echo "asv_history.sh: --port takes a port number" >&2
                exit 2
            fi
            port=$2; shift ;;
        --port=*)
            port=${1#--port=}
            if ! [[ "$port" =~ ^[0-9]+$ ]]; then
                echo "asv_history.sh: --port takes a port number" >&2
                exit 2
            fi
            ;;
        -h|--help) usage; exit 0 ;;
        --) shift; run_args+=("$@"); break ;;
        *)
            if [[ -z "$n" && "$1" =~ ^[0-9]+$ ]] &&
               ! { (( ${#run_args[@]} )) && [[ "$takes_value" == *" ${run_args[-1]} "* ]]; }; then
                n=$1
            else
                run_args+=("$1")
            fi
            ;;
    esac
    shift
done
asv=${ASV:-asv}

if (( publish_only )); then
    if [[ -n "$n" ]] || (( slice )) || (( ${#run_args[@]} )); then
        echo "asv_history.sh: --publish-only runs nothing; it takes only --no-preview and --port" >&2
        exit 2
    fi
    if ! compgen -G "benchmarks/results/*/machine.json" > /dev/null; then
        echo "asv_history.sh: no results in benchmarks/results to publish;" \
             "run tools/asv_history.sh [N] [--slice] first" >&2
        exit 1
    fi
else
    selection=()
    if (( slice )); then
        while IFS= read -r regex; do
            [[ -n "$regex" ]] && selection+=(--bench "$regex")
        done < tools/asv_history_slice.txt
    fi
    n=${n:-5}
    "$asv" machine --yes > /dev/null
    count=$(git rev-list --count main)
    if (( n >= count )); then
        range="ALL"             # every commit
    else
        range="main~$n..main"   # the last n commits
    fi
    "$asv" run --skip-existing-commits --show-stderr "${selection[@]}" "$range" "${run_args[@]}"
fi
"$asv" publish
"${PYTHON:-python3}" tools/asv_offline.py .asv/html  # local libraries, default views
if (( preview )); then
    # not `asv preview`, which listens on every interface
    exec "${PYTHON:-python3}" tools/asv_offline.py --serve .asv/html --port "$port"
fi
