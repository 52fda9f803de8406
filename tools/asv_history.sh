#!/usr/bin/env bash
# Benchmark the last N commits of main with asv (skipping those already
# measured), publish the HTML and serve it.
#
#   tools/asv_history.sh [N] [--no-preview] [--slice] [asv run options...]
#
# --slice benchmarks only the representative subset listed in
# tools/asv_history_slice.txt (headline kernels at 10^7 elements, every
# float32 gelu case, the peers, accuracy, ratios, memory, import): about 8
# minutes a commit on 2 cores instead of about 45 for the whole suite.
#
# Results go to .asv/results, the site to .asv/html; open the address asv
# preview prints (http://127.0.0.1:8080 by default).  Each commit is built as
# a wheel and installed in an environment of its own under .asv/env, with the
# peers (torch 2.13.0, SciPy) beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
n=5
preview=1
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then n=$1; shift; fi
if [[ $# -gt 0 && "$1" == "--no-preview" ]]; then preview=0; shift; fi
selection=()
if [[ $# -gt 0 && "$1" == "--slice" ]]; then
    shift
    while IFS= read -r regex; do
        [[ -n "$regex" ]] && selection+=(--bench "$regex")
    done < tools/asv_history_slice.txt
fi
asv=${ASV:-asv}

"$asv" machine --yes > /dev/null
count=$(git rev-list --count main)
if (( n >= count )); then
    range="ALL"             # every commit
else
    range="main~$n..main"   # the last n commits
fi
"$asv" run --skip-existing-commits --show-stderr "${selection[@]}" "$range" "$@"
"$asv" publish
"${PYTHON:-python3}" tools/asv_offline.py .asv/html  # the page's JS libraries, locally
if (( preview )); then
    "$asv" preview
fi
