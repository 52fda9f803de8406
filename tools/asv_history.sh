#!/usr/bin/env bash
# Benchmark the last N commits of main with asv (skipping those already
# measured), publish the HTML and serve it.
#
#   tools/asv_history.sh [N] [--no-preview] [asv run options...]
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
asv=${ASV:-asv}

"$asv" machine --yes > /dev/null
count=$(git rev-list --count main)
if (( n >= count )); then
    range="ALL"             # every commit
else
    range="main~$n..main"   # the last n commits
fi
"$asv" run --skip-existing-commits --show-stderr "$range" "$@"
"$asv" publish
if (( preview )); then
    "$asv" preview
fi
