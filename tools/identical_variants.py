"""Bit identity of the float32 variants and of the CPUs compiled for.

    python tools/identical_variants.py                # all 2^32 float32 inputs, every variant here
    python tools/identical_variants.py --kernels gelu,gelu_backward
    python tools/identical_variants.py --soft         # and the scalar emission with soft_fma
    python tools/identical_variants.py --cpus         # samples, compiled for AVX2 and SSE2-only CPUs
    python tools/identical_variants.py --json FILE

Exhaustive part: every float32 bit pattern (NaN payloads, subnormals,
infinities included) through each kernel's loop in each variant this CPU
can run (``avx512``, ``avx2``, ``scalar``: gelu_numba.core.vector32), in
chunks of 2^24, compared bit for bit; the backward kernels pair each x with
a dy drawn from all bit patterns by a fixed permutation.  About a minute a
kernel on one core.  ``--soft`` adds ``soft``, the scalar emission whose
FMAs are plain arithmetic (what CPUs without FMA run): 3-7 minutes a kernel.

``--cpus``: a mixed sample (random bits, N(0, 3^2), the tails, each
minimum's neighbourhood) of --n points per format (default 10^7) through
every public ufunc, float32 and float64, in subprocesses compiled for this
CPU, an AVX2-only CPU (haswell) and an SSE2-only one (x86-64) where this
CPU can run their code; the results' SHA-256 must agree.
"""

import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK = 1 << 24


def _runners(name, variants):
    from numba import njit

    from gelu_numba.core import vector32 as V

    runners = {}
    for isa in variants:
        if name in V.UNARY:
            def make(isa=isa):
                @njit
                def run(x, out):
                    V.run_unary(name, isa, x.ctypes.data, out.ctypes.data, 0, x.size)
                return lambda dy, x, out: run(x, out)
        else:
            def make(isa=isa):
                @njit
                def run(dy, x, out):
                    V.run_binary(name, isa, dy.ctypes.data, x.ctypes.data, out.ctypes.data, 0, x.size, False)
                return run
        runners[isa] = make()
    return runners


def exhaustive(name, variants):
    """{variant: differing count vs the first} over all 2^32 inputs."""
    runners = _runners(name, variants)
    differ = {isa: 0 for isa in variants}
    outs = {isa: np.empty(CHUNK, np.float32) for isa in variants}
    for start in range(0, 1 << 32, CHUNK):
        bits = np.arange(start, start + CHUNK, dtype=np.uint64)
        x = bits.astype(np.uint32).view(np.float32)
        dy = ((bits * 2654435761) & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
        with np.errstate(all="ignore"):
            for isa, run in runners.items():
                run(dy, x, outs[isa])
        first = outs[variants[0]].view(np.uint32)
        for isa in variants[1:]:
            differ[isa] += int(np.count_nonzero(outs[isa].view(np.uint32) != first))
    return differ


SAMPLE_SCRIPT = r"""
import hashlib, json, sys
import numpy as np
import gelu_numba, gelu_numba.parallel
from gelu_numba.core import vector32
from gelu_numba.core.names import NAMES, BINARY
n = int(sys.argv[1])
rng = np.random.default_rng(20261205)
hashes = {}
for dtype, uint in ((np.float32, np.uint32), (np.float64, np.uint64)):
    q = n // 4
    x = np.concatenate([
        rng.integers(0, np.iinfo(uint).max, q, dtype=uint, endpoint=True).view(dtype),
        rng.normal(0, 3, q).astype(dtype),
        -rng.uniform(0, 40 if dtype == np.float64 else 16, q).astype(dtype),
        rng.uniform(-1.2, -0.3, n - 3 * q).astype(dtype)])
    dy = rng.normal(0, 1, x.size).astype(dtype)
    for name in NAMES:
        with np.errstate(all="ignore"):
            y = getattr(gelu_numba.parallel, name)(*((dy, x) if name in BINARY else (x,)))
        hashes[name + "/" + np.dtype(dtype).name] = hashlib.sha256(y.tobytes()).hexdigest()
print("REPORT" + json.dumps({"variant": vector32.variant(), "hashes": hashes}))
"""

CPUS = {"host": None, "avx2 (haswell)": ("haswell", ("avx", "avx2", "fma")), "sse2 (x86-64)": ("x86-64", ())}


def across_cpus(n):
    import llvmlite.binding as llvm

    host = llvm.get_host_cpu_features()
    reports = {}
    for label, spec in CPUS.items():
        env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "GELU_NUMBA_SIMD")}
        env["PYTHONPATH"] = str(ROOT)
        if spec is not None:
            cpu, needs = spec
            if not all(host.get(f) for f in needs):
                reports[label] = "cannot run here"
                continue
            env.update(NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES="")
        r = subprocess.run([sys.executable, "-c", SAMPLE_SCRIPT, str(n)], capture_output=True, text=True, env=env)
        if r.returncode:
            raise SystemExit(f"{label}: exit {r.returncode}\n{r.stderr[-3000:]}")
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("REPORT")][-1]
        reports[label] = json.loads(line[len("REPORT"):])
    base = reports["host"]["hashes"]
    result = {}
    for label, rep in reports.items():
        if isinstance(rep, str):
            result[label] = rep
            continue
        differ = sorted(k for k in base if rep["hashes"][k] != base[k])
        result[label] = {"variant": rep["variant"], "differ": differ}
    return result


def main(argv=None):
    from gelu_numba.core import vector32 as V

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", default=",".join(V.KERNELS))
    parser.add_argument("--cpus", action="store_true", help="samples across CPUs instead of the exhaustive run")
    parser.add_argument("--n", type=int, default=10_000_000, help="sample size per format with --cpus")
    parser.add_argument("--soft", action="store_true", help="add the soft_fma scalar emission to the exhaustive run")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    started = time.time()
    if args.cpus:
        result = {"sample": args.n, "cpus": across_cpus(args.n)}
        for label, r in result["cpus"].items():
            print(f"{label:16s} {r if isinstance(r, str) else (r['variant'] + ': ' + ('identical' if not r['differ'] else 'DIFFER ' + ', '.join(r['differ'])))}")
        ok = all(isinstance(r, str) or not r["differ"] for r in result["cpus"].values())
    else:
        order = list(V.VARIANTS)
        best = V.variant()
        variants = order[order.index(best):] + ([V.SOFT] if args.soft else [])
        result = {"variants": variants, "kernels": {}}
        for name in args.kernels.split(","):
            t = time.time()
            differ = exhaustive(name, variants)
            result["kernels"][name] = differ
            print(f"{name:22s} {' '.join(f'{k}: {v} differ' for k, v in differ.items() if k != variants[0])}"
                  f"  ({time.time() - t:.0f} s)", flush=True)
        ok = all(v == 0 for d in result["kernels"].values() for v in d.values())
    result["seconds"] = round(time.time() - started)
    from gelu_numba.tools.bench import environment

    result["environment"] = environment()
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print("identical" if ok else "NOT IDENTICAL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
