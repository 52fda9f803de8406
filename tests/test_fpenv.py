"""The kernels give the same bits whatever floating-point environment the
caller left (flush-to-zero, denormals-are-zero, another rounding), in every
thread, and give the caller's environment back with the flags they raised.

Each case runs in a subprocess with a timeout: it changes the process's
MXCSR, which the rest of the test session must not inherit.  The test sets
MXCSR with its own ``ldmxcsr``, written here, not with gelu_numba's.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import llvmlite.binding as llvm
import pytest

pytestmark = pytest.mark.skipif(not llvm.get_process_triple().startswith("x86_64"),
                                reason="MXCSR is the x86-64 floating-point control register")

SCRIPT = textwrap.dedent(r"""
    import json, sys
    import numpy as np
    from llvmlite import ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic
    import gelu_numba as gn
    import gelu_numba.parallel as gp

    def _call(builder, name, slot):
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        builder.call(fn, [builder.bitcast(slot, ir.IntType(8).as_pointer())])

    @intrinsic
    def _get(typingctx):
        def codegen(context, builder, sig, args):
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            _call(builder, "llvm.x86.sse.stmxcsr", slot)
            return builder.load(slot)
        return types.uint32(), codegen

    @intrinsic
    def _set(typingctx, value):
        def codegen(context, builder, sig, args):
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            builder.store(context.cast(builder, args[0], sig.args[0], types.uint32), slot)
            _call(builder, "llvm.x86.sse.ldmxcsr", slot)
            return context.get_dummy_value()
        return types.none(value), codegen

    @njit
    def get_mxcsr():
        return _get()

    @njit
    def set_mxcsr(v):
        _set(v)

    mode = int(sys.argv[1], 16)
    rng = np.random.default_rng(7)
    def data(dtype):
        tiny = np.finfo(dtype).smallest_subnormal
        tail = -np.linspace(10.0 if dtype == np.float32 else 37.0, 14.0 if dtype == np.float32 else 38.5, 3000)
        return np.concatenate([
            tail.astype(dtype),                                        # results just above and in the subnormals
            (tiny * rng.integers(1, 1 << 20, 3000)).astype(dtype),     # subnormal inputs
            -(tiny * rng.integers(1, 1 << 20, 3000)).astype(dtype),
            rng.normal(0, 3, 40000).astype(dtype),                     # enough for the threaded path
        ])

    inputs = {dtype: data(dtype) for dtype in (np.float32, np.float64)}
    gradients = {dtype: np.linspace(0.5, 2, x.size).astype(dtype) for dtype, x in inputs.items()}

    def results(modules):
        out = {}
        for dtype, x in inputs.items():
            dy = gradients[dtype]
            for module, label in modules:
                for name in ("gelu", "gelu_tanh", "gelu_sigmoid", "gelu_grad", "gelu_grad2"):
                    out[f"{label}/{name}/{dtype.__name__}"] = getattr(module, name)(x).tobytes().hex()
                out[f"{label}/gelu_backward/{dtype.__name__}"] = module.gelu_backward(dy, x).tobytes().hex()
                out[f"{label}/strided/{dtype.__name__}"] = module.gelu(x[::3]).tobytes().hex()
        return out

    # The reference: the serial loops in the default environment (every
    # path gives the same bits).  The thread pool is not started yet.
    with np.errstate(all="ignore"):
        before = results([(gn, "")])
    default = get_mxcsr()
    set_mxcsr(np.uint32((default & ~0xE07F) | mode))   # flags cleared, the mode set
    caller = get_mxcsr()
    # Numba's threads start now, in the user's own parallel code, and
    # inherit the caller's mode.
    from numba import prange

    @njit(parallel=True)
    def users_code(a):
        for i in prange(a.size):
            a[i] += 1.0

    users_code(np.zeros(1 << 16))
    with np.errstate(all="ignore"):
        during = results([(gn, "serial"), (gp, "parallel")])
    after = get_mxcsr()
    # A result in the subnormals raises underflow, which NumPy must still see.
    try:
        with np.errstate(under="raise"):
            gn.gelu(np.array([-38.0]))
        underflow_seen = False
    except FloatingPointError:
        underflow_seen = True
    after_raise = get_mxcsr()
    set_mxcsr(default)
    differ = sorted(k for k in during if during[k] != before["/" + k.split("/", 1)[1]])
    print("RESULT" + json.dumps({"differ": differ, "caller": caller, "after": after,
                                 "after_raise": after_raise, "underflow_seen": underflow_seen}))
""")

MODES = {
    "flush-to-zero and denormals-are-zero": 0x8040,
    "round toward zero": 0x6000,
    "round up, FTZ and DAZ": 0x4000 | 0x8040,
}


@pytest.mark.parametrize("mode", list(MODES))
def test_results_and_caller_environment_survive_the_callers_mode(mode, tmp_path):
    import gelu_numba

    # The gelu_numba this process tests, wherever it was imported from.
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(gelu_numba.__file__).parents[1]))
    r = subprocess.run([sys.executable, "-c", SCRIPT, hex(MODES[mode])], capture_output=True, text=True,
                       timeout=600, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")][-1][len("RESULT"):])
    assert out["caller"] & 0xE040 == MODES[mode], "the test could not set the mode"
    assert not out["differ"], f"bits change under {mode}: {out['differ']}"
    control = ~0x3F & 0xFFFF
    assert out["after"] & control == out["caller"] & control, "the caller's control bits were not given back"
    assert out["underflow_seen"], "NumPy no longer sees the underflow flag a subnormal result raises"
    assert out["after_raise"] & control == out["caller"] & control
