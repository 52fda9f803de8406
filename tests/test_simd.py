"""The explicit-SIMD float32 loops (gelu_numba.core.vector32): remainders,
alignment, memory they must not touch, and how the variant is chosen.

Whatever can crash or abort runs in a subprocess with a timeout.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import llvmlite.binding as llvm
import numpy as np
import pytest

import gelu_numba as gn
import gelu_numba.parallel as gp

from _kernels import ALL, BINARY

PACKAGE_PARENT = str(pathlib.Path(gn.__file__).resolve().parents[1])
X86 = llvm.get_process_triple().startswith("x86_64")
HOST = llvm.get_host_cpu_features()
CAN_RUN_AVX2 = X86 and all(HOST.get(f) for f in ("avx", "avx2", "fma"))


def _python(code, timeout=300, **env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "GELU_NUMBA_SIMD")}
    full["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, full.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    full.update(env)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=timeout, env=full)
    return r.returncode, r.stdout, r.stderr


def _bits(a):
    return np.ascontiguousarray(a).view(f"u{a.itemsize}")


def _data(n, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, n).astype(np.float32)
    x[::5] = rng.integers(0, 2**32, x[::5].size, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x[3::11] = -rng.uniform(5, 16, x[3::11].size)
    return x


@pytest.mark.parametrize("module", [gn, gp], ids=["serial", "parallel"])
@pytest.mark.parametrize("name", ALL)
def test_every_length_and_offset_gives_the_same_bits(name, module):
    """Lengths 0..40 (whole blocks and every remainder) at offsets 0..3
    elements from the allocation (no alignment beyond the element's), in
    place and not: each element's bits are those of the same x in one long
    call."""
    f = getattr(module, name)
    base = _data(4096 + 64)
    dy_base = _data(base.size, seed=8)
    with np.errstate(all="ignore"):
        whole = f(dy_base, base) if name in BINARY else f(base)
        for offset in range(4):
            for n in range(41):
                x = base[offset:offset + n]
                args = (dy_base[offset:offset + n], x) if name in BINARY else (x,)
                expected = _bits(whole[offset:offset + n])
                assert np.array_equal(_bits(f(*args)), expected), (name, offset, n)
                y = x.copy()
                inplace = (args[0].copy(), y) if name in BINARY else (y,)
                f(*inplace, out=y)
                assert np.array_equal(_bits(y), expected), (name, offset, n, "in place")
        if name in BINARY:  # a broadcast dy takes its own path, with remainders too
            g = np.float32(-1.75)
            full = f(np.full_like(base, g), base)
            for n in range(41):
                assert np.array_equal(_bits(f(g, base[1:1 + n])), _bits(full[1:1 + n])), (name, n, "broadcast")


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh_grad", "gelu_backward"])
def test_the_remainder_writes_nothing_past_the_end(name):
    f = getattr(gn, name)
    for n in range(1, 34):
        buf = np.full(n + 16, np.float32(1234.5))
        x = _data(n)
        with np.errstate(all="ignore"):
            f(*((x, x) if name in BINARY else (x,)), out=buf[:n])
        assert np.all(buf[n:] == np.float32(1234.5)), (name, n)


@pytest.mark.parametrize("simd", ["", "avx2"], ids=["host", "avx2"])
def test_the_remainder_reads_nothing_past_the_end(simd):
    """Arrays that end where an unreadable page begins: a load of one lane
    too many faults (a crash in the subprocess, not a wrong number)."""
    if simd == "avx2" and not CAN_RUN_AVX2:
        pytest.skip("this CPU has no AVX2 with FMA")
    code = """
        import ctypes, mmap, sys
        import numpy as np
        import gelu_numba as gn, gelu_numba.parallel as gp

        page = mmap.PAGESIZE
        libc = ctypes.CDLL(None, use_errno=True)
        def guarded():
            m = mmap.mmap(-1, 2 * page)
            addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
            assert libc.mprotect(ctypes.c_void_p(addr + page), ctypes.c_size_t(page), 0) == 0  # PROT_NONE
            return m, np.frombuffer(m, np.float32, count=page // 4)
        keep = []
        for name in ("gelu", "gelu_sigmoid_grad2", "gelu_backward"):
            for module in (gn, gp):
                f = getattr(module, name)
                for n in list(range(1, 34)) + [1000, 1021]:
                    (m1, a), (m2, b), (m3, c) = guarded(), guarded(), guarded()
                    keep += [m1, m2, m3]
                    x, dy, out = a[-n:], b[-n:], c[-n:]
                    x[:] = np.linspace(-3, 3, n, dtype=np.float32)
                    dy[:] = 1
                    f(dy, x, out=out) if name == "gelu_backward" else f(x, out=out)
                    assert np.isfinite(out).all()
        print("ok")
    """
    code_, out, err = _python(code, **({"GELU_NUMBA_SIMD": simd} if simd else {}))
    assert code_ == 0 and "ok" in out, f"exit {code_}: {err[-2000:]}"


@pytest.mark.skipif(not CAN_RUN_AVX2, reason="this CPU has no AVX2 with FMA")
def test_every_length_and_offset_in_the_avx2_loops():
    """The AVX2 loops step by two blocks of 8 per cache line, with a head
    of whole and masked blocks: lengths 0..48 at every offset within a
    cache line, and threaded runs of 20,000 or so at each offset, give the
    bits of the scalar emission (in a process whose loops are AVX2, on any
    CPU that has it)."""
    code = """
        import numpy as np
        from numba import njit
        import gelu_numba as gn, gelu_numba.parallel as gp
        from gelu_numba.core import vector32
        assert vector32.variant() == "avx2", vector32.variant()
        rng = np.random.default_rng(3)
        base = (rng.normal(0, 3, 20100)).astype(np.float32)
        dy = rng.normal(0, 1, base.size).astype(np.float32)
        for name in ("gelu", "gelu_tanh_grad2", "gelu_backward"):
            binary = name.endswith("backward")
            # the scalar emission, element by element
            if binary:
                one = njit(lambda d, x: vector32.binary(name, d, x))
                scalar = np.array([one(d, x) for d, x in zip(dy, base)], np.float32)
            else:
                one = njit(lambda x: vector32.unary(name, x))
                scalar = np.array([one(x) for x in base], np.float32)
            for module in (gn, gp):
                f = getattr(module, name)
                for offset in range(16):
                    for n in range(49):
                        args = (dy[offset:offset + n], base[offset:offset + n]) if binary else (base[offset:offset + n],)
                        got = f(*args).view(np.uint32)
                        assert np.array_equal(got, scalar[offset:offset + n].view(np.uint32)), (name, offset, n)
            for offset in range(16):  # threaded: two blocks, each with its own head and remainder
                n = 20000 + offset
                args = (dy[offset:offset + n], base[offset:offset + n]) if binary else (base[offset:offset + n],)
                got = getattr(gp, name)(*args).view(np.uint32)
                assert np.array_equal(got, scalar[offset:offset + n].view(np.uint32)), (name, offset, n, "threaded")
        print("ok")
    """
    code_, out, err = _python(code, GELU_NUMBA_SIMD="avx2")
    assert code_ == 0 and "ok" in out, f"exit {code_}: {err[-2000:]}"


@pytest.mark.skipif(not CAN_RUN_AVX2, reason="this CPU has no AVX2 with FMA")
def test_avx2_row_lookups_give_each_tables_entries():
    """Lanes32.lookups on AVX2 reads each lane's row of a row-major copy of
    the tables, four entries per load, lane j's with lane j + 4's above
    them, and transposes: for 1 to 16 tables (counts that leave part of a
    group), every lane gets table[index & 31] of every table, with the
    index's high bits set and lanes in every order."""
    code = """
        import numpy as np
        from llvmlite import ir
        from numba import njit, types
        from numba.extending import intrinsic
        from gelu_numba.core.simd import AVX2, I32, F32, Lanes32

        rng = np.random.default_rng(5)

        def make(tables):
            @intrinsic
            def look(typingctx, index, out):
                def codegen(context, builder, sig, args):
                    ip = builder.inttoptr(args[0], ir.VectorType(I32, 8).as_pointer())
                    op = builder.inttoptr(args[1], ir.VectorType(F32, 8).as_pointer())
                    L = Lanes32(builder, 8, AVX2)
                    for k, v in enumerate(L.lookups(tables, builder.load(ip, align=4))):
                        builder.store(v, builder.gep(op, [ir.Constant(I32, k)]), align=4)
                    return context.get_dummy_value()
                return types.none(types.intp, types.intp), codegen

            @njit
            def run(index, out):
                look(index.ctypes.data, out.ctypes.data)
            return run

        for count in range(1, 17):
            tables = [tuple(float(v) for v in rng.normal(size=32).astype(np.float32)) for _ in range(count)]
            run = make(tables)
            for trial in range(64):
                index = rng.integers(0, 1 << 20, 8).astype(np.int32)
                out = np.empty((count, 8), np.float32)
                run(index, out)
                want = np.array(tables, np.float32)[:, index & 31]
                assert np.array_equal(out, want), (count, index, out, want)
        print("ok")
    """
    code_, out, err = _python(code, GELU_NUMBA_SIMD="avx2")
    assert code_ == 0 and "ok" in out, f"exit {code_}: {err[-2000:]}"


@pytest.mark.skipif(not X86, reason="the variants are x86-64's")
def test_the_variant_follows_the_cpu_numba_compiles_for():
    code = """
        import warnings
        import numpy as np
        from gelu_numba.core import vector32
        import gelu_numba as gn
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            v = vector32.variant()
        y = gn.gelu(np.linspace(-3, 3, 37, dtype=np.float32))
        print(v, len(w), bool(np.isfinite(y).all()))
    """
    cases = [
        ({"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""}, "avx2 0"),
        ({"NUMBA_CPU_NAME": "x86-64", "NUMBA_CPU_FEATURES": ""}, "scalar 0"),
        # a wider variant than the CPU has is refused before anything compiles
        ({"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "", "GELU_NUMBA_SIMD": "avx512"}, "avx2 1"),
        ({"NUMBA_CPU_NAME": "x86-64", "NUMBA_CPU_FEATURES": "", "GELU_NUMBA_SIMD": "avx2"}, "scalar 1"),
        ({"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "", "GELU_NUMBA_SIMD": "scalar"}, "scalar 0"),
        ({"GELU_NUMBA_SIMD": "fastest"}, None),
    ]
    for env, expected in cases:
        needs_run = env.get("NUMBA_CPU_NAME") != "haswell" or CAN_RUN_AVX2
        if not needs_run:
            continue
        code_, out, err = _python(code, **env)
        assert code_ == 0, f"{env}: exit {code_}: {err[-2000:]}"
        variant, warned, finite = out.split()
        assert finite == "True"
        if expected is None:  # not a variant: a warning, and the CPU's own
            assert warned == "1", (env, out)
        else:
            assert f"{variant} {warned}" == expected, (env, out, err)


@pytest.mark.skipif(not X86, reason="the variants are x86-64's")
def test_a_wider_variant_is_never_compiled():
    """Asking the loop intrinsic for AVX-512 code on an AVX2 target raises a
    Python error at compile time; it never reaches LLVM (which would abort)."""
    code = """
        import numpy as np
        from numba import njit
        from gelu_numba.core import vector32
        @njit
        def run(x, out):
            vector32.run_unary("gelu", "avx512", x.ctypes.data, out.ctypes.data, 0, x.size)
        try:
            run(np.ones(4, np.float32), np.ones(4, np.float32))
        except Exception as exc:
            print("refused", "AVX-512" in str(exc) or "avx512" in str(exc))
    """
    code_, out, err = _python(code, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="")
    assert code_ == 0, f"exit {code_}: {err[-2000:]}"
    assert "refused True" in out, out


def test_the_variant_is_part_of_the_cache_key(tmp_path):
    """A process that forces another variant compiles its float32 loop
    instead of loading the other variant's from the shared cache."""
    code = """
        import gelu_numba as gn
        from gelu_numba.core import loops, vector32
        gn.gelu  # builds both loops of the serial ufunc
        print(vector32.variant(), *loops.LOADED_FROM_CACHE)
    """
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [_python(code, **env), _python(code, GELU_NUMBA_SIMD="scalar", **env),
            _python(code, GELU_NUMBA_SIMD="scalar", **env), _python(code, **env)]
    for code_, out, err in runs:
        assert code_ == 0, err[-2000:]
    first, scalar, scalar_again, first_again = (r[1].split() for r in runs)
    assert first[1:] == ["0", "2"], first  # [loaded, compiled]
    if first[0] != "scalar":
        assert scalar[1:] == ["1", "1"], scalar  # float64 loaded; float32 compiled anew
    assert scalar_again[1:] == ["2", "0"] and first_again[1:] == ["2", "0"], (scalar_again, first_again)


def _piece_seams():
    """The t at which the float32 loops' 16 pieces meet (vector32: the
    exponent and two mantissa bits of t + 1)."""
    return sorted({2.0**e * (1 + m / 4) - 1 for e in range(4) for m in range(4)} - {0.0})


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "gelu_sigmoid"])
def test_monotone_across_every_piece_seam(name):
    """Windows of 2^14 consecutive float32 on each seam of the float64
    lanes' old pieces, on both sides of zero where f rises (above the
    minimum): a table whose neighbouring pieces disagree by more than the
    step steps the wrong way there.  (The float32-lane exact GELU's own
    seams: tests/test_exact32.py.  f' is not asked to be monotone: the
    float32-lane gelu_grad is within 1.42 ulp, not correctly rounded.)"""
    from _properties import consecutive_floats
    from _kernels import MINIMUM

    f = getattr(gn, name)
    for t in _piece_seams():
        for x0 in (t, -t):
            if x0 <= MINIMUM[name][0]:
                continue
            x = consecutive_floats(x0, 1 << 14, np.float32)
            d = np.diff(f(x).astype(np.float64))
            assert (d >= 0).all(), f"{name} steps down near the seam at {x0}: {x[:-1][d < 0][:3]}"


@pytest.mark.parametrize("tool, table", [("fit_tables32.py", "tables32.py"), ("fit_exact32.py", "tables_exact32.py")])
def test_tables_are_generated(tool, table):
    """The float32 loops' tables are what their fit commands write."""
    path = pathlib.Path(PACKAGE_PARENT) / "tools" / tool
    if not path.exists():
        pytest.skip("tools/ is not shipped with the package")
    r = subprocess.run([sys.executable, str(path), "--check"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"gelu_numba/core/{table} differs from what tools/{tool} writes"


def test_users_njit_code_gets_the_ufuncs_bits():
    """gelu_numba.scalar in a user's @njit loop, float32: the scalar emission
    of the same algorithm, so every element has the ufunc's bits."""
    from numba import njit

    from gelu_numba import scalar

    x = _data(5000)
    dy = _data(5000, seed=9)
    for name in ALL:
        f = getattr(scalar, name)
        if name in BINARY:
            @njit
            def loop(dy, x, out, f=f):
                for i in range(x.size):
                    out[i] = f(dy[i], x[i])
            out = np.empty_like(x)
            with np.errstate(all="ignore"):
                loop(dy, x, out)
                expected = getattr(gn, name)(dy, x)
        else:
            @njit
            def loop(x, out, f=f):
                for i in range(x.size):
                    out[i] = f(x[i])
            out = np.empty_like(x)
            with np.errstate(all="ignore"):
                loop(x, out)
                expected = getattr(gn, name)(x)
        assert out.dtype == np.float32
        assert np.array_equal(_bits(out), _bits(expected)), name


def _fma_pair():
    """soft_fma and the hardware instruction as compiled functions of
    float64 arrays (out_soft[i], out_hard[i] = fma(a[i], b[i], c[i]))."""
    from llvmlite import ir
    from numba import njit, types
    from numba.extending import intrinsic

    from gelu_numba.core.simd import _declare, soft_fma

    @intrinsic
    def soft(typingctx, a, b, c):
        return types.float64(a, b, c), lambda context, builder, sig, args: soft_fma(builder, *args)

    @intrinsic
    def hard(typingctx, a, b, c):
        def codegen(context, builder, sig, args):
            f64 = ir.DoubleType()
            return builder.call(_declare(builder.module, "llvm.fma.f64", f64, [f64] * 3), list(args))
        return types.float64(a, b, c), codegen

    @njit
    def run(a, b, c, out_soft, out_hard):
        for i in range(a.size):
            out_soft[i] = soft(a[i], b[i], c[i])
            out_hard[i] = hard(a[i], b[i], c[i])

    return run


@pytest.mark.skipif(not (X86 and HOST.get("fma")), reason="compares with this CPU's FMA instruction")
def test_soft_fma_is_the_fma_instruction():
    """simd.soft_fma (the scalar emission's FMA on CPUs without one) against
    vfmadd, bit for bit: random operands over 2^-300 .. 2^140, near
    cancellation, the ties that rounding t + e to nearest instead of to odd
    gets wrong (c + p exactly half an ulp off a double, the product's error
    tiny), the whole exponent range (subnormal, overflowing and infinite
    products, where it branches to libm), and the special values."""
    run = _fma_pair()
    rng = np.random.default_rng(11)
    n = 200_000
    mag = lambda: rng.standard_normal(n) * 2.0 ** rng.integers(-300, 140, n)  # noqa: E731
    cases = []
    a, b = mag(), mag()
    cases += [(a, b, mag()), (a, b, -(a * b) * (1 + rng.standard_normal(n) * 2.0 ** rng.integers(-60, -1, n))),
              (a, b, (a * b) * 2.0 ** rng.integers(-120, 120, n) * rng.choice([-1.0, 1.0], n))]
    j = rng.integers(0, 200, n).astype(np.float64)
    scale = 2.0 ** rng.integers(-200, 100, n)
    a = (1 + rng.random(n)) * scale
    cases.append((a, (2 * j + 1) * 2.0**-53 / (a / scale), (1 - j * 2.0**-52) * scale))
    full = lambda: rng.standard_normal(n) * 2.0 ** rng.integers(-1074, 1022, n).astype(np.float64)  # noqa: E731
    a, b, c = full(), full(), full()
    with np.errstate(all="ignore"):
        c[::3] = -(a * b)[::3] * (1 + 2.0**-40)  # near cancellation across the exponent range
    cases.append((a, b, c))  # the ends of the range: the branch to libm's fma
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 3.0, 1e-300, 2.0**-1074, 1e308])
    cases.append(tuple(g.ravel() for g in np.meshgrid(special, special, special)))
    ties = 0
    for a, b, c in cases:
        soft, hard = np.empty_like(a), np.empty_like(a)
        with np.errstate(all="ignore"):
            run(a, b, c, soft, hard)
            ties += int(np.sum((a * b + c) != hard))  # cases two roundings get wrong
        diff = soft.view(np.uint64) != hard.view(np.uint64)
        assert not diff.any(), (a[diff][:3], b[diff][:3], c[diff][:3], soft[diff][:3], hard[diff][:3])
    assert ties > 10_000  # the cases exercise the single rounding


def _vector_loop(name, isa):
    """run(dy, x, out): kernel `name`'s unit-stride loop in emission `isa`
    (dy unused by the unary kernels), compiled on its own."""
    from numba import njit

    from gelu_numba.core import vector32 as V

    if name in BINARY:
        @njit
        def run(dy, x, out):
            V.run_binary(name, isa, dy.ctypes.data, x.ctypes.data, out.ctypes.data, 0, x.size, False)
    else:
        @njit
        def run(dy, x, out):
            V.run_unary(name, isa, x.ctypes.data, out.ctypes.data, 0, x.size)
    return run


def _ufunc(name, dy, x):
    f = getattr(gn, name)
    return f(dy, x) if name in BINARY else f(x)


def test_the_soft_fma_emission_gives_the_same_bits():
    """Every kernel through the scalar emission with soft_fma (what CPUs
    without FMA run) gives the ufuncs' bits on a dense sample."""
    x = _data(20000)
    dy = _data(x.size, seed=12)
    for name in ALL:
        out = np.empty_like(x)
        with np.errstate(all="ignore"):
            _vector_loop(name, "soft")(dy, x, out)
            expected = _ufunc(name, dy, x)
        assert np.array_equal(_bits(out), _bits(expected)), name


@pytest.mark.skipif(not X86, reason="x86-64 targets")
def test_a_cpu_without_fma_gets_the_soft_fma_loops():
    """Compiled for x86-64 (no FMA): the loops call libm's fma where this
    CPU has FMA (glibc then runs the instruction), and compute FMAs by
    simd.soft_fma where it has not (simulated: host features without fma),
    float32 and float64 (random bits and the tails included); the bits are
    the host's either way."""
    code = """
        import hashlib
        import numpy as np
        from llvmlite import binding as llvm
        real = llvm.get_host_cpu_features
        def without_fma():
            f = real()
            f["fma"] = False
            return f
        llvm.get_host_cpu_features = without_fma
        import gelu_numba as gn
        from gelu_numba.core import vector32
        print(vector32.variant(), vector32.emission())
        rng = np.random.default_rng(5)
        x = rng.normal(0, 3, 5000).astype(np.float32)
        dy = rng.normal(0, 1, 5000).astype(np.float32)
        x64 = np.concatenate([rng.normal(0, 3, 3000), -rng.uniform(5, 40, 1000), rng.uniform(-1.2, -0.3, 1000),
                              rng.integers(0, 2**64 - 1, 1000, dtype=np.uint64, endpoint=True).view(np.float64)])
        dy64 = rng.normal(0, 1, x64.size)
        h = hashlib.sha256()
        with np.errstate(all="ignore"):
            for name in ("gelu", "gelu_tanh_grad", "gelu_sigmoid_grad2", "gelu_backward"):
                f = getattr(gn, name)
                for a, b in ((dy, x), (dy64, x64)):
                    h.update((f(a, b) if name.endswith("backward") else f(b)).tobytes())
        print(h.hexdigest())
    """
    code_, out, err = _python(code, NUMBA_CPU_NAME="x86-64", NUMBA_CPU_FEATURES="")
    assert code_ == 0, err[-2000:]
    first, digest = out.split("\n")[:2]
    assert first == "scalar soft"
    code_, out2, err = _python(code.replace('f["fma"] = False', 'pass'), NUMBA_CPU_NAME="x86-64", NUMBA_CPU_FEATURES="")
    assert code_ == 0, err[-2000:]
    assert out2.split("\n")[0] == ("scalar scalar" if HOST.get("fma") else "scalar soft")
    code_, out3, err = _python(code.replace('f["fma"] = False', 'pass'))
    assert code_ == 0, err[-2000:]
    assert out3.split("\n")[1] == digest  # the host's own variant: the same bits


@pytest.mark.skipif(not (X86 and HOST.get("avx512f") and CAN_RUN_AVX2), reason="needs an AVX-512 CPU")
def test_the_avx2_variant_keeps_512_bit_code_out():
    """GELU_NUMBA_SIMD=avx2 on an AVX-512 CPU is asked for to keep 512-bit
    code out (CPUs that lower the clock for it): no zmm register in the
    ufuncs' own inner loops, float32 (the SIMD loop and the strided path
    beside it) and float64, serial and threaded.  LLVM paired the 8-float
    blocks into zmm registers until the loops asked for 256-bit vectors,
    and again inside the ufunc loop, whose other inlined callees made it
    drop "min-legal-vector-width" (the SIMD loop is now a function of its
    own), and the strided path and the float64 loops were vectorised
    512 bits wide.  The bits are the AVX-512 loops'."""
    code = """
        import numpy as np
        import gelu_numba as gn
        from gelu_numba.core import formulas, loops, vector32
        forced = vector32.variant() == "avx2"
        rng = np.random.default_rng(2)
        x = rng.normal(0, 3, 3001).astype(np.float32)
        x[::7] = rng.integers(0, 2**32, x[::7].size, dtype=np.uint64).astype(np.uint32).view(np.float32)
        dy = rng.normal(0, 1, x.size).astype(np.float32)
        for name in ("gelu", "gelu_tanh", "gelu_backward"):
            binary = name.endswith("backward")
            if forced:
                for parallel in (False, True):
                    make32 = loops.binary32 if binary else loops.unary32
                    make64 = loops.binary if binary else loops.unary
                    for loop in (make32(name, parallel, cache=False),
                                 make64(getattr(formulas, name), np.float64, parallel, cache=False)):
                        asm = loop._library.get_asm_str()
                        assert "ymm" in asm and "zmm" not in asm, (name, parallel, asm.count("zmm"))
            f = getattr(gn, name)
            for a, b in ((dy, x), (dy[::2], x[::2]), (dy.astype(np.float64), x.astype(np.float64))):
                y = f(a, b) if binary else f(b)
                print(name, y.view(np.uint8).sum(dtype=np.uint64), y.tobytes().hex()[:64])
    """
    code_, forced, err = _python(code, GELU_NUMBA_SIMD="avx2")
    assert code_ == 0, err[-3000:]
    code_, host, err = _python(code)
    assert code_ == 0, err[-3000:]
    assert forced == host
