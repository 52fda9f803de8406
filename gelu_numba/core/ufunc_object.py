"""What the ufuncs that ``build`` and ``fused`` make need of the NumPy ufunc
object itself: the module pickle finds it in, and write-only outputs."""

import ctypes


def _set_module(f, module):
    """Name the module that pickle finds the ufunc in.

    NumPy pickles a ufunc by name and, without ``__module__``, looks for it
    in every module of ``sys.modules``: slow, and it imports deprecated
    modules (mpmath 1.4's ``rational`` warns).  NumPy 2 ufuncs take the
    attribute; older ones keep the search.  The same-precision target is not
    public: it keeps the search, which finds no module and fails, as it should.
    """
    try:
        f.__module__ = module
    except (AttributeError, TypeError):
        pass


class _UFuncHead(ctypes.Structure):
    """PyUFuncObject (numpy/ufuncobject.h) up to op_flags; the same layout
    in NumPy 1.16 to 2.x, and checked against the object before any write."""

    _fields_ = [
        ("ob_refcnt", ctypes.c_ssize_t),
        ("ob_type", ctypes.c_void_p),
        ("nin", ctypes.c_int),
        ("nout", ctypes.c_int),
        ("nargs", ctypes.c_int),
        ("identity", ctypes.c_int),
        ("functions", ctypes.c_void_p),
        ("data", ctypes.c_void_p),
        ("ntypes", ctypes.c_int),
        ("reserved1", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("types", ctypes.c_void_p),
        ("doc", ctypes.c_char_p),
        ("ptr", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("userloops", ctypes.c_void_p),
        ("core_enabled", ctypes.c_int),
        ("core_num_dim_ix", ctypes.c_int),
        ("core_num_dims", ctypes.c_void_p),
        ("core_dim_ixs", ctypes.c_void_p),
        ("core_offsets", ctypes.c_void_p),
        ("core_signature", ctypes.c_char_p),
        ("type_resolver", ctypes.c_void_p),
        ("dict", ctypes.c_void_p),
        ("vectorcall", ctypes.c_void_p),
        ("reserved3", ctypes.c_void_p),
        ("op_flags", ctypes.POINTER(ctypes.c_uint32)),
    ]


def _plain_outputs(f):
    """Let NumPy treat the outputs as write-only, as for its own ufuncs.

    Numba's ``fromfunc`` flags every ufunc output READWRITE
    (numba/np/ufunc/_ufunc.c), so NumPy refuses ``where=`` ("ARRAYMASK, but
    no WRITEMASKED operands"; numba issue 7373).  An elementwise loop never
    reads its output, so the flags are cleared, once the struct is confirmed
    to be laid out as declared.  If it is not, the ufunc works as before,
    without where=.
    """
    head = _UFuncHead.from_address(id(f))
    expected = (f.nin, f.nout, f.nargs, f.ntypes, f.__name__.encode(), 0)
    found = (head.nin, head.nout, head.nargs, head.ntypes, head.name, head.core_enabled)
    if found != expected or not head.op_flags:
        return
    for i in range(f.nin, f.nargs):
        head.op_flags[i] = 0
