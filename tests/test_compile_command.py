"""``gelu-numba compile``: every loop of every kernel into NUMBA_CACHE_DIR,
then loaded from there by the next process.

In a file of its own: CI reruns the files that need an extra
(tests/test_reliability.py is one), which this test does not need.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import gelu_numba as gn

PACKAGE_PARENT = str(pathlib.Path(gn.__file__).resolve().parents[1])
TIMEOUT = 900


def _python(code, timeout=TIMEOUT, **env):
    """Run `code` in a fresh interpreter; (returncode, stdout, stderr).  A
    hang is a failure, not a stalled test run."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING_LAYER")}
    full["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, full.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    full.update(env)
    try:
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                           timeout=timeout, env=full, cwd=PACKAGE_PARENT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung for {timeout} s; output so far: {exc.stdout!r} {exc.stderr!r}")
    return r.returncode, r.stdout, r.stderr


#: A single form and a fused one (every kernel: 96 loops, about 90 s cold;
#: that the command covers them all is tests/test_cli.py's
#: test_compile_refuses_an_unusable_numba_cache_dir, without compiling).
KERNELS = ("gelu_tanh", "geglu_backward")


def test_numba_cache_dir_is_honoured(tmp_path):
    cache = tmp_path / "cache"
    compile_ = f"""
        import sys
        from gelu_numba.tools.cli import main
        sys.exit(main(["compile", "--kernel", {KERNELS[0]!r}, "--kernel", {KERNELS[1]!r}]))
    """
    code, out, err = _python(compile_, NUMBA_CACHE_DIR=str(cache))
    assert code == 0, err
    loops = len(KERNELS) * 2 * 2  # kernels x (serial, parallel) x (float32, float64)
    assert str(cache) in out and "2 kernels (1 fused), serial and parallel" in out
    assert f"{loops} loops compiled, 0 loaded" in out
    assert len(list(cache.rglob("*.nbc"))) == loops + 1  # and the fallback's clock (loops.clock)
    # A second process loads every loop instead of compiling it.
    code, out, err = _python(compile_, NUMBA_CACHE_DIR=str(cache))
    assert code == 0, err
    assert f"0 loops compiled, {loops} loaded from the cache in " + str(cache) in out, out
