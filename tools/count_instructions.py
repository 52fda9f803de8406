"""Count the instructions of the float32 loops' body, per 16 lanes.

    python tools/count_instructions.py [--variant avx512|scalar] [--json]
    python tools/count_instructions.py --float64 [--json]

Each kernel's unit-stride loop (``gelu_numba.core.vector32.run_unary`` /
``run_binary``) is compiled on its own for the CPU Numba targets
(NUMBA_CPU_NAME / NUMBA_CPU_FEATURES, else this machine), and its assembly
read: the loop body is the largest basic block that jumps back to itself,
and every instruction in it is counted, loads and stores included (the
remainder's masked block is not in it).  An AVX-512 body handles 16
elements; a scalar body handles what LLVM made of it (its count is
reported per 16 elements, from the body's element count when LLVM
vectorised it, which this reads from its stride).  A static count: it says
what the loop asks of the CPU, not how fast the CPU does it.

``--float64`` reads the float64 ufunc loops instead (``loops.unary`` /
``binary``, serial and threaded builds): the longest vectorised body per
kernel, its instructions and its ``movabsq`` (constant addresses reloaded
in the loop: see ``loops._run``), and whether the loops prefetch.
"""

import argparse
import collections
import json
import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABEL = re.compile(r"^(\.LBB\d+_\d+):")
JUMP = re.compile(r"^\s+j\w+\s+(\.LBB\d+_\d+)")


def loop_bodies(asm):
    """The body of every block that branches to its own label, up to that
    jump (unlabelled code may follow it)."""
    blocks, label, lines = {}, None, []
    for line in asm.splitlines():
        m = LABEL.match(line)
        if m:
            if label:
                blocks[label] = lines
            label, lines = m.group(1), []
            continue
        s = line.strip()
        if label and s and not s.startswith((".", "#")):
            lines.append(s.split("#")[0].strip())
    if label:
        blocks[label] = lines
    loops = []
    for name, body in blocks.items():
        ends = [i for i, line in enumerate(body) if (m := JUMP.match("\t" + line)) and m.group(1) == name]
        if ends:
            loops.append(body[:ends[-1] + 1])
    return loops


def loop_body(asm):
    """The instructions of the largest block that branches to its own label."""
    return max(loop_bodies(asm), key=len, default=[])


def compile_loop(name, variant):
    import numpy as np
    from numba import njit

    from gelu_numba.core import vector32 as V

    if name in V.UNARY:
        @njit
        def loop(x, out):
            V.run_unary(name, variant, x.ctypes.data, out.ctypes.data, 0, x.size)
        x = np.ones(64, np.float32)
        loop(x, np.empty_like(x))
    else:
        @njit
        def loop(x, out):
            V.run_binary(name, variant, x.ctypes.data, x.ctypes.data, out.ctypes.data, 0, x.size, False)
        x = np.ones(64, np.float32)
        loop(x, np.empty_like(x))
    return next(iter(loop.inspect_asm().values()))


def count(name, variant):
    """The loop body's instructions, scaled to 16 elements (an AVX2 body
    handles 8, a scalar one 1 unless LLVM vectorised it: then its element
    count is read from the loop counter's step)."""
    from gelu_numba.core.vector32 import LINE_BYTES

    body = loop_body(compile_loop(name, variant))
    per_body = 1 if variant == "scalar" else LINE_BYTES // 4
    if variant == "scalar":
        steps = [int(m.group(1)) for line in body for m in [re.match(r"addq\s+\$(\d+),", line)] if m]
        per_body = max([1] + [s // 4 for s in steps if s % 4 == 0 and s >= 8])
    mnemonics = collections.Counter(line.split()[0] for line in body)
    scale = 16 / per_body
    return {"instructions_per_16": round(len(body) * scale), "body": len(body), "elements_per_body": per_body,
            "mnemonics": dict(mnemonics.most_common())}


def vector_bodies(asm):
    """The bodies of every unit-stride loop in `asm` with packed float64
    FMAs (the strided path's loop, if LLVM vectorised it, gathers: not
    one of these)."""
    return [body for body in loop_bodies(asm)
            if any(re.match(r"vfn?m(?:add|sub)\d{3}pd\s", b) for b in body) and not any("gather" in b for b in body)]


def count_float64(name):
    """The float64 ufunc loops' vectorised bodies (serial and threaded
    builds of ``loops.unary``/``binary``): the longest one's instructions
    and ``movabsq`` (constant addresses reloaded in the loop), per body of
    8 elements (zmm) or 4 (ymm), and whether the loop prefetches."""
    import numpy as np

    from gelu_numba.core import formulas, loops
    from gelu_numba.core.names import BINARY

    build = loops.binary if name in BINARY else loops.unary
    row = {"prefetch": getattr(loops, "software_prefetch", lambda: True)()}  # (every CPU before it)
    for label, parallel in (("serial", False), ("threaded", True)):
        asm = build(getattr(formulas, name), np.float64, parallel, cache=False)._library.get_asm_str()
        bodies = vector_bodies(asm)
        if not bodies:
            row[label] = None
            continue
        body = max(bodies, key=len)
        row[label] = {"body": len(body), "movabsq": sum(b.startswith("movabsq") for b in body),
                      "elements_per_body": 8 if any("zmm" in b for b in body) else 4}
    return row


def main(argv=None):
    from gelu_numba.core import vector32 as V

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=V.VARIANTS, default=None, help="default: this process's (vector32.variant())")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--float64", action="store_true",
                        help="the float64 loops' vectorised bodies instead (serial and threaded)")
    args = parser.parse_args(argv)
    if args.float64:
        from gelu_numba.core.names import NAMES

        rows = {name: count_float64(name) for name in NAMES}
        if args.json:
            from gelu_numba.tools.bench import environment

            target = {k: os.environ.get(k) for k in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")
                      if os.environ.get(k) is not None}
            print(json.dumps({"target": target, "environment": environment(), "kernels": rows}, indent=1))
            return
        print("float64 loops: the longest vectorised body, its instructions and movabsq, per elements")
        for name, row in rows.items():
            cells = [f"{label} " + (f"{r['body']:3d} ({r['movabsq']:2d}) per {r['elements_per_body']}" if r else "-")
                     for label, r in (("serial", row["serial"]), ("threaded", row["threaded"]))]
            print(f"  {name:22s} {'   '.join(cells)}   prefetch: {row['prefetch']}")
        return
    variant = args.variant or V.variant()
    rows = {name: count(name, variant) for name in V.KERNELS}
    if args.json:
        from gelu_numba.tools.bench import environment

        target = {k: os.environ.get(k) for k in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES") if os.environ.get(k) is not None}
        print(json.dumps({"variant": variant, "target": target, "environment": environment(), "kernels": rows}, indent=1))
        return
    print(f"instructions of the loop body per 16 float32 elements ({variant}):")
    for name, row in rows.items():
        m = row["mnemonics"]
        perms = sum(v for k, v in m.items() if k.startswith("vperm"))
        fp = sum(v for k, v in m.items() if re.match(r"v(fn?m(add|sub)|add|sub|mul|min|max|div|cvt)\w*p[sd]", k))
        scale = 16 / row["elements_per_body"]
        print(f"  {name:22s} {row['instructions_per_16']:4d}   (permutes {round(perms * scale)}, "
              f"float arithmetic {round(fp * scale)}; a body of {row['body']} for {row['elements_per_body']})")


if __name__ == "__main__":
    main()
