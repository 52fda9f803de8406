"""The inner loops vectorise, and give the same bits, on every x86-64 CPU.

float32 runs the explicit-SIMD loops of ``gelu_numba.core.vector32``: their
AVX-512 emission (16 lanes, table lookups as vpermi2pd), their AVX2 one
(8 lanes) or their scalar emission (SSE2-only CPUs, or GELU_NUMBA_SIMD=scalar),
chosen once per process from the features Numba compiles for; float64 the
loops LLVM vectorises from the scalar formulas.

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

#: The float64 loops prefetch their inputs on every kind but AMD's
#: (loops.software_prefetch); the other vendor's tuning with the host's
#: features, to compare the two loop shapes' bits here.
PREFETCHES = {"avx512-amd": False, "avx512-intel": True, "avx2": True, "sse2": True}
OTHER_VENDOR = "sapphirerapids" if llvm.get_host_cpu_name().startswith("znver") else "znver4"

#: The widest vector register each kind has.
WIDEST = {"avx512-amd": "zmm", "avx512-intel": "zmm", "avx2": "ymm", "sse2": "xmm"}
BITS = {"xmm": 128, "ymm": 256, "zmm": 512}

#: The float32 variant each kind compiles (vector32.variant()).
VARIANT = {"avx512-amd": "avx512", "avx512-intel": "avx512", "avx2": "avx2", "sse2": "scalar"}

# kernel, dtype, arity: what the asm checks compile in each process.
ASM_CASES = [
    ("gelu", "float32", 1),
    ("gelu", "float64", 1),
    ("gelu_tanh_grad", "float32", 1),
    ("gelu_tanh_grad", "float64", 1),
    ("gelu_backward", "float32", 2),
    ("gelu_sigmoid_backward", "float64", 2),
    ("gelu_sigmoid", "float32", 1),
    ("gelu_grad2", "float32", 1),
    ("gelu_grad", "float32", 1),
    ("geglu_backward", "float32", 0),  # 0: a fused loop (gelu_numba.core.fused)
    ("bias_gelu_tanh", "float64", 0),
]
#: The float32 kernels computed in float64 lanes whose coefficients come from
#: tables (permutes on AVX-512).
TABLES = ()
#: The float32 kernels computed in float32 lanes (vector32.FLOAT32_LANES),
#: and their tables of 32 entries: 9 for f, 10 for f'.  On AVX-512 each is
#: one vpermi2ps (vpermt2ps); on AVX2 the tables are read as rows, four
#: tables at a time, each lane's 16 bytes with lane j + 4's inserted above
#: (a vinsertf128 from memory): 4 per group of four tables per 8 lanes.
FLOAT32_LANES = {"gelu": 9, "gelu_grad": 10, "gelu_backward": 10, "geglu_backward": 19}

SCRIPT = r"""
import hashlib, json, re, sys
import numpy as np
from gelu_numba.core import build as _build, loops as _loops, formulas as _scalar
from gelu_numba.core.names import NAMES, BINARY

from gelu_numba.core import vector32
cases, run = json.loads(sys.argv[1]), sys.argv[2]


def vector_loops(asm):
    # [instructions, movabsq] of each loop body (a block that jumps back to
    # its own label) with packed float64 FMAs: the vectorised float64 loops
    found, label, lines = [], None, []
    for line in asm.splitlines() + [".LBB_end:"]:
        m = re.match(r"^(\.LBB\w+):", line)
        if m:
            for i, ins in enumerate(lines):
                if label and re.match(r"j\w+\s+" + re.escape(label) + "$", ins):
                    body = lines[:i + 1]
                    if any(re.match(r"vfn?m(?:add|sub)\d{3}pd\s", b) for b in body):
                        found.append([len(body), sum(b.startswith("movabsq") for b in body)])
                    break
            label, lines = m.group(1), []
        elif line.startswith("\t") and not line.strip().startswith((".", "#")):
            lines.append(line.strip())
    return found


report = {"asm": {}, "threaded": {}, "bits": {}, "variant": vector32.variant()}
for name, dtype, arity in cases:
    if arity == 0:
        from gelu_numba.core import fused
        loop = fused.driver(name, np.dtype(dtype).type, False, cache=False)
    elif dtype == "float32":
        build = _loops.binary32 if arity == 2 else _loops.unary32
        loop = build(name, parallel=False, cache=False)
    else:
        build = _loops.binary if arity == 2 else _loops.unary
        loop = build(getattr(_scalar, name), np.dtype(dtype).type, parallel=False, cache=False)
        if not _loops.software_prefetch():  # the flat shape: its threaded loop too (it is the chunked one elsewhere)
            threaded = build(getattr(_scalar, name), np.dtype(dtype).type, parallel=True, cache=False)
            report["threaded"]["/".join((name, dtype))] = vector_loops(threaded._library.get_asm_str())
    asm = loop._library.get_asm_str()
    report["asm"]["/".join((name, dtype))] = {
        "vector_loops": vector_loops(asm),
        "prefetch": len(re.findall(r"\bprefetcht0\s", asm)),
        "fma": sorted(set(re.findall(r"\bvfn?m(?:add|sub)\d{3}p([sd])\s", asm))),
        "packed_mul": sorted(set(re.findall(r"\bv?mulp([sd])\s", asm))),
        "widen": bool(re.search(r"\bv?cvtps2pd\b", asm)),
        "registers": sorted(set(re.findall(r"%([xyz]mm)\d", asm))),
        "vex": len(re.findall(r"^\s+v[a-z0-9]+\s", asm, re.M)),
        "permutes": len(re.findall(r"\bvperm[it]2pd\s", asm)),
        "permutes32": len(re.findall(r"\bvperm(?:[it]2ps|ps)\s", asm)),
        "row_inserts": len(re.findall(r"\bvinsertf128\s+\$1,\s*-?\d*\(", asm)),
    }
if run != "0":
    from gelu_numba_test_sample import sample, fused_sample
    for name in NAMES:
        for dtype in ("float32", "float64") if run == "1" else ("float64",):
            args = sample(np.dtype(dtype), 2 if name in BINARY else 1)
            out = getattr(__import__("gelu_numba"), name)(*args)
            report["bits"][name + "/" + dtype] = hashlib.sha256(out.tobytes()).hexdigest()
    from gelu_numba.core.names import ARITY, FUSED, parse_fused
    for name in FUSED if run == "1" else ():
        for dtype in ("float32", "float64"):
            args = fused_sample(np.dtype(dtype), ARITY[parse_fused(name)[0]][0])
            with np.errstate(all="ignore"):
                out = getattr(__import__("gelu_numba"), name)(*args)
            outs = out if isinstance(out, tuple) else (out,)
            report["bits"][name + "/" + dtype] = hashlib.sha256(b"".join(o.tobytes() for o in outs)).hexdigest()
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


def fused_sample(dtype, arity):
    """The operands of a fused kernel: sample's x and dy, and a third
    operand, each with NaNs of random payloads at 1 % of its elements (so
    that NaN meets NaN), broadcast-free."""
    dy, x = sample(dtype, 2)
    rng = np.random.default_rng(20261207)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    third = rng.permutation(x)
    arrays = [x, third, dy][:arity]
    exponent = uint(0x7F800000 if dtype == np.float32 else 0x7FF0000000000000)
    for a in arrays:
        at = rng.choice(a.size, a.size // 100, replace=False)
        a.view(uint)[at] = (rng.integers(1, exponent, at.size, dtype=uint) & ~exponent) | exponent
    return arrays
'''


def _can_run(needs):
    return needs is not None and all(HOST.get(f) for f in needs)


@functools.cache
def _report(kind, tmp):
    """Compile ASM_CASES for CPU `kind` (None: the host, as Numba finds it;
    "host-scalar": the host with GELU_NUMBA_SIMD=scalar) in a subprocess,
    and where this machine can run that code, every kernel on the sample."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "GELU_NUMBA_SIMD")}
    # The gelu_numba this process tests, wherever it was imported from.
    env["PYTHONPATH"] = os.pathsep.join([str(tmp), str(pathlib.Path(gelu_numba.__file__).parent.parent)])
    (tmp / "gelu_numba_test_sample.py").write_text(SAMPLE)
    if kind is None:
        cases, run = [], True
    elif kind == "host-scalar":
        env["GELU_NUMBA_SIMD"] = "scalar"
        cases, run = [], True
    elif kind == "other-vendor":
        # the host's features, tuned for the other vendor: its float64 loop
        # shape (loops.software_prefetch), runnable here; float64 only
        env.update(NUMBA_CPU_NAME=OTHER_VENDOR, NUMBA_CPU_FEATURES=HOST.flatten())
        cases, run = [], "float64"
    else:
        name, features, needs = CPUS[kind]
        env.update(NUMBA_CPU_NAME=name, NUMBA_CPU_FEATURES=features)
        cases, run = ASM_CASES, _can_run(needs)
    run = {True: "1", False: "0"}.get(run, run)
    r = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(cases), run],
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
    r = report(kind)
    assert r["variant"] == VARIANT[kind], f"{kind}: float32 variant {r['variant']}"
    for case, facts in r["asm"].items():
        name, dtype = case.split("/")
        if kind == "sse2":
            # No instruction the target lacks.  Without FMA, fma() is a libm
            # call; the float32 loops run the scalar emission, and LLVM
            # vectorises some float64 loops only; the bits stay the same
            # (test_same_bits_on_every_cpu).
            assert not facts["vex"], f"{case}: {facts['vex']} AVX instructions on an SSE2-only CPU"
            assert facts["registers"] == ["xmm"], f"{case}: registers {facts['registers']}"
            continue
        if dtype == "float32" and name in FLOAT32_LANES:
            # float32 in float32 lanes: no float64 arithmetic, no widening
            assert facts["fma"] == ["s"], f"{case}: packed FMAs {facts['fma']}: not float32 lanes"
            assert not facts["widen"], f"{case}: float32 widened to float64"
            assert not facts["permutes"], f"{case}: float64 permutes"
            tables = FLOAT32_LANES[name]
            if VARIANT[kind] == "avx512":
                assert facts["permutes32"] >= tables, f"{case}: {facts['permutes32']} table permutes"
            else:  # AVX2: row reads, no permutes
                assert not facts["permutes32"], f"{case}: {facts['permutes32']} permutes"
                assert facts["row_inserts"] >= 4 * ((tables + 3) // 4), f"{case}: {facts['row_inserts']} row inserts"
            wide = [r for r in facts["registers"] if r != "xmm"]
            assert max(BITS[r] for r in wide) == BITS[WIDEST[kind]], f"{case}: {wide} on a {kind} CPU"
            continue
        # the other kernels compute in float64 lanes (float32 widened exactly, see vector32)
        assert facts["fma"] == ["d"], f"{case}: packed FMAs {facts['fma']}: the hot loop did not vectorise"
        assert facts["widen"] or dtype == "float64", f"{case}: float32 not widened"
        wide = [r for r in facts["registers"] if r != "xmm"]
        assert wide, f"{case}: no vector registers wider than 128 bits"
        assert max(BITS[r] for r in wide) <= BITS[WIDEST[kind]], f"{case}: {wide} on a {kind} CPU"
        if dtype == "float32" and VARIANT[kind] == "avx512" and name in TABLES:
            # every coefficient of the 16-piece polynomial: one permute per 8 lanes
            assert facts["permutes"] >= 18, f"{case}: {facts['permutes']} table permutes"
        else:
            assert not facts["permutes"], f"{case}: permutes on {kind}"


@pytest.mark.parametrize("kind", ["avx512-amd", "avx512-intel"])
def test_avx512_loops_use_512_bit_vectors(kind, report):
    """On AVX-512 the loops use 512-bit vectors whatever the vendor's tuning
    (Intel's prefers 256 bits; the float32 loops are written for 16 lanes,
    the float64 ones ask for 512: simd.PREFER_WIDE)."""
    for case, facts in report(kind)["asm"].items():
        assert "zmm" in facts["registers"], f"{case}: no zmm registers"


@pytest.mark.parametrize("kind", list(CPUS))
def test_float64_loops_shape(kind, report):
    """The float64 unit-stride loops take the shape of their CPU
    (loops.software_prefetch, loops._run): on AMD's, a flat vectorised
    loop of its own with no prefetch, serial and threaded, whose body
    reloads no constant address (nested in the chunk loop or a threaded block, LLVM
    reloaded each constant's address by movabsq in every iteration: 19-83
    per 8 elements); on every other kind, 512-byte chunks that prefetch."""
    r = report(kind)
    cases = [f"{name}/{dtype}" for name, dtype, arity in ASM_CASES if dtype == "float64" and arity]
    assert len(cases) == 3 and len(r["threaded"]) == (0 if PREFETCHES[kind] else 3), (cases, r["threaded"].keys())
    for case in cases:
        serial = r["asm"][case]
        assert (serial["prefetch"] > 0) == PREFETCHES[kind], f"{case}: {serial['prefetch']} prefetches on {kind}"
        shapes = [("serial", serial["vector_loops"])]
        if case in r["threaded"]:
            shapes.append(("threaded", r["threaded"][case]))
        for label, found in shapes:
            if kind != "sse2":  # (without FMA, LLVM vectorises some loops only)
                assert found, f"{case}: no vectorised {label} float64 loop on {kind}"
            if not PREFETCHES[kind]:
                for size, movabs in found:
                    assert movabs <= 1, f"{case}: {movabs} movabsq in a {label} loop of {size} instructions"


@pytest.mark.parametrize("kind", ["avx2", "sse2", "host-scalar", "other-vendor"])
def test_same_bits_on_every_cpu(kind, report):
    """Every kernel, both formats, on a dense mixed sample: the bits the host
    gives (its widest float32 variant) are the bits an AVX2-only CPU, an
    SSE2-only one and the host's scalar emission give, and the float64 bits
    of the host's CPU tuned as the other vendor's (its loop shape)."""
    if kind in CPUS and not _can_run(CPUS[kind][2]):
        pytest.skip(f"this CPU cannot run code compiled for {kind}")
    host, other = report(None)["bits"], report(kind)["bits"]
    if kind == "other-vendor":  # float64 only (float32 and the fused forms are shaped alike on both)
        host = {k: v for k, v in host.items() if k.endswith("/float64") and k in other}
    assert host.keys() == other.keys() and host
    differ = sorted(k for k in host if host[k] != other[k])
    assert not differ, f"bits differ from the host's when compiled for {kind}: {differ}"


def test_avx512_variant_runs_here_where_the_cpu_has_it(report):
    """The host's report above is the AVX-512 variant where this CPU has
    AVX-512, so the comparisons above cover it; elsewhere it is skipped."""
    if not HOST.get("avx512f"):
        pytest.skip("this CPU has no AVX-512: the AVX-512 loops are compiled (test_loops_vectorise_on_every_cpu) "
                    "but cannot run here")
    assert report(None)["variant"] == "avx512"
