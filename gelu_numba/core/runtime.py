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
``PATH_*``
    how many inner-loop calls took each path (unit stride serial, threaded,
    broadcast ``dy`` serial or threaded, other strides, and "declined": long
    enough for threads but run serially, the lock being taken or the
    process serial-only); one increment
    per call, not per element.  Diagnostics, read with :func:`paths`: the
    tests use them to prove that an input reaches the path it is meant to.

Results do not depend on the path: every path inlines the same kernel.
"""

import ctypes
import os
import sys

LOCK = 0
SERIAL_ONLY = 1
#: The counters sit on their own cache line, away from the lock.
PATH_UNIT = 8
PATH_THREADED = 9
PATH_BROADCAST = 10
PATH_STRIDED = 11
PATH_DECLINED = 12
PATH_THREADED_BROADCAST = 13
PATHS = {"unit": PATH_UNIT, "threaded": PATH_THREADED, "broadcast": PATH_BROADCAST,
         "threaded_broadcast": PATH_THREADED_BROADCAST, "strided": PATH_STRIDED, "declined": PATH_DECLINED}

_STATE = (ctypes.c_int64 * 16)()
#: The address every compiled loop receives as its ``data`` pointer.
ADDRESS = ctypes.addressof(_STATE)

#: Numba threading layers whose threads may be used again in a forked child.
#: "tbb" is fork-safe, and "workqueue" starts its threads afresh in a child;
#: GNU OpenMP terminates a child that uses it ("fork() called from a process
#: already using GNU OpenMP"), so children of an "omp" parent run serially.
#: (Measured here with numba 0.68.1: a fork pool after use, each layer.)
FORK_SAFE_LAYERS = ("tbb", "workqueue")


def paths():
    """{path: calls so far} for this process (see the module docstring)."""
    return {name: int(_STATE[slot]) for name, slot in PATHS.items()}


def reset_paths():
    for slot in PATHS.values():
        _STATE[slot] = 0


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
    # The thread that held the pool, if any, does not exist in the child.
    _STATE[LOCK] = 0
    layer = launched_layer()
    if layer is not None and layer not in FORK_SAFE_LAYERS:
        _STATE[SERIAL_ONLY] = 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
