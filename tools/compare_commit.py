"""Time today's kernels against those of an earlier commit, side by side.

    python tools/compare_commit.py [--commit 6172367] [--n 1048576] [--data normal|tail]
                                   [--dtype float32,float64] [--kernels gelu,...]
                                   [--target parallel|cpu] [--new-target TARGET] [--json FILE]

The earlier commit's ``gelu_numba/`` is extracted with ``git archive`` into a
temporary directory under another package name and imported beside the
working tree's, so both run in one process on the same arrays, interleaved
(``gelu_numba.tools.bench``'s rounds, the best of each), with ``out=``: by default the parallel
ufuncs of both; ``--new-target`` sets another target of the working tree
against the commit's (``cpu``: serial).  Run it with ``NUMBA_CPU_NAME`` and
``NUMBA_CPU_FEATURES`` set to compare both as compiled for another CPU.

``--host-without-fma`` (with ``NUMBA_CPU_NAME=x86-64``) plays a CPU without
FMA on one that has it: Numba is told the host has no FMA (so the working
tree's scalar emission computes FMAs by ``simd.soft_fma``), and the run
should have ``GLIBC_TUNABLES=glibc.cpu.hwcaps=-FMA,-AVX2`` so that glibc's
``fma``, which the earlier commit calls, is its software version too.
"""

import argparse
import functools
import importlib
import json
import pathlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def extract(commit, where):
    name = "gelu_numba_" + commit[:7]
    data = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "gelu_numba"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(where, filter="data")
    (pathlib.Path(where) / "gelu_numba").rename(pathlib.Path(where) / name)
    sys.path.insert(0, str(where))
    try:  # the layout since the split into core and tools
        return importlib.import_module(name + ".core.build")
    except ModuleNotFoundError:  # the flat layout (155dc76 and before)
        return importlib.import_module(name + "._build")


def _host_without_fma():
    from llvmlite import binding as llvm

    real = llvm.get_host_cpu_features

    def features():
        f = real()
        f["fma"] = False
        return f

    llvm.get_host_cpu_features = features


def main(argv=None):
    if "--host-without-fma" in (sys.argv[1:] if argv is None else argv):
        _host_without_fma()  # before anything compiles
    from gelu_numba.core import build as _build

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commit", default="6172367")
    p.add_argument("--n", type=int, default=1 << 20)
    p.add_argument("--data", default="normal", choices=("normal", "tail"))
    p.add_argument("--dtype", default="float32,float64")
    p.add_argument("--kernels", default=",".join(_build.NAMES))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--target", default="parallel", choices=("parallel", "cpu"),
                   help="the target of both sides (cpu: serial)")
    p.add_argument("--new-target", help="the working tree's target, if not --target")
    p.add_argument("--host-without-fma", action="store_true", help="play a CPU without FMA (see above)")
    p.add_argument("--json")
    a = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="gelu_base_")
    try:
        return _compare(a, extract(a.commit, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _compare(a, base):
    import numpy as np

    from gelu_numba.core import build as _build
    from gelu_numba.tools import bench

    rows = []
    for dtype in a.dtype.split(","):
        dt = np.dtype(dtype).type
        rng = np.random.default_rng(0)
        x = bench.make_data(a.data, a.n, dt, rng).astype(dt)
        dy = rng.standard_normal(a.n).astype(dt)
        out = np.empty_like(x)
        for name in a.kernels.split(","):
            if name not in base.NAMES:
                continue
            new_target = a.new_target or a.target
            fs = {"new": _build.ufunc(name, new_target), "old": base.ufunc(name, a.target)}
            args = (dy, x) if name in _build.BINARY else (x,)
            best = bench._interleaved({k: functools.partial(f, *args, out=out) for k, f in fs.items()},
                                      a.n, min_rounds=a.rounds)
            row = {"kernel": name, "dtype": dtype, "n": a.n, "data": a.data,
                   "old_target": a.target, "new_target": new_target,
                   "new_ns": best["new"][0], "old_ns": best["old"][0]}
            row["speedup"] = row["old_ns"] / row["new_ns"]
            rows.append(row)
            print(f"{name:20s} {dtype:8s} old {row['old_ns']:7.3f}  new {row['new_ns']:7.3f} ns/el  x{row['speedup']:.2f}", flush=True)
    if a.json:
        import os

        from gelu_numba.core import vector32

        setting = {k: os.environ[k] for k in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "GLIBC_TUNABLES") if k in os.environ}
        pathlib.Path(a.json).write_text(json.dumps({
            "commit": a.commit, "environment": bench.environment(), "setting": setting,
            "host_without_fma": a.host_without_fma, "float32_emission": vector32.emission(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
