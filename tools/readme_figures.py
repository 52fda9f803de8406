#!/usr/bin/env python3
"""Regenerate every measured figure in README.md and docs/.

    python tools/readme_figures.py                  # speed, accuracy sample, timings; reuse the long runs
    python tools/readme_figures.py --exhaustive     # also rerun the float32 sweeps (about 20 min each target)
    python tools/readme_figures.py --float64-search # also rerun the float64 search against mpmath
    python tools/readme_figures.py --only speed     # one measurement (speed, accuracy, timings, torch, fused)
    python tools/readme_figures.py --render         # rewrite every block from the saved results, measuring nothing

Each block between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->``,
in README.md or a page of docs/ (each name in one place), is rewritten from
a measurement, with the CPU, the versions and the date it was made.  The
raw results go to ``benchmarks/figures/NAME.json``; the long runs (the
exhaustive float32 sweeps, the float64 search) are reused from there unless
asked for, and the block says when each was measured.  README's short
tables (``speed-summary``, ``accuracy-summary``) are drawn from the same
results as the full ones in docs/.

Run it in an environment with the peers the speed table compares against:
``pip install ".[bench]" torch jax`` (the newest torch that pip gives;
the CUDA build runs on the CPU), on an otherwise idle machine.
"""

import argparse
import datetime
import json
import os
import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

FIGURES = ROOT / "benchmarks" / "figures"
README = ROOT / "README.md"
DOCS = ROOT / "docs"

#: Every block the command writes, by the measurement it is drawn from.
BLOCKS = {"speed": ("speed", "speed-summary"), "accuracy": ("accuracy", "accuracy-summary"),
          "timings": ("timings",), "torch": ("torch",), "contention": ("contention",),
          "fused": ("fused", "fused-summary")}
SIZES = (1 << 20, 1 << 24)
THREADS = 2


def _environment():
    from gelu_numba.tools import bench

    env = bench.environment()
    env["command"] = "python tools/readme_figures.py"
    return env


def _save(name, doc):
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")


def _load(name):
    path = FIGURES / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _stamp(env):
    peers = ", ".join(env["peers"]) or "no peers installed"
    return (f"{env['date']}, {env['cpu']}, {env['cores']} cores; Python {env['python']}, "
            f"gelu_numba {env['gelu_numba']}, NumPy {env['numpy']}, Numba {env['numba']}; {peers}")


def _pattern(name):
    return re.compile(rf"(<!-- figures:{re.escape(name)} -->\n).*?(<!-- /figures:{re.escape(name)} -->)", re.S)


def pages():
    """README.md and every page of docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def page_of(name):
    """The one page that holds block `name`."""
    found = [p for p in pages() if _pattern(name).search(p.read_text())]
    if len(found) != 1:
        where = ", ".join(str(p.relative_to(ROOT)) for p in found) or "no page"
        raise SystemExit(f"block <!-- figures:{name} --> must be in exactly one page (found in {where})")
    return found[0]


def replace_block(text, name, body):
    pattern = _pattern(name)
    if not pattern.search(text):
        raise SystemExit(f"no <!-- figures:{name} --> block")
    return pattern.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(2), text)


# --------------------------------------------------------------------------
# speed


def measure_speed():
    from gelu_numba.tools import bench

    rows = {}
    for data in ("normal", "tail"):
        sizes = SIZES if data == "normal" else SIZES[:1]
        print(f"speed: {data} data, sizes {sizes}", file=sys.stderr)
        results = bench.run(sizes=sizes, dtypes=("float32", "float64"), threads=THREADS,
                            operations=bench.HEADLINE, data=data)
        rows[data] = bench.table(results)
    rows["avx2"] = measure_speed_avx2()
    return {"environment": _environment(), "threads": THREADS, "rows": rows}


#: An AVX2-only build on this machine: ours compiled for Haswell (AVX2 and
#: FMA, no AVX-512), PyTorch and JAX held to their AVX2 paths.
AVX2_ENV = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "", "ATEN_CPU_CAPABILITY": "avx2",
            "ONEDNN_MAX_CPU_ISA": "AVX2", "XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}


def measure_speed_avx2():
    """The float32 headline operations, x ~ N(0, 3^2), in a subprocess
    built for an AVX2-only CPU (None where this CPU cannot run AVX2)."""
    import llvmlite.binding as llvm

    if not all(llvm.get_host_cpu_features().get(f) for f in ("avx2", "fma")):
        return None
    print("speed: AVX2 build (haswell), float32", file=sys.stderr)
    env = {**os.environ, **AVX2_ENV, "PYTHONPATH": str(ROOT)}
    env.pop("GELU_NUMBA_SIMD", None)
    r = subprocess.run([sys.executable, "-m", "gelu_numba", "bench", "--dtype", "float32", "--threads", str(THREADS),
                        "--size", *[size_label(n) for n in SIZES], "--json"],
                       capture_output=True, text=True, env=env, check=True)
    return json.loads(r.stdout)["rows"]


def size_label(n):
    from gelu_numba.tools.bench import size_label

    return size_label(n)


def _cell(v):
    return "–" if v is None else f"{v:.3f}"


def speed_block(doc):
    env = doc["environment"]
    cols = [("gelu_numba", "ours, serial"), ("gelu_numba.parallel", f"ours, {doc['threads']} threads"),
            ("gelu_numba.parallel (allocating)", "ours, allocating"), ("torch", "PyTorch"),
            ("torch (allocating)", "PyTorch, allocating"), ("jax", "JAX"), ("numpy+scipy", "NumPy+SciPy")]
    lines = [f"Measured {_stamp(env)}. `{env['command']}`; ns per element, best of interleaved rounds, "
             f"output preallocated unless marked allocating; {doc['threads']} threads for ours and PyTorch; "
             "ratio = ours (threads) / the faster of PyTorch and JAX, below 1.00 is faster.", ""]
    sections = [("normal", "x ~ N(0, 3²)"), ("tail", "tail data: |x| uniform in [5, 12] (float32), "
                                                        "[5, 30] (float64), random signs"),
                ("avx2", "compiled for an AVX2-only CPU (`NUMBA_CPU_NAME=haswell`), against PyTorch and JAX held "
                         "to AVX2 (`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 XLA_FLAGS=--xla_cpu_max_isa=AVX2`), "
                         "x ~ N(0, 3²), float32")]
    for data, title in sections:
        if not doc["rows"].get(data):
            continue
        lines += [f"**{title}**", "", "| operation | dtype | size | " + " | ".join(c[1] for c in cols) + " | ratio |",
                  "|---|---|---|" + "---|" * (len(cols) + 1)]
        copies = []
        for r in doc["rows"][data]:
            size = size_label(r["size"])
            if r["operation"] == "copy":
                ns = r["ns_per_element"]
                par = f", {doc['threads']} threads (torch's copy_) {ns['torch copy_']:.3f}" if "torch copy_" in ns else ""
                copies.append(f"{r['dtype']} {size}: {ns['np.copyto']:.3f}{par}")
                continue
            cells = [_cell(r["ns_per_element"].get(c)) for c, _ in cols]
            ratio = r["parallel_vs_fastest_peer"]
            lines.append(f"| `{r['operation']}` | {r['dtype']} | {size} | " + " | ".join(cells)
                         + f" | {'–' if ratio is None else f'{ratio:.2f}'} |")
        lines += ["", f"A copy of the same data (the memory's speed), ns per element, `np.copyto` (one thread): "
                  f"{'; '.join(copies)}.", ""]
    return "\n".join(lines)


def speed_summary_block(doc):
    """README's short table: the 2-thread figures of x ~ N(0, 3²) against
    the faster peer, each size side by side."""
    rows = [r for r in doc["rows"]["normal"] if r["operation"] != "copy"]
    sizes = sorted({r["size"] for r in rows})
    head = "| operation | dtype | " + " | ".join(f"ours, {size_label(n)} | faster peer | ratio" for n in sizes) + " |"
    lines = [head, "|---|---|" + "---|---|---|" * len(sizes)]
    keys = list(dict.fromkeys((r["operation"], r["dtype"]) for r in rows))
    for op, dtype in sorted(keys, key=lambda k: (k[1], [o for o, _ in keys].index(k[0]))):
        cells = []
        for n in sizes:
            r = next((r for r in rows if (r["operation"], r["dtype"], r["size"]) == (op, dtype, n)), None)
            if r is None:
                cells += ["–"] * 3
                continue
            ns = r["ns_per_element"]
            peers = {k: ns[k] for k in ("torch", "jax") if ns.get(k) is not None}
            best = min(peers, key=peers.get) if peers else None
            ratio = r["parallel_vs_fastest_peer"]
            cells += [_cell(ns.get("gelu_numba.parallel")),
                      f"{peers[best]:.3f} ({'PyTorch' if best == 'torch' else 'JAX'})" if best else "–",
                      "–" if ratio is None else f"{ratio:.2f}"]
        lines.append(f"| `{op}` | {dtype} | " + " | ".join(cells) + " |")
    env = doc["environment"]
    lines += ["", f"Measured {_stamp(env)}, with `{env['command']}`."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# accuracy


def measure_exhaustive(kernels=None, previous=None, targets=("parallel", "same-precision")):
    """The float32 sweeps of `kernels` (default: all) on `targets`; the other
    rows are kept from `previous`, each row with its own date."""
    from gelu_numba.core.names import BINARY as BACKWARD
    from gelu_numba.tools.cli import FORWARD
    from gelu_numba.tools.accuracy import KERNELS, exhaustive_float32

    partial = bool(kernels) or len(targets) < 2
    out = {"environment": _environment(), "rows": dict(previous["rows"]) if previous and partial else {}}
    if previous and partial:
        for row in out["rows"].values():
            row.setdefault("date", previous["environment"]["date"])
    for target in targets:
        # the backward kernels on the CPU target (the CUDA arithmetic has none of its own), dy ~ N(0, 1)
        names = [n for n in kernels or (KERNELS + BACKWARD) if n in KERNELS or target == "parallel"]
        for name in names:
            t = time.perf_counter()
            w = exhaustive_float32(name, target=target, dy="random")
            out["rows"][f"{target}/{name}"] = {
                "max_ulp": w.max_ulp, "at": w.at, "points": w.points,
                "monotonic_violations": len(w.monotonic_violations) if name in FORWARD else None,
                "near_zero": {str(z): v for z, v in w.near_zero.items()} or None,
                "dy": "N(0, 1)" if name in BACKWARD else None,
                "seconds": time.perf_counter() - t, "date": out["environment"]["date"]}
            print(f"exhaustive {target} {name}: {w.max_ulp:.3f} ulp", file=sys.stderr)
    return out


def measure_float64_search(kernels=None, previous=None):
    from gelu_numba.tools.accuracy import KERNELS, float64_search_points, max_ulp_error

    x = float64_search_points()
    out = {"environment": _environment(), "points": int(x.size),
           "rows": dict(previous["rows"]) if previous and kernels else {}}
    if previous and kernels:
        for row in out["rows"].values():
            row.setdefault("date", previous["environment"]["date"])
    for name in kernels or KERNELS:
        w = max_ulp_error(name, np.float64, x=x)
        out["rows"][name] = {"max_ulp": w.max_ulp, "at": w.at, "date": out["environment"]["date"]}
        print(f"float64 search {name}: {w.max_ulp:.3f} ulp", file=sys.stderr)
    return out


def measure_sample():
    from gelu_numba.tools.cli import accuracy_table

    return {"environment": _environment(),
            "cpu": accuracy_table(), "same-precision": accuracy_table(dtypes=("float32",), target="same-precision")}


def accuracy_block(exhaustive, search, sample):
    from gelu_numba.core.names import BINARY as BACKWARD
    from gelu_numba.tools.accuracy import KERNELS

    def ex(target, name):
        r = (exhaustive or {"rows": {}})["rows"].get(f"{target}/{name}")
        if r is None:
            return "not measured"
        mono = "" if r["monotonic_violations"] is None else (
            ", monotone" if r["monotonic_violations"] == 0 else f", {r['monotonic_violations']} drops")
        return f"{r['max_ulp']:.3f} ulp (x = {r['at']:.9g}{mono})"

    def s64(name):
        r = (search or {"rows": {}})["rows"].get(name)
        if r is None:
            return "not measured"
        return f"{r['max_ulp']:.3f} ulp (x = {r['at']:.17g})"

    def samp(table, name, dtype):
        r = next(r for r in table if r["kernel"] == name and r["dtype"] == dtype)
        return f"{r['max_ulp']:.3f}"

    def near(name):
        r = (exhaustive or {"rows": {}})["rows"].get(f"parallel/{name}")
        if not r or not r.get("near_zero"):
            return "–"
        return ", ".join(f"{v[0]:.2f} (x = {v[1]:.8g})" for v in r["near_zero"].values())

    lines = ["| kernel | float32, CPU: all 2³² inputs | float32, CPU: within 2⁻⁴ of a zero, in ulps of the value | "
             "float32, CUDA arithmetic: all 2³² inputs | "
             f"float64: {search['points']:,} points vs mpmath | adversarial sample, CPU float32 / float64 / CUDA float32 |"
             if search else "| kernel | float32, CPU | near a zero | float32, CUDA arithmetic | float64 | sample |",
             "|---|---|---|---|---|---|"]
    for name in KERNELS:
        lines.append(f"| `{name}` | {ex('parallel', name)} | {near(name)} | {ex('same-precision', name)} | "
                     f"{s64(name)} | "
                     f"{samp(sample['cpu'], name, 'float32')} / {samp(sample['cpu'], name, 'float64')} / "
                     f"{samp(sample['same-precision'], name, 'float32')} |")
    for name in BACKWARD:
        lines.append(f"| `{name}` (dy ~ N(0, 1)) | {ex('parallel', name)} | – | – | – | – |")
    lines.append("")
    for label, doc in (("The exhaustive float32 sweeps", exhaustive), ("The float64 search", search),
                       ("The adversarial sample", sample)):
        if doc is not None:
            dates = sorted({r.get("date", doc["environment"]["date"]) for r in doc.get("rows", {}).values()}
                           if isinstance(doc.get("rows"), dict) else [])
            when = f" (rows measured on {', '.join(dates)})" if len(dates) > 1 else ""
            lines.append(f"- {label}: measured {_stamp(doc['environment'])}{when}.")
    return "\n".join(lines) + "\n"


def accuracy_summary_block(exhaustive, search):
    """README's short table: the worst error of each kernel over every
    float32 input (the CPU kernels) and over the float64 search."""
    from gelu_numba.core.names import BINARY as BACKWARD
    from gelu_numba.tools.accuracy import KERNELS

    lines = ["| kernel | float32, every input | f monotone above its minimum | float64, searched |",
             "|---|---|---|---|"]
    for name in KERNELS + tuple(n for n in BACKWARD if (exhaustive or {"rows": {}})["rows"].get(f"parallel/{n}")):
        r = (exhaustive or {"rows": {}})["rows"].get(f"parallel/{name}")
        f = (search or {"rows": {}})["rows"].get(name)
        mono = "–" if r is None or r["monotonic_violations"] is None else (
            "yes" if r["monotonic_violations"] == 0 else f"no ({r['monotonic_violations']} drops)")
        searched = "–" if name in BACKWARD else "not measured" if f is None else format(f["max_ulp"], ".3f")
        label = f"`{name}` (dy ~ N(0, 1))" if name in BACKWARD else f"`{name}`"
        lines.append(f"| {label} | {'not measured' if r is None else format(r['max_ulp'], '.3f')} | {mono} | "
                     f"{searched} |")
    lines.append("")
    for label, doc in (("float32", exhaustive), ("float64", search)):
        if doc is not None:
            lines.append(f"- {label}: measured {_stamp(doc['environment'])}.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# the PyTorch module next to torch.nn.GELU


def measure_torch(n=1 << 22, rounds=15):
    """ns/element of GELU() and torch.nn.GELU() on a float32 tensor of n
    elements, forward and forward+backward, each call right after a torch
    operation that used torch's own threads (as inside a model)."""
    import torch

    import gelu_numba.torch as gt

    torch.manual_seed(0)
    x = torch.randn(n) * 3
    g = torch.randn(n)
    rows = []
    for approximate in ("none", "tanh"):
        acts = {"gelu_numba.torch.GELU": gt.GELU(approximate), "torch.nn.GELU": torch.nn.GELU(approximate=approximate)}
        best = {(k, m): float("inf") for k in acts for m in ("forward", "forward+backward")}
        for _ in range(rounds):
            for name, act in acts.items():
                h = (x * 1.0001).requires_grad_()  # torch's threads were just busy
                t = time.perf_counter()
                act(h)
                best[name, "forward"] = min(best[name, "forward"], time.perf_counter() - t)
                h = (x * 1.0001).requires_grad_()
                t = time.perf_counter()
                act(h).backward(g)
                best[name, "forward+backward"] = min(best[name, "forward+backward"], time.perf_counter() - t)
        for mode in ("forward", "forward+backward"):
            ours, theirs = best["gelu_numba.torch.GELU", mode], best["torch.nn.GELU", mode]
            rows.append({"approximate": approximate, "mode": mode, "ours_ns": ours / n * 1e9,
                         "torch_ns": theirs / n * 1e9, "ratio": ours / theirs})
    return {"environment": _environment(), "elements": n, "threads": torch.get_num_threads(), "rows": rows}


def torch_block(doc):
    env = doc["environment"]
    lines = [f"`GELU()` of gelu_numba next to `torch.nn.GELU()`, float32, {size_label(doc['elements'])} elements, "
             f"{doc['threads']} torch threads, each call right after a torch operation (so torch's threads were "
             f"just busy, as inside a model); ns per element, best of {15} interleaved rounds, ratio = ours / "
             f"torch. Measured {_stamp(env)}.", "",
             "| approximate | pass | gelu_numba | torch.nn.GELU | ratio |", "|---|---|---|---|---|"]
    for r in doc["rows"]:
        lines.append(f"| `{r['approximate']}` | {r['mode']} | {r['ours_ns']:.3f} | {r['torch_ns']:.3f} | "
                     f"{r['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# timings: import, first call cold and warm, compiling everything


def _seconds(code, env):
    """Seconds that `code` takes in a fresh interpreter, timed inside it
    (the interpreter's own start-up excluded)."""
    timed = f"import time as _t; _s = _t.perf_counter()\n{code}\nprint(_t.perf_counter() - _s)"
    r = subprocess.run([sys.executable, "-c", timed], check=True, env=env, cwd=str(ROOT),
                       capture_output=True, text=True)
    return float(r.stdout.strip().splitlines()[-1])


def measure_timings():
    import tempfile

    base = dict(os.environ)
    base["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory() as cache:
        env = dict(base, NUMBA_CACHE_DIR=cache)
        first = "import numpy as np, gelu_numba as gn; gn.gelu(np.float32(1))"
        compile_all = "from gelu_numba.tools.cli import main; main(['compile'])"
        out = {
            "environment": _environment(),
            "import": min(_seconds("import gelu_numba", env) for _ in range(5)),
            "first_call_cold": _seconds(first, env),
            "first_call_warm": min(_seconds(first, env) for _ in range(3)),
            "compile_all_cold": _seconds(compile_all, env),
            "compile_all_warm": _seconds(compile_all, env),
            "loops": 4 * len(__import__("gelu_numba.core.names", fromlist=["NAMES"]).NAMES),
        }
    return out


def timings_block(doc):
    return (f"`import gelu_numba` takes {1e3 * doc['import']:.1f} ms: it imports neither NumPy nor Numba "
            "and compiles nothing until a kernel is first looked up. "
            f"The first call of a kernel takes {doc['first_call_cold']:.1f} s in a process with an empty cache "
            f"(importing Numba and compiling that kernel's two loops) and {doc['first_call_warm']:.2f} s once "
            f"Numba's cache holds it; `gelu-numba compile` builds all {doc['loops']} loops ({doc['loops'] // 4} "
            f"kernels × serial, parallel × float32, float64) in {doc['compile_all_cold']:.0f} s cold and loads them in "
            f"{doc['compile_all_warm']:.1f} s warm. Measured {_stamp(doc['environment'])}, with "
            f"`{doc['environment']['command']}` (timed inside a fresh interpreter, its start-up excluded).\n")


def measure_contention(baseline=None):
    """tools/contention.py: every threading layer under every contention
    (about 8 minutes; with `baseline`, a checkout of the starting commit,
    its idle figures too)."""
    out = FIGURES / "contention.json"
    cmd = [sys.executable, str(ROOT / "tools" / "contention.py"), "--json", str(out)]
    if baseline:
        cmd += ["--baseline", baseline]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def contention_block(doc):
    from importlib import util

    spec = util.spec_from_file_location("contention", ROOT / "tools" / "contention.py")
    tool = util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    m = doc["machine"]
    missing = "".join(f" Not measured: {k}: {v}." for k, v in doc.get("not_measured", {}).items())
    return (tool.markdown(doc["results"]) + "\n\n"
            f"float32 `gelu`, `out=`, x ~ N(0, 3²), 2 threads; each row {doc['seconds']:g} s of threaded and "
            f"{doc['seconds']:g} s of serial calls, alternating, in one process. Measured {m['date']} on "
            f"{m['cpu']} ({m['llvm_cpu']}), {m['cores']} cores, commit {m['commit']}; Python {m['python']}, "
            f"NumPy {m['numpy']}, Numba {m['numba']}, with `python tools/contention.py"
            f"{' --baseline DIR' if any(r.get('tree') == 'baseline' for r in doc['results']) else ''}`."
            f"{missing}\n")


# --------------------------------------------------------------------------
# the fused forms against the unfused expression and the peers


def measure_fused():
    from gelu_numba.tools import fused_bench

    doc = fused_bench.run(rows=4096, cols=4096, threads=THREADS)
    doc["environment"]["command"] = "python tools/readme_figures.py --only fused"
    return doc


def fused_block(doc):
    from gelu_numba.tools import fused_bench

    env = doc["environment"]
    return (f"{doc['dtype']}, x, a, g and dy of {doc['rows']} × {doc['cols']}, b of {doc['cols']} along the last "
            f"axis, {doc['threads']} threads for ours and PyTorch (JAX its own); ns per element of x, best of "
            "interleaved rounds, their order rotated each round (the peers' pools spin after a call, slowing "
            "whatever runs next). `fused`: `gelu_numba.parallel`'s fused form, `out=`; `unfused`: NumPy's add or "
            "multiply into a preallocated temporary and `gelu_numba.parallel`'s single forms, `out=`; the "
            "backward of bias-GELU includes db = dx summed over the rows (NumPy's sum, one thread, for ours). "
            f"Measured {_stamp(env)}, with `{env['command']}`.\n\n" + fused_bench.markdown(doc) + "\n")


def fused_summary_block(doc):
    by = {r["operation"]: r for r in doc["results"]}
    parts = []
    for op in ("bias_gelu", "bias_gelu_backward", "geglu", "geglu_backward"):
        r = by[op]
        ns = r["ns_per_element"]
        peer = r["fused_vs_torch_eager"]
        parts.append(f"`{op}` {ns['fused']:.2f} ns per element, {r['fused_speedup_over_unfused']:.2f}× faster than "
                     f"unfused" + ("" if peer is None else f", {1 / peer:.2f}× PyTorch eager's speed"))
    env = doc["environment"]
    return ("; ".join(parts) + f" ({doc['dtype']}, {doc['rows']} × {doc['cols']}, {doc['threads']} threads). "
            f"Measured {_stamp(env)}, with `{env['command']}`; every column in "
            "[speed](docs/speed.md#the-fused-forms).\n")


# --------------------------------------------------------------------------


def _write(name, body):
    """Rewrite one block, reading its page just before (so that edits made
    while a long measurement ran are kept)."""
    page = page_of(name)
    page.write_text(replace_block(page.read_text(), name, body))


def render(measured):
    """Rewrite the blocks of each measurement in `measured` from the saved
    results (benchmarks/figures/)."""
    if "timings" in measured and _load("timings"):
        _write("timings", timings_block(_load("timings")))
    if "accuracy" in measured and _load("accuracy_sample"):
        exhaustive, search = _load("exhaustive"), _load("float64_search")
        _write("accuracy", accuracy_block(exhaustive, search, _load("accuracy_sample")))
        _write("accuracy-summary", accuracy_summary_block(exhaustive, search))
    if "torch" in measured and _load("torch"):
        _write("torch", torch_block(_load("torch")))
    if "speed" in measured and _load("speed"):
        _write("speed", speed_block(_load("speed")))
        _write("speed-summary", speed_summary_block(_load("speed")))
    if "contention" in measured and _load("contention"):
        _write("contention", contention_block(_load("contention")))
    if "fused" in measured and _load("fused"):
        _write("fused", fused_block(_load("fused")))
        _write("fused-summary", fused_summary_block(_load("fused")))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", choices=tuple(BLOCKS))
    p.add_argument("--render", action="store_true",
                   help="measure nothing: rewrite the blocks from the results saved in benchmarks/figures/")
    p.add_argument("--exhaustive", action="store_true", help="rerun the float32 sweeps (about 40 minutes)")
    p.add_argument("--kernel", action="append", metavar="NAME",
                   help="with --exhaustive or --float64-search: rerun those for this kernel only (repeatable), "
                        "keeping the other kernels' results")
    p.add_argument("--target", action="append", choices=("parallel", "same-precision"),
                   help="with --exhaustive: rerun the sweeps of this target only (repeatable; default both), "
                        "keeping the other's results")
    p.add_argument("--float64-search", action="store_true", help="rerun the float64 search against mpmath")
    p.add_argument("--contention-baseline", metavar="DIR",
                   help="with --only contention: a checkout of the commit to compare the idle figures with")
    args = p.parse_args(argv)
    only = set(args.only or BLOCKS)
    for name in only:  # fail now, not after the measurements, if a block is missing or doubled
        for block in BLOCKS[name]:
            page_of(block)
    if not args.render:
        if "timings" in only:
            _save("timings", measure_timings())
        if "accuracy" in only:
            if args.exhaustive:
                _save("exhaustive", measure_exhaustive(args.kernel, _load("exhaustive"),
                                                       tuple(args.target or ("parallel", "same-precision"))))
            if args.float64_search:
                _save("float64_search", measure_float64_search(args.kernel, _load("float64_search")))
            _save("accuracy_sample", measure_sample())
        if "torch" in only:
            _save("torch", measure_torch())
        if "speed" in only:
            _save("speed", measure_speed())
        if "contention" in only:
            measure_contention(args.contention_baseline)
        if "fused" in only:
            _save("fused", measure_fused())
    render(only)
    blocks = sorted(b for name in only for b in BLOCKS[name])
    print(f"{', '.join(blocks)} rewritten ({datetime.datetime.now():%Y-%m-%d %H:%M})", file=sys.stderr)


if __name__ == "__main__":
    main()
