"""The fallback from threads to serial calls (gelu_numba.core.runtime,
"Threads that do not pay"): its rule, and that the calls it runs serially
give the threaded calls' bits and go back to threads afterwards.  Not timing
tests: the rule is checked on given times, the paths by forcing a hold."""

import numpy as np
import pytest

import gelu_numba as gn
import gelu_numba.parallel as gp
from gelu_numba.core import loops, runtime as R

MS = 1_000_000  # ticks per millisecond in these examples


def decide(wall, estimate, strikes=0, loss=0, failures=0):
    return loops.decide(wall, estimate, strikes, loss, failures, MS)


def test_a_call_faster_than_serial_resets_everything():
    assert decide(100, 100, strikes=1, loss=50, failures=5) == (0, 0, 0, 0)
    assert decide(120, 100, strikes=1, loss=50, failures=5) == (0, 0, 0, 0)  # within the margin


def test_one_mildly_slow_call_does_not_engage_two_do():
    strikes, loss, failures, hold = decide(200, 100)  # 2x, but loses 100 ticks, far under 1 ms
    assert (strikes, loss, failures, hold) == (1, 100, 0, 0)
    strikes, loss, failures, hold = decide(300, 100, strikes, loss, failures)
    assert (strikes, loss, failures) == (0, 0, 1)
    assert hold == R.FALLBACK_FACTOR * 300  # both calls' loss


def test_one_very_slow_call_alone_does_not_engage():
    """A host taking a core away for a few ms, once: no hold; the next fast
    call forgets it."""
    strikes, loss, failures, hold = decide(50 * MS, MS)  # 50x, lost 49 ms
    assert (strikes, loss, failures, hold) == (1, 49 * MS, 0, 0)
    assert decide(MS, MS, strikes, loss, failures) == (0, 0, 0, 0)


def test_holds_double_with_each_failed_return_and_stay_capped():
    holds, failures = [], 0
    for _ in range(14):
        strikes, loss, _, _ = decide(3 * MS, MS // 2, failures=failures)  # lost 2.5 ms each time
        _, _, failures, hold = decide(3 * MS, MS // 2, strikes, loss, failures)
        holds.append(hold)
    cap = R.FALLBACK_CAP_MS * MS
    assert holds[0] == R.FALLBACK_FACTOR * 5 * MS
    assert all(b == min(cap, 2 * a) for a, b in zip(holds, holds[1:]))
    assert holds[-1] == cap


def test_the_estimate_is_the_fastest_whole_blocks_rate():
    spent = np.array([1000, 800, 900, 10], np.int64)  # the last block is short: 10 elements
    assert loops.serial_estimate(310, 100, spent) == 8 * 310
    assert loops.serial_estimate(310, 100, np.zeros(4, np.int64)) == 0  # no clock: never judged


def test_the_clock_runs_and_is_calibrated():
    a = loops.clock()
    gp.gelu  # noqa: B018 (builds a parallel ufunc, which calibrates)
    b = loops.clock()
    import llvmlite.binding as llvm

    if not llvm.get_process_triple().split("-")[0] in ("x86_64", "aarch64", "arm64"):
        pytest.skip("no clock on this CPU: the fallback never engages")
    assert b > a and R._STATE[R.TICKS_PER_MS] > 1000


CASES = [("gelu", np.float32, False), ("gelu", np.float64, False), ("gelu_backward", np.float32, False),
         ("gelu_tanh_backward", np.float64, False), ("gelu_backward", np.float32, True),
         ("gelu_sigmoid_backward", np.float64, True)]


@pytest.mark.parametrize("name, dtype, broadcast", CASES)
def test_calls_held_serial_give_the_same_bits_and_return_to_threads(name, dtype, broadcast):
    n = (1 << 18) + 3
    x = (np.random.default_rng(0).standard_normal(n) * 4).astype(dtype)
    x[:4] = [np.nan, -np.inf, -30, 1e-40]
    if name.endswith("backward"):
        dy = dtype(-1.5) if broadcast else (np.random.default_rng(1).standard_normal(n)).astype(dtype)
        args = (dy, x)
    else:
        args = (x,)
    want = getattr(gn, name)(*args)
    threaded = "threaded_broadcast" if broadcast else "threaded"
    R.set_fallback(True)

    R.hold_serial(10 ** 15)  # as after a slow call, for far longer than the test
    R.reset_paths()
    got = getattr(gp, name)(*args)
    assert R.paths()["fallback"] == 1 and R.paths()[threaded] == 0, R.paths()
    assert got.tobytes() == want.tobytes()
    assert R.fallback()["engaged"]

    R.hold_serial(1)  # a hold that has ended: the next call tries threads again
    R.reset_paths()
    got = getattr(gp, name)(*args)
    assert R.paths()[threaded] == 1 and R.paths()["fallback"] == 0, R.paths()
    assert got.tobytes() == want.tobytes()


def test_a_call_too_short_for_threads_is_not_counted_as_fallback():
    R.set_fallback(True)
    R.hold_serial(10 ** 15)
    R.reset_paths()
    gp.gelu(np.ones(100, np.float32))
    assert R.paths()["unit"] == 1 and R.paths()["fallback"] == 0


def test_switched_off_calls_are_not_judged():
    """GELU_NUMBA_FALLBACK=0 (set_fallback(False)): threaded calls stay
    threaded however they time; a hold set by hand still holds."""
    R.set_fallback(False)
    R.hold_serial(0)
    x = np.ones(1 << 18, np.float32)
    R.reset_paths()
    for _ in range(20):
        gp.gelu(x)
    assert R.paths()["threaded"] == 20 and R.paths()["engaged"] == 0


def test_the_environment_variable_switches_it_off_in_a_new_process():
    import subprocess
    import sys

    code = "from gelu_numba.core import runtime as R; print(R._STATE[R.FALLBACK_OFF])"
    for value, off in (("0", "1"), ("1", "0"), (None, "0")):
        import os

        env = {k: v for k, v in os.environ.items() if k != "GELU_NUMBA_FALLBACK"}
        if value is not None:
            env["GELU_NUMBA_FALLBACK"] = value
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert out.stdout.strip() == off, (value, out.stderr)
