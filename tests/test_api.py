"""The public names: real ufuncs, picklable, lazily built."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

import gelu_numba as gn
import gelu_numba.parallel as gp
from _kernels import ALL, BINARY


@pytest.mark.parametrize("module", [gn, gp], ids=["serial", "parallel"])
@pytest.mark.parametrize("name", ALL)
def test_public_names_are_ufuncs(module, name):
    f = getattr(module, name)
    assert isinstance(f, np.ufunc)
    assert f.__name__ == name
    arity = 2 if name in BINARY else 1
    assert (f.nin, f.nout) == (arity, 1)
    assert f.types == ["f" * arity + "->f", "d" * arity + "->d"]
    assert pickle.loads(pickle.dumps(f)) is f


def test_all_and_dir_list_the_kernels():
    from gelu_numba.core.names import FUSED

    assert set(ALL) | set(FUSED) <= set(gn.__all__) and set(ALL) | set(FUSED) <= set(dir(gn))
    assert set(gp.__all__) == set(ALL) | set(FUSED)


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute"):
        gn.gelu_relu  # noqa: B018


def test_import_compiles_nothing():
    code = "import sys, gelu_numba; print([m for m in ('numpy', 'numba', 'llvmlite') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scalar_kernels_work_in_user_njit_code():
    from gelu_numba.scalar import gelu, gelu_backward, gelu_tanh_grad

    @njit
    def user(x, dy):
        return gelu(x) + gelu_tanh_grad(x) + gelu_backward(dy, x)

    x = np.float32(-0.5)
    assert user(x, np.float32(2)) == np.float32(gn.gelu(x) + gn.gelu_tanh_grad(x) + gn.gelu_backward(2, x))
    assert user(-0.5, 2.0) == gn.gelu(-0.5) + gn.gelu_tanh_grad(-0.5) + gn.gelu_backward(2.0, -0.5)
    assert gelu(np.float32(-1.0)) == gn.gelu(np.float32(-1.0))  # plain Python too


# Plain-Python calls of gelu_numba.scalar with other numbers: what the ufunc
# gives (NumPy's casting), never a silently wrong value (issue 28).
_NUMBERS = [1, 3, -2, 0, True, False, np.int8(-3), np.int16(2), np.uint8(2), np.uint16(1), np.float16(1),
            np.float16(-0.75), np.int32(2), np.int64(-1), np.uint32(7), np.uint64(5), np.array([1, -2])]


@pytest.mark.parametrize("value", _NUMBERS, ids=repr)
@pytest.mark.parametrize("name", ["gelu", "gelu_tanh_grad", "gelu_sigmoid_grad2"])
def test_scalar_plain_python_numbers_give_the_ufuncs_result(name, value):
    from gelu_numba import scalar

    got, want = getattr(scalar, name)(value), getattr(gn, name)(value)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    assert np.asarray(got).tobytes() == np.asarray(want).tobytes()


@pytest.mark.parametrize("dy, x", [(1.0, 1), (1, 1), (2, np.float32(-1)), (2.0, np.float32(0.5)),
                                   (np.float16(2), np.float16(-1)), (True, 3), (np.float32(1), -1.0)])
def test_scalar_plain_python_backward_mixed_numbers(dy, x):
    from gelu_numba import scalar

    for name in ("gelu_backward", "gelu_tanh_backward"):
        got, want = getattr(scalar, name)(dy, x), getattr(gn, name)(dy, x)
        assert type(got) is type(want) and got.tobytes() == want.tobytes(), (name, dy, x, got, want)


@pytest.mark.parametrize("value", [1 + 2j, np.complex64(1), "1", None, np.longdouble(1), 2**2000, [1.0]],
                         ids=lambda v: type(v).__name__)
def test_scalar_plain_python_refuses_what_is_not_a_real_number(value):
    from gelu_numba import scalar

    with pytest.raises(TypeError, match="accepts real numbers"):
        scalar.gelu(value)
    with pytest.raises(TypeError, match="accepts real numbers"):
        scalar.gelu_backward(value, 1.0)


def test_scalar_compiled_calls_take_floats_only():
    import numba
    from gelu_numba.scalar import gelu

    @njit
    def user(x):
        return gelu(x)

    assert user(1.0) == gn.gelu(1.0)
    with pytest.raises(numba.core.errors.TypingError, match="gelu"):
        user(1)
