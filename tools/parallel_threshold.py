"""Where threads start to pay: serial time over threaded time of small
calls, to set ``loops.PARALLEL_MIN_SIZE``.

    python tools/parallel_threshold.py [--json PATH]

Builds the multi-threaded loops with a threshold of 512 elements (in this
process only: the threshold is a constant of the compiled loop, so these
loops are cached apart from the shipped ones), turns the fallback to serial
calls off (it judges calls; here the raw threads are measured), and times
float32 and float64 ``gelu`` and ``gelu_backward`` at 1K to 32K elements,
``out=``, x ~ N(0, 3^2): best of interleaved rounds, each round the median
of many calls.  A ratio above 1: threads win.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SIZES = (1024, 2048, 4096, 8192, 16384, 32768)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)

    import numba
    import numpy as np

    from gelu_numba.core import build, loops, runtime

    loops.PARALLEL_MIN_SIZE = {4: 512, 8: 512}
    runtime.set_fallback(False)
    numba.set_num_threads(min(2, os.cpu_count() or 1))
    rows = []
    for name in ("gelu", "gelu_backward"):
        serial, threaded = build.ufunc(name, "cpu"), build.ufunc(name, "parallel")
        for dtype in (np.float32, np.float64):
            for n in SIZES:
                x = (np.random.default_rng(0).standard_normal(n) * 3).astype(dtype)
                operands = (np.ones_like(x), x) if name == "gelu_backward" else (x,)
                out = np.empty_like(x)
                calls = max(50, int(2e6 // n))
                best = {}
                for _ in range(args.rounds):
                    for label, f in (("serial", serial), ("threaded", threaded)):
                        f(*operands, out=out)
                        ts = []
                        for _ in range(calls):
                            t0 = time.perf_counter_ns()
                            f(*operands, out=out)
                            ts.append(time.perf_counter_ns() - t0)
                        best[label] = min(best.get(label, np.inf), float(np.median(ts)))
                ratio = best["serial"] / best["threaded"]
                rows.append({"kernel": name, "dtype": np.dtype(dtype).name, "size": n,
                             "serial_us": best["serial"] / 1e3, "threaded_us": best["threaded"] / 1e3,
                             "serial_over_threaded": ratio})
                print(f"{name:14} {np.dtype(dtype).name:8} {n:6}  serial {best['serial'] / 1e3:8.2f} us  "
                      f"threaded {best['threaded'] / 1e3:8.2f} us  serial/threaded {ratio:5.2f}", flush=True)
    doc = {"layer": numba.threading_layer(), "threads": numba.get_num_threads(), "rows": rows,
           "date": time.strftime("%Y-%m-%d")}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
