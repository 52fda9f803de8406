"""Command line: ``python -m gelu_numba`` (or ``gelu-numba``).

    python -m gelu_numba              # the report: values, accuracy
    python -m gelu_numba report --json
"""

import argparse
import json
import sys
import time

import numpy as np

from . import __version__

POINTS = (-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0)
FORWARD = ("gelu", "gelu_tanh", "gelu_sigmoid")


def value_table(points=POINTS):
    """GELU and its approximations next to ReLU, in float64."""
    from ._build import ufunc

    x = np.asarray(points, dtype=np.float64)
    rows = {"relu": np.maximum(x, 0.0)}
    for name in FORWARD:
        rows[name] = ufunc(name)(x)
    return x, rows


def accuracy_table(dtypes=("float32", "float64"), prec=120):
    """Worst ulp error of each kernel on the adversarial sample."""
    from .accuracy import KERNELS, max_ulp_error

    out = []
    for name in KERNELS:
        for dtype in dtypes:
            t = time.perf_counter()
            w = max_ulp_error(name, dtype, prec=prec)
            out.append({"kernel": name, "dtype": dtype, "max_ulp": w.max_ulp, "at": w.at,
                        "points": w.points, "seconds": time.perf_counter() - t})
    return out


def report(args):
    x, rows = value_table()
    acc = accuracy_table()
    if args.json:
        json.dump({"version": __version__, "x": x.tolist(),
                   "values": {k: v.tolist() for k, v in rows.items()}, "accuracy": acc},
                  sys.stdout, indent=2)
        print()
        return 0
    print(f"gelu_numba {__version__}")
    print()
    print("GELU next to ReLU (float64)")
    names = list(rows)
    print(f"{'x':>6} " + " ".join(f"{n:>14}" for n in names))
    for i, xi in enumerate(x):
        print(f"{xi:6.2f} " + " ".join(f"{rows[n][i]:14.6f}" for n in names))
    print()
    print("Accuracy against mpmath on the adversarial sample (contract: <= 2 ulp)")
    print(f"{'kernel':18} {'dtype':8} {'max ulp':>8} {'at x':>24} {'points':>7} {'seconds':>8}")
    for r in acc:
        print(f"{r['kernel']:18} {r['dtype']:8} {r['max_ulp']:8.3f} {r['at']:24.17g} "
              f"{r['points']:7d} {r['seconds']:8.1f}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="gelu-numba", description="GELU kernels: report and checks.")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("report", help="values next to ReLU and the accuracy of every kernel")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=report)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["report", *(argv or sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
