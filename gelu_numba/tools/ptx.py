"""Compile the CUDA kernels to PTX and SASS without a GPU, and inspect them.

Used by the tests and CI: NVVM (from the ``cuda-toolkit``/``nvidia-nvvm``
wheels that ``numba-cuda[cu13]`` pulls in) turns each kernel into PTX, and
nvJitLink assembles that for a real architecture, reporting registers and
spills.  No driver is needed, with one shim: numba-cuda compiles every
device function a kernel calls for the *current device's* compute capability,
so while compiling here that device is stood in for by the target one.
"""

import contextlib
import re
from dataclasses import dataclass

from ..core.names import ARITY, BINARY, FUSED, NAMES, parse_fused


@dataclass
class KernelReport:
    name: str
    dtype: str
    layout: str
    arch: str
    f64_instructions: int
    local_memory: int
    spill_stores: int
    spill_loads: int
    registers: int

    @property
    def clean(self):
        return (self.f64_instructions == 0 or self.dtype == "float64") and not (
            self.local_memory or self.spill_stores or self.spill_loads
        )


class _TargetDevice:
    def __init__(self, cc):
        self.compute_capability = cc


@contextlib.contextmanager
def target_device(cc):
    """Compile device functions for `cc` when no GPU is present."""
    from numba.cuda import dispatcher

    original = dispatcher.get_current_device
    try:
        original()
        yield  # a real device: use it
        return
    except Exception:  # noqa: BLE001 (no driver)
        pass
    dispatcher.get_current_device = lambda: _TargetDevice(cc)
    try:
        yield
    finally:
        dispatcher.get_current_device = original


def signature(name, dtype, layout, ndim=2):
    from numba import types

    elem = getattr(types, dtype)
    arr = elem[::1]
    if name in FUSED:
        operands = sum(ARITY[parse_fused(name)[0]])
    else:
        operands = (2 if name in BINARY else 1) + 1
    if layout == "contiguous":
        return (*([arr] * operands), types.int64)
    dims = types.UniTuple(types.int64, ndim)
    per_operand = (arr, dims, types.int64)
    return (*(per_operand * operands), dims, types.int64)


def ptx(name, dtype="float32", layout="contiguous", cc=(8, 0)):
    """PTX of one kernel ('contiguous' or 'strided' layout)."""
    from numba import cuda

    from ..core import cuda as device

    device.numba_cuda()
    contiguous, strided = (device.fused_kernels if name in FUSED else device.kernels)(name, False)
    kernel = contiguous if layout == "contiguous" else strided
    with target_device(cc):
        code, _ = cuda.compile_ptx(kernel.py_func, signature(name, dtype, layout), cc=cc)
    return code


F64_INSTRUCTION = re.compile(r"^\s*(?!//)[a-z][\w.]*\.f64\b", re.MULTILINE)


def sass_info(code, arch):
    """(registers, spill stores, spill loads) from assembling PTX for `arch`."""
    from cuda.bindings import nvjitlink

    handle = nvjitlink.create(2, [f"-arch={arch}", "-verbose"])
    try:
        data = code.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel")
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
    finally:
        nvjitlink.destroy(handle)
    text = log.decode()
    spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", text)
    regs = re.findall(r"Used (\d+) registers", text)
    stores = sum(int(s) for s, _ in spills)
    loads = sum(int(ld) for _, ld in spills)
    return (max(int(r) for r in regs) if regs else -1), stores, loads


def inspect(name, dtype="float32", layout="contiguous", cc=(8, 0)):
    """A :class:`KernelReport` for one kernel."""
    code = ptx(name, dtype, layout, cc)
    arch = f"sm_{cc[0]}{cc[1]}"
    registers, stores, loads = sass_info(code, arch)
    return KernelReport(
        name, dtype, layout, arch,
        f64_instructions=len(F64_INSTRUCTION.findall(code)),
        local_memory=len(re.findall(r"\.local\b", code)),
        spill_stores=stores, spill_loads=loads, registers=registers,
    )


def inspect_all(dtypes=("float32", "float64"), layouts=("contiguous", "strided"), ccs=((8, 0), (9, 0))):
    return [inspect(n, d, layout, cc) for cc in ccs for d in dtypes for layout in layouts for n in NAMES + FUSED]
