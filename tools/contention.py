"""Threaded calls under contention: each of Numba's threading layers, with
other programs competing for the cores, against serial calls in the same
process (issue 28).

    python tools/contention.py                      # every layer, every contention
    python tools/contention.py --layer omp --contention idle busy --seconds 1
    python tools/contention.py --json benchmarks/figures/contention.json --markdown

For each threading layer that loads (``NUMBA_THREADING_LAYER``, set for the
measuring child process only: the library never sets it), each contention
and each size, float32 ``gelu`` with ``out=``, x ~ N(0, 3^2):

- threaded: ``gelu_numba.parallel.gelu`` (2 threads, or the cores);
- serial: ``gelu_numba.gelu``, the same input and output;

timed call by call, in alternating runs of calls within the same process
for ``--seconds`` each.  Reported: total threaded / total serial time, and
the 99th-percentile threaded call / the median serial call (the targets:
at most 1.3 and 3), with how many calls took each path (threaded,
serial by the fallback).

Contentions, started before the timing and stopped after it:

``idle``          nothing else;
``torch``         another process looping ``torch.nn.functional.gelu`` on
                  64K float32 elements with PyTorch's pool of one thread per core;
``torch-thread``  the same loop on a thread of the measuring process (its
                  pool beside Numba's);
``busy``          one busy-looping process per core;
``twin``          another process looping ``gelu_numba.parallel.gelu`` on
                  1M float32 elements under the same layer.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ("omp", "workqueue", "tbb")
CONTENTIONS = ("idle", "torch", "torch-thread", "busy", "twin")
SIZES = (1 << 16, 1 << 20, 1 << 24)

_TORCH_LOOP = """
import sys, torch
torch.set_num_threads({threads})
x = torch.randn(1 << 16) * 3
print("ready", flush=True)
while True:
    torch.nn.functional.gelu(x)
"""
_BUSY_LOOP = "print('ready', flush=True)\nwhile True: pass\n"
_TWIN_LOOP = """
import numpy as np, gelu_numba.parallel as gp
x = (np.random.default_rng(1).standard_normal(1 << 20) * 3).astype(np.float32)
o = np.empty_like(x)
gp.gelu(x, out=o)
print("ready", flush=True)
while True:
    gp.gelu(x, out=o)
"""


def _env(layer=None, root=ROOT):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # the PyPI tbb wheel puts libtbb in <prefix>/lib (docs/operations.md)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([os.path.join(sys.prefix, "lib"),
                                              env.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)
    if layer:
        env["NUMBA_THREADING_LAYER"] = layer
    return env


class Contention:
    """Start a contention on enter, stop it on exit."""

    def __init__(self, kind, layer, threads):
        self.kind, self.layer, self.threads = kind, layer, threads
        self.procs, self.stop = [], False

    def _spawn(self, code):
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=_env(self.layer),
                             text=True)
        self.procs.append(p)
        line = p.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"contention {self.kind!r} did not start")

    def __enter__(self):
        cores = os.cpu_count() or 1
        if self.kind == "torch":
            self._spawn(_TORCH_LOOP.format(threads=cores))
        elif self.kind == "busy":
            for _ in range(cores):
                self._spawn(_BUSY_LOOP)
        elif self.kind == "twin":
            self._spawn(_TWIN_LOOP)
        elif self.kind == "torch-thread":
            import threading

            import torch

            torch.set_num_threads(cores)
            x = torch.randn(1 << 16) * 3

            def loop():
                while not self.stop:
                    torch.nn.functional.gelu(x)

            self.thread = threading.Thread(target=loop, daemon=True)
            self.thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.stop = True
        for p in self.procs:
            p.kill()
            p.wait()
        if self.kind == "torch-thread":
            self.thread.join()


def _measure(size, seconds, batch):
    """Per-call ns of threaded and serial calls, alternating batches."""
    import numpy as np

    import gelu_numba as gn
    import gelu_numba.parallel as gp
    from gelu_numba.core import runtime

    x = (np.random.default_rng(0).standard_normal(size) * 3).astype(np.float32)
    out = np.empty_like(x)
    threaded, serial = gp.gelu, gn.gelu
    for f in (threaded, serial, threaded, serial):
        f(x, out=out)
    times = {"threaded": [], "serial": []}
    before = runtime.paths()
    clock = time.perf_counter_ns
    end = time.monotonic() + 2 * seconds
    while time.monotonic() < end:
        for name, f in (("threaded", threaded), ("serial", serial)):
            got = times[name]
            for _ in range(batch):
                t0 = clock()
                f(x, out=out)
                got.append(clock() - t0)
    after = runtime.paths()
    paths = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    t, s = np.array(times["threaded"], float), np.array(times["serial"], float)
    return {
        "calls": len(t),
        "serial_ns_per_element": float(np.median(s)) / size,
        "threaded_ns_per_element": float(np.median(t)) / size,
        "total_ratio": float(t.sum() / s.sum()),
        "p99_ratio": float(np.percentile(t, 99) / np.median(s)),
        "serial_p99_ratio": float(np.percentile(s, 99) / np.median(s)),
        "paths": paths,
    }


def child(args):
    """Run in a process whose threading layer is set: every contention, every size."""
    import numba

    import gelu_numba.parallel as gp
    import numpy as np

    threads = min(2, os.cpu_count() or 1)
    numba.set_num_threads(threads)
    x = np.ones(1 << 20, np.float32)
    gp.gelu(x)  # starts the layer
    layer = numba.threading_layer()
    results = []
    for kind in args.contention:
        with Contention(kind, layer, threads):
            for size in args.size:
                batch = max(1, min(50, int(2e7 // size)))
                r = _measure(size, args.seconds, batch)
                r.update(layer=layer, contention=kind, size=size)
                results.append(r)
                print(json.dumps(r), flush=True)
    return results


def _size_label(n):
    return f"{n >> 20}M" if n >= 1 << 20 else f"{n >> 10}K"


def markdown(results):
    """docs/operations.md's table: this tree's figures, with the baseline's
    total ratio next to them where it was measured."""
    base = {(r["layer"], r["contention"], r["size"]): r for r in results if r.get("tree") == "baseline"}
    commit = next((r["commit"] for r in base.values()), None)
    head = (f" total, {commit} |" if commit else "")
    lines = ["| layer | contention | size | serial ns/el | threaded ns/el | total threaded/serial |" + head +
             " p99 threaded / median serial (serial's own p99) | calls run serially by the fallback |",
             "|---|---|---|---|---|---|" + ("---|" if commit else "") + "---|---|"]
    for r in results:
        if r.get("tree") == "baseline":
            continue
        fb = r["paths"].get("fallback", 0)
        share = f"{fb} of {fb + r['paths'].get('threaded', 0)}"
        b = base.get((r["layer"], r["contention"], r["size"]))
        before = (f" {b['total_ratio']:.2f} |" if b else " |") if commit else ""
        lines.append(f"| {r['layer']} | {r['contention']} | {_size_label(r['size'])} | "
                     f"{r['serial_ns_per_element']:.2f} | {r['threaded_ns_per_element']:.2f} | "
                     f"{r['total_ratio']:.2f} |{before} {r['p99_ratio']:.2f} ({r['serial_p99_ratio']:.2f}) | "
                     f"{share} |")
    return "\n".join(lines)


def machine():
    import numba
    import numpy

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import llvmlite.binding as ll

    return {"cpu": name, "llvm_cpu": ll.get_host_cpu_name(), "cores": os.cpu_count(),
            "python": platform.python_version(), "numba": numba.__version__, "numpy": numpy.__version__,
            "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip(),
            "date": time.strftime("%Y-%m-%d")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layer", nargs="+", default=list(LAYERS), choices=LAYERS)
    p.add_argument("--contention", nargs="+", default=list(CONTENTIONS), choices=CONTENTIONS)
    p.add_argument("--size", nargs="+", type=int, default=list(SIZES))
    p.add_argument("--seconds", type=float, default=1.5, help="per size and contention, for each of the two")
    p.add_argument("--json", metavar="PATH", help="write the results there")
    p.add_argument("--markdown", action="store_true", help="print docs/operations.md's table")
    p.add_argument("--baseline", metavar="DIR",
                   help="a checkout of the starting commit (git worktree add DIR <commit>): its idle figures "
                        "too, measured in the same run, each layer right after this tree's")
    p.add_argument("--baseline-contention", nargs="+", default=["idle"], choices=CONTENTIONS,
                   help="the contentions measured for the baseline (default: idle)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0
    results, skipped = [], {}
    runs = [(layer, ROOT, args.contention, "this tree") for layer in args.layer]
    if args.baseline:
        runs = [run for layer in args.layer for run in (
            (layer, ROOT, args.contention, "this tree"),
            (layer, os.path.abspath(args.baseline), args.baseline_contention, "baseline"))]
    for layer, root, contentions, tree in runs:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--contention", *contentions,
               "--size", *map(str, args.size), "--seconds", str(args.seconds)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=_env(layer, root), cwd=root)
        got = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        if r.returncode or not got:
            skipped[f"{layer} ({tree})"] = (r.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"{layer} ({tree}): not measured: {skipped[f'{layer} ({tree})']}", file=sys.stderr)
            continue
        if got[0]["layer"] != layer:
            skipped[f"{layer} ({tree})"] = f"Numba started {got[0]['layer']!r} instead"
            continue
        for g in got:
            g["tree"] = tree
            if tree == "baseline":
                g["commit"] = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                                             capture_output=True, text=True).stdout.strip()
            print(f"{tree[:9]:9} {g['layer']:9} {g['contention']:12} {_size_label(g['size']):>4}  serial "
                  f"{g['serial_ns_per_element']:6.2f}  threaded {g['threaded_ns_per_element']:6.2f} ns/el  "
                  f"total {g['total_ratio']:5.2f}x  p99 {g['p99_ratio']:6.2f}x (serial's {g['serial_p99_ratio']:5.2f}x)  "
                  f"{g['paths']}", flush=True)
        results += got
    doc = {"machine": machine(), "kernel": "gelu", "dtype": "float32", "seconds": args.seconds,
           "results": results, "not_measured": skipped}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if args.markdown:
        print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
