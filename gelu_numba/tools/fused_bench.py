"""Side-by-side timings of the fused forms (issue 29): bias-GELU and GeGLU,
forward and backward, against the unfused NumPy expression and the peers.

    python -m gelu_numba.tools.fused_bench [--rows 4096] [--cols 4096] [--threads 2] [--json]

The shape of a transformer's activation: x, a, g and dy of rows x cols,
float32, the bias b of cols along the last axis.  Every implementation runs
in one process on the same arrays, in interleaved rounds (``bench``), and
each figure is the best round in ns per element of x.  What each row
computes:

- ``bias_gelu``: gelu(x + b);
- ``bias_gelu_backward``: dx = dy gelu'(x + b) and db = dx summed over the
  rows (NumPy's sum in one thread for ours; torch's and JAX's own);
- ``geglu``: gelu(a) g;
- ``geglu_backward``: da = dy g gelu'(a), dg = dy gelu(a).

The implementations: ``fused`` (``gelu_numba.parallel``, out=), ``fused,
serial`` (``gelu_numba``), ``unfused`` (NumPy's add or multiply into a
preallocated temporary and ``gelu_numba.parallel``'s single forms, out=),
``unfused, allocating`` (the plain expression), ``torch eager`` (what a
PyTorch user writes, with torch's own fused gelu_backward), ``torch.compile``
(inductor, where a C++ compiler is found), ``jax.jit``.  PyTorch runs with
`threads` threads; JAX with its own pool.
"""

import argparse
import json
import sys

import numpy as np

from . import bench

OPERATIONS = ("bias_gelu", "bias_gelu_backward", "geglu", "geglu_backward")


def _arrays(rows, cols, dtype, seed=0):
    rng = np.random.default_rng(seed)
    big = lambda scale: (rng.standard_normal((rows, cols)) * scale).astype(dtype)  # noqa: E731
    return {"x": big(3.0), "a": big(3.0), "g": big(1.0), "dy": big(1.0),
            "b": (rng.standard_normal(cols) * 0.5).astype(dtype)}


def _ours(op, d):
    import gelu_numba as gn
    import gelu_numba.parallel as gp

    x, a, g, dy, b = d["x"], d["a"], d["g"], d["dy"], d["b"]
    o, t, u = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    db = np.empty_like(b)
    fns = {}
    if op == "bias_gelu":
        fns["fused"] = lambda: gp.bias_gelu(x, b, out=o)
        fns["fused, serial"] = lambda: gn.bias_gelu(x, b, out=o)
        fns["unfused"] = lambda: (np.add(x, b, out=t), gp.gelu(t, out=o))
        fns["unfused, allocating"] = lambda: gp.gelu(x + b)
    elif op == "bias_gelu_backward":
        fns["fused"] = lambda: (gp.bias_gelu_backward(dy, x, b, out=o), np.sum(o, axis=0, out=db))
        fns["fused, serial"] = lambda: (gn.bias_gelu_backward(dy, x, b, out=o), np.sum(o, axis=0, out=db))
        fns["unfused"] = lambda: (np.add(x, b, out=t), gp.gelu_backward(dy, t, out=o), np.sum(o, axis=0, out=db))
        fns["unfused, allocating"] = lambda: (lambda dx: (dx, dx.sum(axis=0)))(gp.gelu_backward(dy, x + b))
    elif op == "geglu":
        fns["fused"] = lambda: gp.geglu(a, g, out=o)
        fns["fused, serial"] = lambda: gn.geglu(a, g, out=o)
        fns["unfused"] = lambda: (gp.gelu(a, out=t), np.multiply(t, g, out=o))
        fns["unfused, allocating"] = lambda: gp.gelu(a) * g
    else:
        fns["fused"] = lambda: gp.geglu_backward(dy, a, g, out=(o, t))
        fns["fused, serial"] = lambda: gn.geglu_backward(dy, a, g, out=(o, t))
        fns["unfused"] = lambda: (np.multiply(dy, g, out=u), gp.gelu_backward(u, a, out=o), gp.gelu(a, out=t),
                                  np.multiply(dy, t, out=t))
        fns["unfused, allocating"] = lambda: (gp.gelu_backward(dy * g, a), dy * gp.gelu(a))
    return fns


def _torch(op, d, threads):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    torch.set_num_threads(threads)
    x, a, g, dy, b = (torch.from_numpy(d[k]) for k in ("x", "a", "g", "dy", "b"))
    h = x + b  # what autograd saved in the forward pass
    gelu_backward = torch.ops.aten.gelu_backward

    def eager_bias_backward():
        dx = gelu_backward(dy, h)
        return dx, dx.sum(0)

    exprs = {
        "bias_gelu": (lambda: F.gelu(x + b), lambda x_, b_: F.gelu(x_ + b_), (x, b)),
        "bias_gelu_backward": (eager_bias_backward,
                               lambda dy_, x_, b_: (lambda dx: (dx, dx.sum(0)))(gelu_backward(dy_, x_ + b_)),
                               (dy, x, b)),
        "geglu": (lambda: F.gelu(a) * g, lambda a_, g_: F.gelu(a_) * g_, (a, g)),
        "geglu_backward": (lambda: (gelu_backward(dy * g, a), dy * F.gelu(a)),
                           lambda dy_, a_, g_: (gelu_backward(dy_ * g_, a_), dy_ * F.gelu(a_)), (dy, a, g)),
    }
    eager, fn, args = exprs[op]
    fns = {"torch eager": eager}
    try:
        compiled = torch.compile(fn, fullgraph=True, dynamic=False)
        compiled(*args)
        fns["torch.compile"] = lambda: compiled(*args)
    except Exception as exc:  # noqa: BLE001 (no C++ compiler, or an inductor limit: reported, not fatal)
        print(f"torch.compile unavailable for {op}: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
    return fns


def _jax(op, d):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return {}
    x, a, g, dy, b = (jax.device_put(jnp.asarray(d[k])) for k in ("x", "a", "g", "dy", "b"))
    gelu = lambda v: jax.nn.gelu(v, approximate=False)  # noqa: E731
    if op == "bias_gelu":
        f, args = jax.jit(lambda x_, b_: gelu(x_ + b_)), (x, b)
    elif op == "bias_gelu_backward":
        def back(dy_, x_, b_):
            dx = jax.vjp(gelu, x_ + b_)[1](dy_)[0]
            return dx, dx.sum(0)

        f, args = jax.jit(back), (dy, x, b)
    elif op == "geglu":
        f, args = jax.jit(lambda a_, g_: gelu(a_) * g_), (a, g)
    else:
        f, args = jax.jit(lambda dy_, a_, g_: jax.vjp(lambda p, q: gelu(p) * q, a_, g_)[1](dy_)), (dy, a, g)
    return {"jax.jit": lambda: jax.block_until_ready(f(*args))}


def run(rows=4096, cols=4096, threads=2, dtype="float32", budget=1.0, operations=OPERATIONS):
    """[{operation, ns_per_element: {implementation: best ns}, median, ratios}]."""
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    d = _arrays(rows, cols, np.dtype(dtype).type)
    out = []
    for op in operations:
        print(f"fused_bench: {op}", file=sys.stderr)
        fns = {**_ours(op, d), **_torch(op, d, threads), **_jax(op, d)}
        # rotated: the peers' pools spin after a call, and our threaded
        # geglu_backward took 2.25 ns per element right after jax.jit, 1.37 alone
        timed = bench._interleaved(fns, rows * cols, budget=budget, min_rounds=7, rotate=True)
        best = {k: v[0] for k, v in timed.items()}
        median = {k: v[1] for k, v in timed.items()}
        peers = {k: v for k, v in best.items() if k.startswith(("torch", "jax"))}
        out.append({
            "operation": op, "ns_per_element": best, "median_ns_per_element": median,
            "fused_speedup_over_unfused": best["unfused"] / best["fused"],
            "fused_speedup_over_allocating": best["unfused, allocating"] / best["fused"],
            "fused_vs_torch_eager": best["fused"] / peers["torch eager"] if "torch eager" in peers else None,
            "fused_vs_fastest_peer": best["fused"] / min(peers.values()) if peers else None,
        })
    return {"environment": {**bench.environment(), "command": "python -m gelu_numba.tools.fused_bench"},
            "rows": rows, "cols": cols, "threads": threads, "dtype": dtype, "results": out}


def markdown(doc):
    """The table: ns per element, and the ratios."""
    names = list(dict.fromkeys(k for r in doc["results"] for k in r["ns_per_element"]))
    lines = ["| operation | " + " | ".join(names) + " | unfused / fused | fused / fastest peer |",
             "|---|" + "---|" * (len(names) + 2)]
    for r in doc["results"]:
        cells = [f"{r['ns_per_element'][n]:.3f}" if n in r["ns_per_element"] else "–" for n in names]
        peer = r["fused_vs_fastest_peer"]
        lines.append(f"| `{r['operation']}` | " + " | ".join(cells) + f" | {r['fused_speedup_over_unfused']:.2f} | "
                     + ("–" if peer is None else f"{peer:.2f}") + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--cols", type=int, default=4096)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--budget", type=float, default=1.0, help="seconds of rounds per implementation")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    doc = run(args.rows, args.cols, args.threads, args.dtype, args.budget)
    print(json.dumps(doc, indent=1) if args.json else markdown(doc))


if __name__ == "__main__":
    main()
