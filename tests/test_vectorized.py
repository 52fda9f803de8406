"""The inner loops vectorise, and give the same bits, on every x86-64 CPU.

Speed itself is measured by the benchmarks, not here.  These tests check the
properties the speed and the contract rest on, for each kind of CPU the
project runs on, whatever CPU runs the tests: each kind is compiled for in a
subprocess through Numba's ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` (the
name alone keeps the host's features, so the features are given too: an empty
list means the named CPU's own).

- The kernel is inlined into the unit-stride loop and LLVM vectorises it:
  packed FMAs on the type the kernel computes in.  How wide is the target's
  choice: AMD's AVX-512 tuning uses 512-bit vectors, Intel's server tuning
  prefers 256-bit ones, AVX2 has 256.  SSE2 has no FMA (``fma`` is a libm
  call there): no AVX instruction may appear, vectorised or not.
- The same input gives the same bits on each CPU this machine can run:
  the host, an AVX2-only CPU (Haswell) and an SSE2-only one (x86-64).
"""

import functools
import json
import os
import pathlib
import subprocess
import sys

import llvmlite.binding as llvm
import pytest

import gelu_numba

HOST = llvm.get_host_cpu_features()
X86 = llvm.get_process_triple().startswith("x86_64")

pytestmark = pytest.mark.skipif(not X86, reason="reads x86-64 machine code")

#: The kinds of CPU, as (NUMBA_CPU_NAME, NUMBA_CPU_FEATURES, the host features
#: needed to run its code here; None: compiled, never run).
CPUS = {
    "avx512-amd": ("znver4", "", None),
    "avx512-intel": ("sapphirerapids", "", None),
    "avx2": ("haswell", "", ("avx", "avx2", "fma", "bmi", "bmi2", "f16c", "lzcnt", "movbe", "popcnt")),
    "sse2": ("x86-64", "", ()),
}

#: The widest vector register each kind has.
WIDEST = {"avx512-amd": "zmm", "avx512-intel": "zmm", "avx2": "ymm", "sse2": "xmm"}
BITS = {"xmm": 128, "ymm": 256, "zmm": 512}

# kernel, dtype, arity, policy: what the asm checks compile in each process.
ASM_CASES = [
    ("gelu", "float32", 1, "ext"),
    ("gelu", "float64", 1, "ext"),
    ("gelu_tanh_grad", "float32", 1, "ext"),
    ("gelu_tanh_grad", "float64", 1, "ext"),
    ("gelu_backward", "float32", 2, "ext"),
    ("gelu_sigmoid_backward", "float64", 2, "ext"),
    ("gelu", "float32", 1, "native"),
    ("gelu_tanh", "float32", 1, "native"),
    ("gelu_sigmoid_grad", "float32", 1, "native"),
]

SCRIPT = r"""
import hashlib, json, re, sys
import numpy as np
from gelu_numba.core import build as _build, loops as _loops, formulas as _scalar
from gelu_numba.core.names import NAMES, BINARY

cases, run = json.loads(sys.argv[1]), sys.argv[2] == "1"
report = {"asm": {}, "bits": {}}
for name, dtype, arity, policy in cases:
    kernel = _build.native_kernel(name) if policy == "native" else getattr(_scalar, name)
    build = _loops.binary if arity == 2 else _loops.unary
    asm = build(kernel, np.dtype(dtype).type, parallel=False, cache=False)._library.get_asm_str()
    report["asm"]["/".join((name, dtype, policy))] = {
        "fma": sorted(set(re.findall(r"\bvfn?m(?:add|sub)\d{3}p([sd])\s", asm))),
        "packed_mul": sorted(set(re.findall(r"\bv?mulp([sd])\s", asm))),
        "widen": bool(re.search(r"\bv?cvtps2pd\b", asm)),
        "registers": sorted(set(re.findall(r"%([xyz]mm)\d", asm))),
        "vex": len(re.findall(r"^\s+v[a-z0-9]+\s", asm, re.M)),
    }
if run:
    from gelu_numba_test_sample import sample
    for name in NAMES:
        for dtype in ("float32", "float64"):
            args = sample(np.dtype(dtype), 2 if name in BINARY else 1)
            out = getattr(__import__("gelu_numba"), name)(*args)
            report["bits"][name + "/" + dtype] = hashlib.sha256(out.tobytes()).hexdigest()
print("REPORT" + json.dumps(report))
"""

SAMPLE = r'''
import numpy as np


def sample(dtype, arity):
    """A dense, mixed sample: random bit patterns (NaN payloads, subnormals,
    infinities), N(0, 3^2), the tails and the neighbourhood of each minimum,
    every element in a different position of the vector blocks."""
    rng = np.random.default_rng(20261205)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    n = 1 << 17
    bits = rng.integers(0, np.iinfo(uint).max, n, dtype=uint, endpoint=True).view(dtype)
    normal = rng.normal(0.0, 3.0, n).astype(dtype)
    tail = -rng.uniform(0.0, 40.0 if dtype == np.float64 else 15.0, n).astype(dtype)
    near = rng.uniform(-1.1, -0.4, n).astype(dtype)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan], dtype)
    x = np.concatenate([bits, normal, tail, near, special, rng.permutation(normal)[:1001]])
    if arity == 1:
        return (x,)
    dy = rng.normal(0.0, 1.0, x.size).astype(dtype)
    dy[::7] = rng.integers(0, np.iinfo(uint).max, dy[::7].size, dtype=uint).view(dtype)
    return dy, x
'''


def _can_run(needs):
    return needs is not None and all(HOST.get(f) for f in needs)


@functools.cache
def _report(kind, tmp):
    """Compile ASM_CASES for CPU `kind` (None: the host, as Numba finds it)
    in a subprocess, and where this machine can run that code, every kernel
    on the sample."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}
    # The gelu_numba this process tests, wherever it was imported from.
    env["PYTHONPATH"] = os.pathsep.join([str(tmp), str(pathlib.Path(gelu_numba.__file__).parent.parent)])
    (tmp / "gelu_numba_test_sample.py").write_text(SAMPLE)
    if kind is None:
        cases, run = [], True
    else:
        name, features, needs = CPUS[kind]
        env.update(NUMBA_CPU_NAME=name, NUMBA_CPU_FEATURES=features)
        cases, run = ASM_CASES, _can_run(needs)
    r = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(cases), "1" if run else "0"],
                       capture_output=True, text=True, timeout=900, env=env, cwd=tmp)
    assert r.returncode == 0, f"compiling for {kind} failed:\n{r.stderr[-3000:]}"
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("REPORT")][-1]
    return json.loads(line[len("REPORT"):])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cpus")
    return lambda kind: _report(kind, tmp)


@pytest.mark.parametrize("kind", list(CPUS))
def test_loops_vectorise_on_every_cpu(kind, report):
    asm = report(kind)["asm"]
    for case, facts in asm.items():
        name, dtype, policy = case.split("/")
        # float32 is computed in float64 on the CPU (EXT, see gelu_numba.core.fp);
        # the experimental NATIVE policy keeps it in float32.
        computes = "s" if policy == "native" else "d"
        if kind == "sse2":
            # No instruction the target lacks.  Without FMA, fma() is a libm
            # call and LLVM vectorises some loops only; the bits stay the
            # same (test_same_bits_on_every_cpu).
            assert not facts["vex"], f"{case}: {facts['vex']} AVX instructions on an SSE2-only CPU"
            assert facts["registers"] == ["xmm"], f"{case}: registers {facts['registers']}"
            continue
        assert facts["fma"] == [computes], f"{case}: packed FMAs {facts['fma']}: the hot loop did not vectorise"
        wide = [r for r in facts["registers"] if r != "xmm"]
        assert wide, f"{case}: no vector registers wider than 128 bits"
        assert max(BITS[r] for r in wide) <= BITS[WIDEST[kind]], f"{case}: {wide} on a {kind} CPU"
        if policy == "native":
            assert not facts["widen"], f"{case}: float32 widened to float64"


@pytest.mark.parametrize("kind", ["avx512-amd", "avx512-intel"])
def test_avx512_loops_use_512_bit_vectors(kind, report):
    """On AVX-512 the loops use 512-bit vectors whatever the vendor's tuning
    (Intel's prefers 256 bits; the loops ask for 512: _loops._PREFER_WIDE)."""
    for case, facts in report(kind)["asm"].items():
        assert "zmm" in facts["registers"], f"{case}: no zmm registers"


@pytest.mark.parametrize("kind", ["avx2", "sse2"])
def test_same_bits_on_every_cpu(kind, report):
    """Every kernel, both formats, on a dense mixed sample: the bits the host
    gives are the bits an AVX2-only and an SSE2-only CPU give."""
    if not _can_run(CPUS[kind][2]):
        pytest.skip(f"this CPU cannot run code compiled for {kind}")
    host, other = report(None)["bits"], report(kind)["bits"]
    assert host.keys() == other.keys() and host
    differ = sorted(k for k in host if host[k] != other[k])
    assert not differ, f"bits differ from the host's when compiled for {kind}: {differ}"

