#!/usr/bin/env python3
"""Check that every float32 input gives the same bits as an earlier commit.

    python tools/identical_to_commit.py [--commit 155dc76] [--target parallel|cpu] [--kernels gelu,...]

Every one of the 2^32 float32 bit patterns (NaN payloads, subnormals and
infinities included) goes through the working tree's ufunc and the commit's
(extracted as tools/compare_commit.py does), in chunks of 2^24; the backward
kernels take dy = the same chunk reversed.  It prints the number of inputs
whose outputs differ, per kernel, and exits 1 if any does.  When the bits
are the same, the exhaustive sweeps measured on that commit hold for the
working tree too.  About 25 s a kernel on 2 cores.
"""

import argparse
import sys
import tempfile
import time

import numpy as np

import compare_commit  # tools/, beside this file


def main(argv=None):
    from gelu_numba.core import build

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commit", default="155dc76")
    p.add_argument("--target", default="parallel", choices=("parallel", "cpu"))
    p.add_argument("--kernels", default=",".join(build.NAMES))
    a = p.parse_args(argv)
    old = compare_commit.extract(a.commit, tempfile.mkdtemp(prefix="gelu_base_"))
    chunk = 1 << 24
    new_out, old_out = np.empty(chunk, np.float32), np.empty(chunk, np.float32)
    start, failed = time.perf_counter(), False
    for name in a.kernels.split(","):
        new, base = build.ufunc(name, a.target), old.ufunc(name, a.target)
        differ = 0
        with np.errstate(all="ignore"):
            for first in range(0, 1 << 32, chunk):
                x = np.arange(first, first + chunk, dtype=np.uint64).astype(np.uint32).view(np.float32)
                args = (x[::-1].copy(), x) if name in build.BINARY else (x,)
                new(*args, out=new_out)
                base(*args, out=old_out)
                differ += int(np.count_nonzero(new_out.view(np.uint32) != old_out.view(np.uint32)))
        failed |= differ > 0
        print(f"{name:24s} inputs whose bits differ from {a.commit}: {differ:,} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
