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
    assert set(ALL) <= set(gn.__all__) and set(ALL) <= set(dir(gn))
    assert set(gp.__all__) == set(ALL)


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
