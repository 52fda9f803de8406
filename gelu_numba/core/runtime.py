"""Process-wide state that the compiled ufunc loops read and write.

NumPy hands every inner loop a ``data`` pointer, fixed when the ufunc is
made; the loops of this package get the address of one small block of
memory per process (:data:`ADDRESS`), laid out as int64 slots:

``LOCK``
    0, or 1 while one call holds Numba's thread pool.  A multi-threaded loop
    takes it with an atomic compare-and-swap and gives it back when its
    parallel region ends; a call that finds it taken runs the same loop
    serially, in its own thread.  So no two Python threads are ever inside
    Numba's threading layer at once: Numba's ``workqueue`` layer aborts the
    process when that happens, and on the other layers two pools of threads
    on the same cores only slow each other down.
``SERIAL_ONLY``
    1 in a forked child whose parent had started a threading layer that does
    not survive fork (GNU OpenMP terminates such a child the moment it
    starts a parallel region; see :data:`FORK_SAFE_LAYERS`): the child
    computes everything single-threaded.  Set by an ``os.register_at_fork``
    handler, read by every multi-threaded call.
``SERIAL_UNTIL``, ``STRIKES``, ``LOSS``
    the fallback to serial calls when threads do not pay (see "Threads that
    do not pay" below): the time (in the clock of :func:`loops.now`) before
    which calls long enough for threads run serially, the number of slow
    threaded calls in a row, and the time they lost.  Read and written only
    by the call that holds ``LOCK``.
``JUDGED`` + i
    0 until the first threaded call of loop i (:func:`loop_slot`) has
    ended: it starts the pool or runs freshly loaded code, and is not judged.
``BLOCK_FLAGS`` + b, ``BLOCK_TICKS`` + b
    the exception flags and the clock ticks of block b of the threaded call
    that holds ``LOCK`` (in this block rather than in arrays of the call's
    own: each NumPy array a threaded call allocates and hands to the
    threads cost about 1 us a call, 10 % of a 16K-element call).
``PATH_*``
    how many inner-loop calls took each path (unit stride serial, threaded,
    broadcast ``dy`` serial or threaded, other strides, "declined": long
    enough for threads but run serially, the lock being taken or the
    process serial-only, and "fallback": run serially because threads did
    not pay lately); one increment per call, not per element.  ``ENGAGED``
    counts the times the fallback engaged.  Diagnostics, read with
    :func:`paths`: the tests use them to prove that an input reaches the
    path it is meant to, and the benchmarks to say when the fallback ran.

Results do not depend on the path: every path inlines the same kernel.

Threads that do not pay
-----------------------
A threaded call waits for every thread of the pool to take part, and a
thread that another program's threads keep off a core can take a scheduler
time slice (milliseconds) to start: a 64K-element call then costs 50-100
times the serial call (issue 28).  So each threaded call is judged after it
ends: its wall time against the serial time it would have taken, estimated
from its own fastest block (time per element, times the elements).  Two slow
calls in a row (one alone is often a pool waking up) engage the fallback:
calls run serially, with the same bits, for FALLBACK_FACTOR times the time
the slow calls lost, doubled after each failed return (at most
FALLBACK_CAP_MS), then threads are tried again.  The time lost to trying is
so bounded by about 1/FALLBACK_FACTOR of the time spent serially.
"""

import ctypes
import os
import sys

LOCK = 0
SERIAL_ONLY = 1
SERIAL_UNTIL = 2
STRIKES = 3
LOSS = 4
FAILURES = 6
#: 1 where GELU_NUMBA_FALLBACK=0: threaded calls are never judged.
FALLBACK_OFF = 7
#: Clock ticks per millisecond, measured when the first multi-threaded
#: ufunc is built (:func:`calibrate`); 0 until then (no call judged).
TICKS_PER_MS = 16
JUDGED = 24
LOOPS = 64
#: Each block of the threaded call under way: its exception flags and its
#: clock ticks (the call holds LOCK; at most loops.MAX_BLOCKS blocks).
BLOCK_FLAGS = JUDGED + LOOPS
MAX_BLOCKS = 64
BLOCK_TICKS = BLOCK_FLAGS + MAX_BLOCKS
#: The counters sit on their own cache line, away from the lock.
PATH_UNIT = 8
PATH_THREADED = 9
PATH_BROADCAST = 10
PATH_STRIDED = 11
PATH_DECLINED = 12
PATH_THREADED_BROADCAST = 13
PATH_FALLBACK = 14
ENGAGED = 15
PATHS = {"unit": PATH_UNIT, "threaded": PATH_THREADED, "broadcast": PATH_BROADCAST,
         "threaded_broadcast": PATH_THREADED_BROADCAST, "strided": PATH_STRIDED, "declined": PATH_DECLINED,
         "fallback": PATH_FALLBACK, "engaged": ENGAGED}

#: Serial calls last FALLBACK_FACTOR times the time the slow threaded calls
#: lost, doubled for each time the fallback engaged since threads last paid
#: (at most MAX_DOUBLINGS times), and at most FALLBACK_CAP_MS.
FALLBACK_FACTOR = 32
MAX_DOUBLINGS = 8
FALLBACK_CAP_MS = 500
#: Slow threaded calls in a row that engage the fallback.  One is not
#: enough: a pool that had gone to sleep wakes in 0.05-0.3 ms, and a virtual
#: machine's host takes a core away now and then (1-2 ms, several times a
#: minute here); the next call finds the threads running.  Engaging on one
#: slow call of 1 ms or more ran 15 % of an idle 64K benchmark serially.
STRIKES_TO_ENGAGE = 2
#: A call is slow when it took over SLOW_NUM / SLOW_DEN of the estimate: the
#: estimate (the fastest block's rate) runs 5-15 % below a serial call's
#: time, and an idle tbb pool's 64K calls, 0.8 of serial, were judged slow
#: without the margin.
SLOW_NUM, SLOW_DEN = 5, 4

_STATE = (ctypes.c_int64 * (BLOCK_TICKS + MAX_BLOCKS))()
#: The address every compiled loop receives as its ``data`` pointer.
ADDRESS = ctypes.addressof(_STATE)

#: Numba threading layers whose threads may be used again in a forked child.
#: "tbb" is fork-safe, and "workqueue" starts its threads afresh in a child;
#: GNU OpenMP terminates a child that uses it ("fork() called from a process
#: already using GNU OpenMP"), so children of an "omp" parent run serially.
#: (Measured here with numba 0.68.1: a fork pool after use, each layer.)
FORK_SAFE_LAYERS = ("tbb", "workqueue")


def loop_slot(name, itemsize):
    """The JUDGED slot of the threaded loop of kernel `name` for one float size."""
    from .names import FUSED, NAMES

    return JUDGED + 2 * (NAMES + FUSED).index(name) + (itemsize == 8)


def paths():
    """{path: calls so far} for this process (see the module docstring)."""
    return {name: int(_STATE[slot]) for name, slot in PATHS.items()}


def reset_paths():
    for slot in PATHS.values():
        _STATE[slot] = 0


#: The loops' clock, read from Python: ``loops`` puts its ``clock`` here
#: when it is imported (this module does not import it: loops imports this).
CLOCK = []


def _now():
    """The loops' clock now, or 0 before any loop module was imported."""
    return CLOCK[0]() if CLOCK else 0


def fallback():
    """The fallback's state: {"engaged": whether calls run serially now (by
    this process's clock), "strikes": slow threaded calls in a row,
    "failures": holds since threads last paid}."""
    return {"engaged": int(_STATE[SERIAL_UNTIL]) > _now(), "strikes": int(_STATE[STRIKES]),
            "failures": int(_STATE[FAILURES])}


def calibrate():
    """Measure the loops' clock against time.perf_counter (about 2 ms, once
    per process) and store its ticks per millisecond."""
    import time

    if _STATE[TICKS_PER_MS] or not CLOCK:
        return
    c0, t0 = _now(), time.perf_counter()
    while time.perf_counter() - t0 < 0.002:
        pass
    c1, t1 = _now(), time.perf_counter()
    _STATE[TICKS_PER_MS] = max(0, int((c1 - c0) / ((t1 - t0) * 1e3)))


def set_fallback(enabled):
    """Turn the fallback on or off for this process (GELU_NUMBA_FALLBACK=0
    starts it off); off, threaded calls are not judged, and a hold under way
    still ends at its time."""
    _STATE[FALLBACK_OFF] = 0 if enabled else 1


def hold_serial(ticks):
    """Run calls long enough for threads serially for `ticks` of the clock
    from now, as the fallback does (0: end it).  For tests and experiments."""
    _STATE[SERIAL_UNTIL] = _now() + int(ticks) if ticks > 0 else 0
    _STATE[STRIKES] = _STATE[LOSS] = _STATE[FAILURES] = 0


def serial_only():
    """True where this process runs the multi-threaded ufuncs serially."""
    return bool(_STATE[SERIAL_ONLY])


def launched_layer():
    """The threading layer Numba has started in this process, or None."""
    numba = sys.modules.get("numba")
    if numba is None:
        return None
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return None


def _after_fork_in_child():
    # The thread that held the pool, if any, does not exist in the child,
    # and the child's threads start afresh: no fallback inherited.
    _STATE[LOCK] = 0
    _STATE[SERIAL_UNTIL] = _STATE[STRIKES] = _STATE[LOSS] = _STATE[FAILURES] = 0
    for i in range(LOOPS):
        _STATE[JUDGED + i] = 0
    layer = launched_layer()
    if layer is not None and layer not in FORK_SAFE_LAYERS:
        _STATE[SERIAL_ONLY] = 1


_STATE[FALLBACK_OFF] = os.environ.get("GELU_NUMBA_FALLBACK", "1").strip() == "0"

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
