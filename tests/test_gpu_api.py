"""gelu_numba.gpu: importable anywhere; the same names; honest about the GPU."""

import pickle
import subprocess
import sys

import pytest

import gelu_numba.gpu as gg
from gelu_numba.core.build import NAMES


def test_same_names_as_the_cpu_ufuncs():
    for name in NAMES:
        k = getattr(gg, name)
        assert k.__name__ == name and callable(k)
        assert pickle.loads(pickle.dumps(k)) is k
    assert set(NAMES) <= set(gg.__all__)


def test_availability_is_reported():
    assert isinstance(gg.is_available(), bool)
    assert isinstance(gg.describe(), str) and gg.describe()


def test_import_with_numba_cuda_installed():
    # numba-cuda installs an import hook (_numba_cuda_redirector) that captures
    # every module name containing "numba.cuda"; a module gelu_numba.cuda
    # would recurse forever on import.  The target is gelu_numba.gpu.
    pytest.importorskip("numba.cuda")
    code = "import gelu_numba, gelu_numba.gpu, gelu_numba.parallel; print(gelu_numba.gpu.describe())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # (find_spec("gelu_numba.cuda") itself would trip the hook's recursion)
    import pathlib

    import gelu_numba

    package = pathlib.Path(gelu_numba.__file__).parent
    assert not (package / "cuda.py").exists() and not (package / "cuda").is_dir()


def test_host_arrays_are_refused_before_any_launch():
    import numpy as np

    with pytest.raises(TypeError, match="device arrays"):
        gg.gelu(np.ones(3))
    with pytest.raises(TypeError, match="CUDA device array"):
        gg.gelu([1.0, 2.0])
