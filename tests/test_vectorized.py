"""The inner loops compile to packed SIMD arithmetic.

Speed itself is measured by the benchmarks, not here; this checks the
property the speed rests on: the kernel is inlined into the unit-stride loop
and LLVM vectorises it (a scalar loop would show only scalar FMAs).
"""

import re

import llvmlite.binding as llvm
import numpy as np
import pytest

from gelu_numba import _loops, _scalar

FEATURES = llvm.get_host_cpu_features()
WIDE = "zmm" if FEATURES.get("avx512f") else "ymm" if FEATURES.get("avx2") else None

pytestmark = pytest.mark.skipif(WIDE is None, reason="needs an x86-64 CPU with AVX2 or AVX-512")

PACKED_FMA = re.compile(r"\bvf(?:n?m(?:add|sub))\d{3}p([sd])\s+[^\n]*%(?:ymm|zmm)")


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh_grad"])
def test_unit_stride_loop_uses_packed_fma(name, dtype):
    loop = _loops.unary(getattr(_scalar, name), dtype, parallel=False, cache=False)
    asm = loop._library.get_asm_str()
    packed = PACKED_FMA.findall(asm)
    # float32 kernels compute in float64 on the CPU (see gelu_numba._fp).
    assert packed, "no packed FMA: the hot loop did not vectorise"
    assert set(packed) == {"d"}, f"unexpected packed element types {set(packed)}"
    assert re.search(rf"%{WIDE}\d", asm), f"no {WIDE} registers in the loop"


def test_backward_loop_uses_packed_fma():
    loop = _loops.binary(_scalar.gelu_backward, np.float32, parallel=False, cache=False)
    assert PACKED_FMA.search(loop._library.get_asm_str())


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "gelu_sigmoid_grad"])
def test_native_float32_loop_computes_in_float32(name):
    """The experimental NATIVE policy keeps float32 in float32: packed
    single-precision FMAs only (16 lanes with AVX-512), nothing widened."""
    from gelu_numba import _build

    loop = _loops.unary(_build.native_kernel(name), np.float32, parallel=False, cache=False)
    asm = loop._library.get_asm_str()
    packed = PACKED_FMA.findall(asm)
    assert packed, "no packed FMA: the hot loop did not vectorise"
    assert set(packed) == {"s"}, f"unexpected packed element types {set(packed)}"
    assert not re.search(r"\bvcvtps2pd\b", asm), "float32 widened to float64"
    assert re.search(rf"%{WIDE}\d", asm), f"no {WIDE} registers in the loop"
