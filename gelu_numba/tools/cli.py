"""The command line: ``gelu-numba`` or ``python -m gelu_numba``.

    gelu-numba                       the report (the default subcommand)
    gelu-numba accuracy [--exhaustive [--range LO HI]] [--dtype float32] [--kernel gelu ...]
    gelu-numba bench [--size 1M 16M] [--threads 2]
    gelu-numba plot [--plots DIR]
    gelu-numba compile               every CPU kernel into Numba's cache

``--json`` on report, accuracy and bench prints one JSON document instead of
tables.  Exit status: 0 on success, 1 if a measured accuracy breaks the
contract, 2 on bad usage or a request this machine cannot serve (``bench
--gpu`` without a GPU, a ``bench --size`` larger than the memory available,
``compile`` with a ``NUMBA_CACHE_DIR`` it cannot write), with a one-line
message, before any work.
"""

import argparse
import json
import os
import re
import sys
import time

import numpy as np

from .. import __version__
from ..core.names import BINARY as BACKWARD
from ..core.names import UNARY as KERNELS
from .bench import OPERATIONS

FORWARD = KERNELS[:3]
POINTS = (-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0)
CONTRACT_ULP = 2.0


class UsageError(Exception):
    """A mistake on the command line: one line on stderr, exit status 2."""


class Progress:
    """Progress on stderr.

    On a terminal, a one-line bar redrawn in place; elsewhere (a log, a
    pipe) one line when the work starts and one when it ends, so that a
    redirected run still says what it is doing.  ``enabled=False`` silences
    it (``--json``); ``enabled=True`` forces the bar.
    """

    def __init__(self, label, enabled=None, width=30, stream=None):
        self.label = label
        self.width = width
        self.stream = stream or sys.stderr
        tty = self.stream.isatty()
        self.bar = tty if enabled is None else bool(enabled)
        self.lines = enabled is None and not tty
        self.start = time.perf_counter()
        self.started = False

    def __call__(self, fraction):
        elapsed = time.perf_counter() - self.start
        if self.lines:
            if not self.started:
                self.started = True
                self.stream.write(f"{self.label.strip()}: started\n")
            if fraction >= 1:
                self.stream.write(f"{self.label.strip()}: done in {elapsed:.0f} s\n")
            self.stream.flush()
            return
        if not self.bar:
            return
        filled = int(round(fraction * self.width))
        eta = elapsed / fraction - elapsed if fraction > 0 else 0.0
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{100 * fraction:5.1f}%  {elapsed:6.0f}s elapsed, {eta:6.0f}s left"
        )
        self.stream.flush()
        if fraction >= 1:
            self.stream.write("\n")


def _print_table(headers, rows, aligns=None):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    aligns = aligns or ["<"] + [">"] * (len(headers) - 1)
    fmt = "  ".join(f"{{:{a}{w}}}" for a, w in zip(aligns, widths))
    print(fmt.format(*headers))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt.format(*r))


# --------------------------------------------------------------------------
# report


def environment():
    """Versions, threading and SIMD of this machine, and whether CUDA works."""
    import platform

    import llvmlite
    import numba

    info = {
        "gelu_numba": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "cpu": _cpu_name(),
        "simd": _simd_features(),
        "threads": numba.config.NUMBA_NUM_THREADS,
        "threading_layer": _threading_layer(),
        "float32_loops": _float32_loops(),
    }
    try:
        from .. import gpu

        info["cuda"] = gpu.describe()
    except ImportError as exc:
        info["cuda"] = f"unavailable ({exc})"
    return info


def _cpu_name():
    try:
        import llvmlite.binding as llvm

        return llvm.get_host_cpu_name()
    except Exception:  # noqa: BLE001 (informational only)
        return "unknown"


def _simd_features():
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features()
        wanted = ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl", "neon", "sve")
        return [f for f in wanted if features.get(f)]
    except Exception:  # noqa: BLE001
        return []


def _float32_loops():
    """Which emission the float32 CPU loops compile (core/vector32.py), and
    where the fused multiply-adds come from."""
    from ..core import vector32

    emission = vector32.emission()
    if vector32.fma_emulated():
        fma = "FMA by plain arithmetic (no FMA here)"
    elif vector32._target_has_fma():
        fma = "FMA instruction"
    else:
        fma = "FMA by libm (the target has none; this CPU runs it)"
    return f"{emission}, {fma}"


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # not initialised until a parallel region has run
        import gelu_numba.parallel as gp

        gp.gelu(np.zeros(1 << 16, dtype=np.float32))
        return numba.threading_layer()


def value_table(points=POINTS):
    """GELU and its approximations next to ReLU, in float64."""
    from ..core.build import ufunc

    x = np.asarray(points, dtype=np.float64)
    rows = {"relu": np.maximum(x, 0.0)}
    for name in FORWARD:
        rows[name] = ufunc(name)(x)
    return x, rows


#: Verification targets that differ from the CPU's only in float32.
FLOAT32_ONLY = ("same-precision",)


def accuracy_table(kernels=KERNELS, dtypes=("float32", "float64"), target="cpu", prec=120, progress=None):
    """Worst ulp error of each kernel on the adversarial sample."""
    from .accuracy import max_ulp_error

    out = []
    jobs = [(k, d) for k in kernels for d in dtypes if not (target in FLOAT32_ONLY and d == "float64")]
    if progress is not None:
        progress(0.0)
    for i, (name, dtype) in enumerate(jobs):
        t = time.perf_counter()
        w = max_ulp_error(name, dtype, target=target, prec=prec)
        out.append({"kernel": name, "dtype": dtype, "max_ulp": w.max_ulp, "at": w.at,
                    "points": w.points, "seconds": time.perf_counter() - t})
        if progress is not None:
            progress((i + 1) / len(jobs))
    return out


def throughput(size=1 << 20, progress=None):
    """Quick ns/element of every kernel, float32, ours next to NumPy+SciPy,
    PyTorch and JAX where they have the operation."""
    from . import bench

    results = bench.run(sizes=(size,), dtypes=("float32",), operations=None, progress=progress, budget=0.15)
    return bench.table(results)


def _x(value, dtype):
    """An input as its format needs it: 9 significant digits identify a
    float32, 17 a float64."""
    return f"{value:.9g}" if dtype == "float32" else f"{value:.17g}"


def _accuracy_rows(acc):
    return [[r["kernel"], r["dtype"], f"{r['max_ulp']:.3f}", _x(r["at"], r["dtype"]), r["points"],
             f"{r['seconds']:.1f}"] for r in acc]


def _section(title):
    print()
    print(title)


def report(args):
    t0 = time.perf_counter()
    plot_dir = _output_directory(args.plots)  # a bad --plots fails now, not after a minute of work
    text = not args.json
    from .bench import machine_load

    load = machine_load()
    env = environment()
    if text:
        print(f"gelu_numba {env['gelu_numba']}: numba {env['numba']}, llvmlite {env['llvmlite']}, "
              f"numpy {env['numpy']}, Python {env['python']}")
        print(f"CPU {env['cpu']} ({', '.join(env['simd']) or 'no SIMD extensions found'}); "
              f"{_plural(env['threads'], 'thread')}, threading layer {env['threading_layer']}")
        print(f"float32 loops: {env['float32_loops']}")
        print(f"CUDA: {env['cuda']}")
    x, rows = value_table()
    if text:
        _section("GELU next to ReLU (float64)")
        names = list(rows)
        _print_table(["x", *names], [[f"{xi:.2f}", *(f"{rows[n][i]:.6f}" for n in names)]
                                     for i, xi in enumerate(x)], aligns=[">"] * (len(names) + 1))
        sys.stdout.flush()
    acc = accuracy_table(progress=Progress("accuracy"))
    if text:
        _section(f"Accuracy against mpmath on the adversarial sample (contract: <= {CONTRACT_ULP:g} ulp)")
        _print_table(["kernel", "dtype", "max ulp", "at x", "points", "seconds"], _accuracy_rows(acc))
        sys.stdout.flush()
    from .bench import available_peers, cpu_sample, fallback_sample, fallbacks, format_table, legend, others_busy

    start, engaged = cpu_sample(), fallback_sample()
    speed = throughput(progress=Progress("throughput"))
    busy, fallback = others_busy(start), fallbacks(engaged)

    missing = [hint for peer, hint in (("numpy+scipy", f"scipy ({install_hint('report')})"),
                                        ("torch", f"torch ({install_hint('torch')}; CPU-only: see docs/ecosystem.md, 'PyTorch')"),
                                        ("jax", "jax (pip install jax)"))
               if peer not in available_peers()]
    if text:
        _section("Throughput, float32, 1M elements, ns/element (lower is better)")
        print(format_table(speed))
        print(legend(speed, threads=env["threads"], load=load, busy=busy, fallback=fallback))
        if missing:
            print(f"Not compared, not installed: {', '.join(missing)}")
        sys.stdout.flush()
    progress = Progress("plots")
    progress(0.0)
    plots, plots_note = _plots_or_reason(plot_dir)
    progress(1.0)
    doc = {"environment": env, "x": x.tolist(), "values": {k: v.tolist() for k, v in rows.items()},
           "accuracy": acc, "throughput": speed, "not_compared": missing, "plots": plots,
           "plots_note": plots_note, "seconds": time.perf_counter() - t0}
    if args.json:
        json.dump(doc, sys.stdout, indent=2, default=str)
        print()
        return _status(acc)
    print()
    if plots:
        print(f"Plots, in {os.path.abspath(plot_dir)}:")
        for p in plots:
            print(f"  {p}")
    else:
        print(f"Plots: {plots_note}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return _status(acc)


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def install_hint(extra):
    """How to install an optional extra: from a checkout (the package is not
    on PyPI)."""
    return f'pip install ".[{extra}]" in a gelu_numba checkout'


def _plots_or_reason(out_dir):
    """(absolute paths written, None) or ([], why not)."""
    try:
        from . import plots
    except ImportError as exc:
        return [], f"not written: {exc}"
    return [os.path.abspath(p) for p in plots.write_all(out_dir)], None


def _status(acc):
    return 1 if any(r["max_ulp"] > CONTRACT_ULP for r in acc) else 0


# --------------------------------------------------------------------------
# accuracy


def accuracy(args):
    kernels = args.kernel or list(KERNELS) + list(BACKWARD)
    dtypes = args.dtype or (["float32"] if args.exhaustive else ["float32", "float64"])
    if args.range is not None and not args.exhaustive:
        raise UsageError("gelu-numba accuracy: --range applies to --exhaustive (the sampled table has fixed points)")
    if args.exhaustive:
        if dtypes != ["float32"]:
            raise UsageError("gelu-numba accuracy: --exhaustive covers float32 only (2**32 inputs); float64 has 2**64")
        if args.range is not None and not args.range[0] <= args.range[1]:
            raise UsageError(f"gelu-numba accuracy: --range LO HI needs LO <= HI, got {args.range[0]:g} {args.range[1]:g}")
        return _exhaustive(args, kernels)
    if args.target in FLOAT32_ONLY and "float64" in dtypes:
        dtypes = [d for d in dtypes if d != "float64"]
    acc = accuracy_table(kernels, dtypes, target=args.target,
                         progress=Progress("accuracy", enabled=None if not args.json else False))
    if args.json:
        json.dump({"target": args.target, "sample": "adversarial", "accuracy": acc}, sys.stdout, indent=2)
        print()
    else:
        print(f"Worst error against mpmath on the adversarial sample, target {args.target} "
              f"(contract: <= {CONTRACT_ULP:g} ulp)")
        _print_table(["kernel", "dtype", "max ulp", "at x", "points", "seconds"], _accuracy_rows(acc))
    return _status(acc)


def _exhaustive(args, kernels):
    from .accuracy import MINIMUM, exhaustive_float32, variant_of

    target = "parallel" if args.target == "cpu" else args.target
    rows = []
    for name in kernels:
        t = time.perf_counter()
        w = exhaustive_float32(name, target=target, chunk=args.chunk, interval=args.range, dy=args.dy,
                               progress=Progress(f"{name:18}", enabled=None if not args.json else False))
        checked = name in FORWARD and (args.range is None or args.range[1] >= MINIMUM[variant_of(name)])
        rows.append({"kernel": name, "dtype": "float32", "max_ulp": w.max_ulp, "at": w.at, "points": w.points,
                     # None where not checked: a derivative, or a range below the minimum
                     "monotonic_violations": len(w.monotonic_violations) if checked else None,
                     "first_violations": w.monotonic_violations[:5] if checked else None,
                     "monotonicity_checked": checked,
                     "seconds": time.perf_counter() - t})
    if args.json:
        json.dump({"target": args.target, "sample": "exhaustive", "range": args.range, "accuracy": rows},
                  sys.stdout, indent=2)
        print()
    else:
        which = ("All 2**32 float32 inputs" if args.range is None
                 else f"All float32 inputs in [{args.range[0]:g}, {args.range[1]:g}]")
        print(f"{which} against the float64 kernel, target {args.target}")
        _print_table(["kernel", "max ulp", "at x", "monotonic above x_min", "seconds"],
                     [[r["kernel"], f"{r['max_ulp']:.3f}", f"{r['at']:.9g}",
                       ("yes" if not r["monotonic_violations"] else f"NO: {r['monotonic_violations']} drops")
                       if r["monotonicity_checked"]
                       else "(not a forward kernel)" if r["kernel"] not in FORWARD else "(range below x_min)",
                       f"{r['seconds']:.0f}"] for r in rows])
    bad = any(r["max_ulp"] > CONTRACT_ULP or r["monotonic_violations"] for r in rows)
    return 1 if bad else 0


# --------------------------------------------------------------------------
# bench


def _size(text):
    from .bench import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _gib(n):
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def bench_command(args):
    import numba

    from . import bench

    if args.gpu:
        return _gpu_bench(args)
    if args.threads < 1:
        raise UsageError("gelu-numba bench: --threads must be at least 1")
    dtypes = args.dtype or ("float32", "float64")
    operations = args.operation or bench.HEADLINE
    # Refused before anything is allocated: a run that does not fit is
    # killed (by the kernel or the container) without a word, after it has
    # pushed everything else out of memory.
    need = bench.memory_needed(args.size, dtypes, operations, data=args.data)
    free = bench.available_memory()
    if free is not None and need > free[0]:
        raise UsageError(f"gelu-numba bench: --size {' '.join(bench.size_label(n) for n in args.size)} needs about "
                         f"{_gib(need)} of memory ({', '.join(dtypes)}, with every peer's arrays and libraries), "
                         f"and {_gib(free[0])} is available ({free[1]})")
    available = numba.config.NUMBA_NUM_THREADS
    threads = min(args.threads, available)
    if threads < args.threads:
        print(f"gelu-numba bench: --threads {args.threads} is more than the {_plural(available, 'thread')} "
              f"Numba started with (NUMBA_NUM_THREADS, by default the CPU count); using {threads}",
              file=sys.stderr)
    load = bench.machine_load()
    start, engaged = bench.cpu_sample(), bench.fallback_sample()
    results = bench.run(sizes=args.size, dtypes=dtypes, threads=threads, operations=operations, data=args.data,
                        progress=Progress("bench", enabled=False if args.json else None))
    busy, fallback = bench.others_busy(start), bench.fallbacks(engaged)
    rows = bench.table(results)
    if args.json:
        json.dump({"threads": threads, "threads_requested": args.threads, "data": args.data, "load_average": load,
                   "other_programs_cores": busy, "fallback_engaged": fallback[0], "fallback_calls": fallback[1],
                   "environment": bench.environment(),
                   "peers": bench.available_peers(), "rows": rows},
                  sys.stdout, indent=2)
        print()
        return 0
    print(f"ns/element, {args.data} data, {_plural(threads, 'thread')}; peers found: "
          f"{', '.join(bench.peer_versions()) or 'none'}")
    print(bench.format_table(rows))
    print(bench.legend(rows, threads=threads, load=load, busy=busy, fallback=fallback))
    return 0


def _gpu_bench(args):
    from . import gpu_bench

    try:
        result = gpu_bench.run(progress=Progress("gpu bench", enabled=False if args.json else None))
    except RuntimeError as exc:
        # Not a broken contract (exit 1) but a request this machine cannot serve.
        raise UsageError(f"gelu-numba bench --gpu: {exc}") from None
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(gpu_bench.format_table(result))
    return 0


# --------------------------------------------------------------------------
# plot


def _output_directory(path):
    """Create path (and parents) or raise UsageError saying why not."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write figures to {path!r}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"cannot write figures to {path!r}: not writable")
    return path


def plot_command(args):
    out = _output_directory(args.plots)  # a bad directory is bad usage, matplotlib or not
    try:
        from . import plots
    except ImportError as exc:
        raise UsageError(f"gelu-numba plot: {exc}") from None
    progress = Progress("plots")
    progress(0.0)
    paths = plots.write_all(out)
    progress(1.0)
    for path in paths:
        print(os.path.abspath(path))
    return 0


# --------------------------------------------------------------------------
# compile


def compile_command(args):
    """Build every kernel of the CPU targets, into Numba's cache where one is
    writable (what a container image runs at build time)."""
    import warnings

    from ..core import loops as _loops
    from ..core.build import FUSED, NAMES, ufunc

    where = os.environ.get("NUMBA_CACHE_DIR")
    if where:  # Numba ignores an empty one
        # Numba tries it the same way (create it, then a file in it), and
        # where that fails caches in the package's __pycache__ or the user's
        # ~/.cache instead, without a word: right for a library, wrong here,
        # where the cache is what the user asked for, and an image built
        # with it would ship without the cache its NUMBA_CACHE_DIR names.
        why = _unusable_directory(where)
        if why:
            raise UsageError(f"gelu-numba compile: NUMBA_CACHE_DIR={where} cannot hold Numba's cache: {why}")
    t0 = time.perf_counter()
    progress = Progress("compile", enabled=None)
    progress(0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", _loops.CacheUnavailableWarning)
        names = tuple(getattr(args, "kernel", None) or NAMES + FUSED)
        jobs = [(t, n) for t in ("cpu", "parallel") for n in names]
        for i, (target, name) in enumerate(jobs):
            ufunc(name, target)
            if any(issubclass(w.category, _loops.CacheUnavailableWarning) for w in caught):
                where = os.environ.get("NUMBA_CACHE_DIR")
                raise UsageError("gelu-numba compile: no writable cache location"
                                 + (f" (NUMBA_CACHE_DIR={where} is not writable by this user)" if where else
                                    "; set NUMBA_CACHE_DIR to a writable directory"))
            progress((i + 1) / len(jobs))
    seconds = time.perf_counter() - t0
    paths = sorted(_loops.CACHE_PATHS)
    loaded, compiled = _loops.LOADED_FROM_CACHE
    fused = sum(n in FUSED for n in names)
    print(f"{len(names)} kernels ({fused} fused), serial and parallel, "
          f"ready in {seconds:.0f} s: {compiled} loops compiled, "
          f"{loaded} loaded from the cache in {', '.join(paths)}")
    return 0


def _unusable_directory(path):
    """Why `path` cannot take new files (created if missing), or None."""
    import tempfile

    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


# --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # argparse takes "-1e-30" for an option (its pattern for negative
        # numbers has no exponent); --range -1e-30 1e-30 must parse.
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


#: Where the report and ``plot`` write their figures, relative to the
#: current directory.
PLOT_DIR = "gelu_numba_plots"
JSON_HELP = "print one JSON document instead of tables"


class _Help(argparse.HelpFormatter):
    """Help that states each option's default, where it has one to state."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and "default" not in text
                and action.default not in (None, False, argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


def build_parser():
    fmt = _Help
    parser = _Parser(prog="gelu-numba", formatter_class=fmt,
                     description="Accurate GELU kernels: report, accuracy, benchmarks, plots.",
                     epilog="Exit status: 0 success; 1 a measured error breaks the accuracy contract; "
                            "2 bad usage, or a request this machine cannot serve (bench --gpu without a GPU, "
                            "bench --size beyond the memory available, compile without a writable cache).")
    parser.add_argument("--version", action="version", version=f"gelu_numba {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("report", formatter_class=fmt,
                       help="environment, values next to ReLU, accuracy and speed (the default)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("--plots", "--out", dest="plots", default=PLOT_DIR, metavar="DIR",
                   help="where to write the figures (created if missing; relative to the current directory; "
                        "--out is an alias)")
    p.set_defaults(func=report)

    p = sub.add_parser("accuracy", formatter_class=fmt,
                       help="ulp error tables against mpmath (or all float32 inputs)")
    p.add_argument("--exhaustive", action="store_true", help="every float32 input, with monotonicity (minutes)")
    p.add_argument("--range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="with --exhaustive: only the float32 inputs in [LO, HI] (a range counts float32 "
                        "values, not width: [-1, 1] holds about half of all 2**32)")
    p.add_argument("--dtype", action="append", choices=("float32", "float64"),
                   help="repeatable; default: both, or float32 with --exhaustive")
    p.add_argument("--kernel", action="append", choices=KERNELS + BACKWARD,
                   help=f"repeatable; default: all {len(KERNELS) + len(BACKWARD)} (the backward kernels "
                        "measured against dy f'(x) in ulps of |dy| max(|f'|, first term))")
    p.add_argument("--dy", choices=("random", "ones"), default="random",
                   help="with --exhaustive, the backward kernels' dy: N(0, 1) fixed per chunk, or 1")
    p.add_argument("--target", default="cpu", choices=("cpu", *FLOAT32_ONLY),
                   help="same-precision: float32 computed in float32, the CUDA kernels' arithmetic")
    p.add_argument("--chunk", type=_size, default=1 << 22, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=accuracy)

    from .bench import DATA

    p = sub.add_parser("bench", formatter_class=fmt, help="ns/element next to PyTorch, JAX and NumPy+SciPy")
    p.add_argument("--size", type=_size, nargs="+", default=[1 << 20, 1 << 24], metavar="N",
                   help="elements, e.g. 4096 64K 1.5M 16M; K, M, G: 1024, 1024**2, 1024**3 (default: 1M 16M)")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                   help="threads for ours and PyTorch, at most Numba's NUMBA_NUM_THREADS")
    p.add_argument("--data", default="normal", choices=tuple(DATA),
                   help="; ".join(f"{k}: {v}" for k, v in DATA.items()))
    p.add_argument("--dtype", action="append", choices=("float32", "float64"),
                   help="repeatable; default: both")
    p.add_argument("--operation", action="append", choices=[o[0] for o in OPERATIONS],
                   help="repeatable; default: gelu, gelu_tanh, gelu_sigmoid, gelu_backward, gelu_tanh_backward")
    p.add_argument("--gpu", action="store_true",
                   help="the CUDA kernels: GB/s next to a device copy (exit 2 without a GPU)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=bench_command)

    p = sub.add_parser("compile", formatter_class=fmt,
                       help="build every CPU kernel into Numba's cache (NUMBA_CACHE_DIR if set, exit 2 if it "
                            "cannot be written), e.g. in a container image at build time")
    from ..core.names import FUSED, NAMES

    p.add_argument("--kernel", action="append", metavar="NAME", choices=list(NAMES + FUSED),
                   help="repeatable; only these kernels (default: every one, single and fused)")
    p.set_defaults(func=compile_command)

    p = sub.add_parser("plot", formatter_class=fmt, help="PNG figures (needs matplotlib)")
    p.add_argument("--plots", "--out", dest="plots", default=PLOT_DIR, metavar="DIR",
                   help="where to write the figures (created if missing; relative to the current directory; "
                        "--out is an alias)")
    p.set_defaults(func=plot_command)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):
        try:  # each table as soon as it is measured, also into a pipe or file
            sys.stdout.reconfigure(line_buffering=True)
        except (ValueError, OSError):
            pass
    parser = build_parser()
    try:
        if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
            argv = ["report", *argv]
        args = parser.parse_args(argv)
        return args.func(args)
    except UsageError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
