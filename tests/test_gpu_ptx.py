"""The CUDA kernels compile to clean PTX/SASS, checked without a GPU.

NVVM (pip wheels) compiles each kernel; nvJitLink assembles the PTX for
sm_80 and sm_90 and reports registers and spills.  float32 kernels must not
touch float64 (a stray Python float literal promotes a whole expression),
and no kernel may use local memory or spill.
"""

import os

import numpy as np
import pytest

from gelu_numba.core.build import NAMES

ptx_tools = pytest.importorskip("gelu_numba.tools.ptx")

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    pytest.skip("PTX is not compiled under the CUDA simulator", allow_module_level=True)

try:
    # numba-cuda itself, not the CUDA target Numba shipped before it (whose
    # NVVM other wheels, torch's for one, can make importable).
    from numba.cuda.extending import overload  # noqa: F401
    from numba.cuda.cudadrv import nvvm

    nvvm.NVVM()
    pytest.importorskip("cuda.bindings.nvjitlink", reason="nvJitLink unavailable: pip install '.[cuda]' (numba-cuda[cu13])")
except Exception as exc:  # noqa: BLE001
    pytest.skip(f"NVVM or nvJitLink unavailable (pip install 'numba-cuda[cu13]'): {exc}", allow_module_level=True)

CCS = [(8, 0), (9, 0)]


@pytest.mark.parametrize("cc", CCS, ids=lambda c: f"sm_{c[0]}{c[1]}")
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("name", NAMES)
def test_float32_kernels_stay_float32_and_do_not_spill(name, layout, cc):
    report = ptx_tools.inspect(name, "float32", layout, cc)
    assert report.f64_instructions == 0, f"{report}: float64 arithmetic in a float32 kernel"
    assert report.local_memory == 0 and report.spill_stores == 0 and report.spill_loads == 0, str(report)


@pytest.mark.parametrize("cc", CCS, ids=lambda c: f"sm_{c[0]}{c[1]}")
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("name", ["bias_gelu", "bias_gelu_tanh_backward", "geglu_sigmoid", "geglu_backward",
                                  "geglu_tanh_backward"])
def test_fused_float32_kernels_stay_float32_and_do_not_spill(name, layout, cc):
    """The fused forms (the sum or product, then the single form's scalar
    function): no float64 in float32 kernels, no spills."""
    report = ptx_tools.inspect(name, "float32", layout, cc)
    assert report.f64_instructions == 0, f"{report}: float64 arithmetic in a float32 kernel"
    assert report.local_memory == 0 and report.spill_stores == 0 and report.spill_loads == 0, str(report)


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh_grad", "gelu_sigmoid_backward", "gelu_tanh_grad2", "gelu_grad2"])
def test_float64_kernels_do_not_spill(name):
    report = ptx_tools.inspect(name, "float64", "contiguous", (9, 0))
    assert report.f64_instructions > 0
    assert report.local_memory == 0 and report.spill_stores == 0 and report.spill_loads == 0, str(report)


def test_the_check_sees_a_stray_float_literal():
    from numba import cuda, types

    def promoted(x, out, n):
        i = cuda.grid(1)
        if i < n:
            out[i] = x[i] * 0.1  # a Python float: a float64 multiply and conversions

    arr = types.float32[::1]
    code, _ = cuda.compile_ptx(promoted, (arr, arr, types.int64), cc=(8, 0))
    assert ptx_tools.F64_INSTRUCTION.findall(code)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_user_kernels_call_the_public_scalar_functions(dtype):
    """gelu_numba.scalar's functions (plain-Python wrappers that check their
    arguments) compile inside a user's @cuda.jit code, float32 staying float32."""
    from numba import cuda, types

    from gelu_numba.core import cuda as device
    from gelu_numba.scalar import gelu, gelu_backward, gelu_tanh_grad2

    device.numba_cuda()

    def user(x, out):
        i = cuda.grid(1)
        if i < x.size:
            out[i] = gelu(x[i]) + gelu_backward(x[i], x[i]) + gelu_tanh_grad2(x[i])

    arr = getattr(types, dtype)[::1]
    with ptx_tools.target_device((8, 0)):
        code, _ = cuda.compile_ptx(user, (arr, arr), cc=(8, 0))
    assert bool(ptx_tools.F64_INSTRUCTION.search(code)) == (dtype == "float64")
