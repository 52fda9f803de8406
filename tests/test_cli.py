"""The command line: each subcommand's output, --json, exit statuses and bad usage.

Most tests call ``gelu_numba.tools.cli.main`` in process (the same function
the console script and ``python -m gelu_numba`` call); a few run it as a
subprocess to see what a user sees: no traceback, one line, the exit status.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

import gelu_numba
from gelu_numba.tools import cli
from gelu_numba.tools import accuracy as acc_module

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _has(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


# --------------------------------------------------------------------------
# report


def test_report_json_is_the_default_subcommand(tmp_path, capsys):
    status, out, _ = run(capsys, "--json", "--plots", tmp_path)
    assert status == 0
    doc = json.loads(out)
    env = doc["environment"]
    for key in ("gelu_numba", "numba", "llvmlite", "numpy", "threading_layer", "simd", "cuda"):
        assert key in env
    assert env["threading_layer"] in ("tbb", "omp", "workqueue")
    from gelu_numba.core import vector32

    assert env["float32_loops"].startswith(vector32.emission() + ", FMA ")

    x = np.array(doc["x"])
    values = {k: np.array(v) for k, v in doc["values"].items()}
    assert values["gelu"][x == -1.0][0] == pytest.approx(-0.15865525393145707, rel=1e-15)
    assert values["gelu"][x == 2.0][0] == pytest.approx(1.9544997361036416, rel=1e-15)
    assert np.array_equal(values["relu"], np.maximum(x, 0))
    assert set(values) == {"relu", "gelu", "gelu_tanh", "gelu_sigmoid"}

    rows = doc["accuracy"]
    assert {(r["kernel"], r["dtype"]) for r in rows} == {
        (k, d) for k in cli.KERNELS for d in ("float32", "float64")
    }
    assert all(0 <= r["max_ulp"] <= cli.CONTRACT_ULP and r["points"] > 1000 for r in rows)

    speed = {r["operation"]: r["ns_per_element"] for r in doc["throughput"]}
    every = set(cli.KERNELS) | {"gelu_backward", "gelu_tanh_backward", "gelu_sigmoid_backward"}
    assert set(speed) == {"copy"} | every  # a line for each kernel
    for op in every:
        assert speed[op]["gelu_numba"] > 0 and speed[op]["gelu_numba.parallel"] > 0
        if _has("scipy"):
            assert speed[op]["numpy+scipy"] > 0
        if _has("torch") and op in ("gelu", "gelu_tanh", "gelu_sigmoid", "gelu_backward", "gelu_tanh_backward"):
            assert speed[op]["torch"] > 0

    if _has("matplotlib"):
        assert [pathlib.Path(p).name for p in doc["plots"]] == [
            "gelu_vs_relu.png", "derivatives.png", "approximation_error.png", "ulp_error.png"]
        assert all(pathlib.Path(p).parent == tmp_path and pathlib.Path(p).is_absolute() for p in doc["plots"])
        assert doc["plots_note"] is None
    else:
        assert doc["plots"] == [] and 'pip install ".[plot]"' in doc["plots_note"]


def test_report_text(tmp_path, capsys, monkeypatch):
    # The whole report, with a smaller accuracy table and throughput size
    # (the JSON test runs them in full).
    table, throughput = cli.accuracy_table, cli.throughput
    monkeypatch.setattr(cli, "accuracy_table", lambda **kw: table(kernels=("gelu", "gelu_tanh_grad"), **kw))
    monkeypatch.setattr(cli, "throughput", lambda **kw: throughput(size=4096, **kw))
    status, out, _ = run(capsys, "report", "--plots", tmp_path)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"gelu_numba {gelu_numba.__version__}: numba ")
    assert lines[1].startswith("CPU ") and "threading layer" in lines[1]
    from gelu_numba.core import vector32

    assert lines[2].startswith(f"float32 loops: {vector32.emission()}, FMA ")
    assert lines[3].startswith("CUDA: ")
    i = lines.index("GELU next to ReLU (float64)")
    assert lines[i + 1].split() == ["x", "relu", "gelu", "gelu_tanh", "gelu_sigmoid"]
    row = {ln.split()[0]: ln.split()[1:] for ln in lines[i + 3:i + 12]}
    assert row["-1.00"] == ["0.000000", "-0.158655", "-0.158808", "-0.154204"]
    assert row["2.00"][:2] == ["2.000000", "1.954500"]
    j = next(k for k, ln in enumerate(lines) if ln.startswith("Accuracy against mpmath"))
    acc_rows = [ln.split() for ln in lines[j + 3:j + 7]]
    assert [(r[0], r[1]) for r in acc_rows] == [
        ("gelu", "float32"), ("gelu", "float64"), ("gelu_tanh_grad", "float32"), ("gelu_tanh_grad", "float64")]
    assert all(float(r[2]) <= 2.0 for r in acc_rows)
    k = lines.index("Throughput, float32, 1M elements, ns/element (lower is better)")
    assert lines[k + 1].split()[:5] == ["operation", "dtype", "size", "ours", "ours"]
    assert {ln.split()[0] for ln in lines[k + 3:k + 16]} == {"copy", *cli.KERNELS, "gelu_backward",
                                                           "gelu_tanh_backward", "gelu_sigmoid_backward"}
    if _has("scipy"):
        assert "np+scipy" in lines[k + 1]
    if _has("matplotlib"):
        i = lines.index(f"Plots, in {tmp_path}:")
        assert [pathlib.Path(ln.strip()) for ln in lines[i + 1:i + 5]] == [
            tmp_path / n for n in ("gelu_vs_relu.png", "derivatives.png", "approximation_error.png", "ulp_error.png")]
    else:
        assert any(ln.startswith('Plots: not written: plots need matplotlib: pip install ".[plot]"') for ln in lines)


def test_report_names_the_missing_peer(tmp_path, capsys, monkeypatch):
    from gelu_numba.tools import bench

    monkeypatch.setattr(bench, "available_peers", lambda: [])
    monkeypatch.setattr(cli, "accuracy_table", lambda **kw: [])
    monkeypatch.setattr(cli, "throughput", lambda **kw: [])
    status, out, _ = run(capsys, "report", "--plots", tmp_path)
    assert status == 0
    assert ('Not compared, not installed: scipy (pip install ".[report]" in a gelu_numba checkout), '
            'torch (pip install ".[torch]" in a gelu_numba checkout; CPU-only: see docs/ecosystem.md, \'PyTorch\'), jax') in out
    assert "ratio: - (neither torch nor jax is installed" in out


# --------------------------------------------------------------------------
# accuracy


def test_accuracy_text(capsys):
    status, out, _ = run(capsys, "accuracy", "--kernel", "gelu", "--kernel", "gelu_tanh_grad", "--dtype", "float64")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("Worst error against mpmath on the adversarial sample, target cpu")
    assert lines[1].split() == ["kernel", "dtype", "max", "ulp", "at", "x", "points", "seconds"]
    rows = [ln.split() for ln in lines[3:]]
    assert [(r[0], r[1]) for r in rows] == [("gelu", "float64"), ("gelu_tanh_grad", "float64")]
    assert all(float(r[2]) <= 2.0 and int(r[4]) > 1000 for r in rows)


def test_accuracy_json(capsys):
    status, out, _ = run(capsys, "accuracy", "--kernel", "gelu_sigmoid", "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["target"] == "cpu" and doc["sample"] == "adversarial"
    assert [(r["kernel"], r["dtype"]) for r in doc["accuracy"]] == [
        ("gelu_sigmoid", "float32"), ("gelu_sigmoid", "float64")]


def test_accuracy_measures_backward_kernels(capsys):
    """The backward kernels are in the accuracy command, measured against
    dy f'(x) (mpmath) at a fixed N(0, 1) dy, within the contract."""
    status, out, _ = run(capsys, "accuracy", "--kernel", "gelu_backward", "--kernel", "gelu_sigmoid_backward",
                         "--json")
    assert status == 0
    rows = json.loads(out)["accuracy"]
    assert [(r["kernel"], r["dtype"]) for r in rows] == [
        ("gelu_backward", "float32"), ("gelu_backward", "float64"),
        ("gelu_sigmoid_backward", "float32"), ("gelu_sigmoid_backward", "float64")]
    assert all(0 < r["max_ulp"] <= 2 for r in rows), rows


def test_accuracy_same_precision_is_float32_only(capsys):
    status, out, _ = run(capsys, "accuracy", "--target", "same-precision", "--kernel", "gelu", "--json")
    assert status == 0
    rows = json.loads(out)["accuracy"]
    assert [(r["kernel"], r["dtype"]) for r in rows] == [("gelu", "float32")]
    assert rows[0]["max_ulp"] <= 2.0


def test_accuracy_exits_1_when_the_contract_breaks(capsys, monkeypatch):
    monkeypatch.setattr(acc_module, "max_ulp_error",
                        lambda name, dtype, **kw: acc_module.Worst(name, dtype, 3.5, -7.0, 10))
    status, out, _ = run(capsys, "accuracy", "--kernel", "gelu", "--dtype", "float32")
    assert status == 1
    assert "3.500" in out


def test_exhaustive_on_a_range(capsys):
    status, out, _ = run(capsys, "accuracy", "--exhaustive", "--kernel", "gelu", "--kernel", "gelu_grad",
                         "--range", "-1", "-0.5", "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["sample"] == "exhaustive" and doc["range"] == [-1.0, -0.5]
    gelu, grad = doc["accuracy"]
    assert gelu["points"] == grad["points"] == 2**23 + 1  # the floats in [-1, -0.5]
    assert gelu["max_ulp"] <= 2.0 and grad["max_ulp"] <= 2.0
    assert gelu["monotonicity_checked"] and gelu["monotonic_violations"] == 0
    assert not grad["monotonicity_checked"]


def test_exhaustive_text_says_what_it_checked(capsys):
    status, out, _ = run(capsys, "accuracy", "--exhaustive", "--kernel", "gelu", "--kernel", "gelu_tanh",
                         "--kernel", "gelu_grad", "--range", "-6", "-5")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "All float32 inputs in [-6, -5] against the float64 kernel, target cpu"
    rows = {ln.split()[0]: ln for ln in lines[3:]}
    assert "(range below x_min)" in rows["gelu"] and "(range below x_min)" in rows["gelu_tanh"]
    assert "(not a forward kernel)" in rows["gelu_grad"]


def test_exhaustive_default_is_every_float(capsys, monkeypatch):
    seen = []

    def fake(name, **kw):
        seen.append(kw["interval"])
        return acc_module.Worst(name, "float32", 0.25, 1.0, 1 << 32, [(1.0, 1.5, 2.0, 1.0)])

    monkeypatch.setattr(acc_module, "exhaustive_float32", fake)
    status, out, _ = run(capsys, "accuracy", "--exhaustive", "--kernel", "gelu")
    assert seen == [None]
    assert out.startswith("All 2**32 float32 inputs against the float64 kernel")
    assert "NO: 1 drops" in out
    assert status == 1  # a monotonicity violation breaks the contract


# --------------------------------------------------------------------------
# bench


def test_bench_json(capsys):
    status, out, _ = run(capsys, "bench", "--size", "4K", "--dtype", "float32", "--operation", "gelu",
                         "--operation", "gelu_backward", "--threads", "1", "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["threads"] == 1 and doc["threads_requested"] == 1 and doc["data"] == "normal"
    env = doc["environment"]
    assert env["date"] and env["cpu"] and env["numba"] and isinstance(env["peers"], list)
    rows = {r["operation"]: r for r in doc["rows"]}
    assert set(rows) == {"copy", "gelu", "gelu_backward"}
    assert all(r["size"] == 4096 and r["dtype"] == "float32" for r in doc["rows"])
    # np.copyto always; torch's multi-threaded copy_ where torch is installed
    expected = {"np.copyto"} | ({"torch copy_"} if importlib.util.find_spec("torch") else set())
    assert set(rows["copy"]["ns_per_element"]) == expected
    for op in ("gelu", "gelu_backward"):
        cells = rows[op]["ns_per_element"]
        assert cells["gelu_numba"] > 0 and cells["gelu_numba.parallel"] > 0
        assert cells["gelu_numba.parallel (allocating)"] > 0
        if "numpy+scipy" in doc["peers"]:
            assert cells["numpy+scipy"] > 0
        fastest = min((cells[p] for p in ("torch", "jax") if p in cells), default=None)
        if fastest is None:
            assert rows[op]["parallel_vs_fastest_peer"] is None
        else:
            assert rows[op]["parallel_vs_fastest_peer"] == pytest.approx(cells["gelu_numba.parallel"] / fastest)


def test_bench_text(capsys):
    status, out, _ = run(capsys, "bench", "--size", "2K", "--dtype", "float64", "--operation", "gelu_tanh")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("ns/element, normal data, 2 threads; peers found: ")
    assert lines[1].split()[:4] == ["operation", "dtype", "size", "ours"]
    assert lines[3].split()[:3] == ["copy", "float64", "2K"]  # as asked: 2K is 2048 elements
    assert lines[4].split()[:3] == ["gelu_tanh", "float64", "2K"]
    assert lines[5].startswith("ours: gelu_numba, serial, out=; ours par: gelu_numba.parallel, 2 threads")
    assert lines[6].startswith("ratio: ") and "best of interleaved rounds" in lines[7]


def test_bench_threads_are_capped_out_loud(capsys):
    import numba

    many = numba.config.NUMBA_NUM_THREADS + 97
    status, out, err = run(capsys, "bench", "--size", "2K", "--dtype", "float32", "--operation", "gelu",
                           "--threads", many, "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["threads"] == numba.config.NUMBA_NUM_THREADS and doc["threads_requested"] == many
    assert err.startswith(f"gelu-numba bench: --threads {many} is more than the ")
    status, out, _ = run(capsys, "bench", "--size", "2K", "--dtype", "float32", "--operation", "gelu",
                         "--threads", "1")
    assert "normal data, 1 thread;" in out.splitlines()[0]


def test_bench_tail_data():
    from gelu_numba.tools import bench

    rng = np.random.default_rng(1)
    for dtype, hi in (("float32", 12), ("float64", 30)):
        x = bench.make_data("tail", 10_000, dtype, rng)
        assert x.dtype == dtype and np.all((np.abs(x) >= 5) & (np.abs(x) <= hi))
        assert 0.4 < np.mean(x < 0) < 0.6
    x = bench.make_data("normal", 100_000, "float64", rng)
    assert 2.9 < x.std() < 3.1 and abs(x.mean()) < 0.05


def test_bench_gpu_without_a_gpu_says_so(capsys):
    from gelu_numba import gpu

    if gpu.is_available():
        pytest.skip("a GPU is present: the GPU benchmark runs (tests/test_gpu_cuda.py)")
    status, out, err = run(capsys, "bench", "--gpu")
    assert status == 2 and out == ""  # a request this machine cannot serve, not a broken contract
    assert err.startswith("gelu-numba bench --gpu: no GPU to benchmark here (") and err.count("\n") == 1


# --------------------------------------------------------------------------
# bench: sizes are exact, and labelled as they were asked for


@pytest.mark.parametrize("text, elements, label", [
    ("4096", 4096, "4K"), ("2K", 2048, "2K"), ("1.5K", 1536, "1.5K"), ("0.5K", 512, "512"),
    ("1000", 1000, "1000"), ("1M", 1 << 20, "1M"), ("16M", 1 << 24, "16M"), ("1.5M", 1_572_864, "1.5M"),
    ("1500K", 1_536_000, "1500K"), ("1536K", 1_572_864, "1.5M"), ("1.25g", 1_342_177_280, "1.25G"),
])
def test_size_units_are_binary_and_the_label_reads_back(text, elements, label):
    # K, M, G are 1024-based, as the default 1M (2**20) and the README's 8K
    # and 2K thresholds have them.
    from gelu_numba.tools import bench

    assert cli._size(text) == elements
    assert bench.size_label(elements) == label
    assert cli._size(label) == elements


def test_every_size_label_reads_back_as_its_size():
    from gelu_numba.tools import bench

    rng = np.random.default_rng(7)
    sizes = {*range(1, 3000), *(k << s for k in range(1, 2000) for s in (7, 10, 17, 20, 27, 30)),
             *(int(n) for n in rng.integers(1, 1 << 40, 2000))}
    assert [n for n in sorted(sizes) if cli._size(bench.size_label(n)) != n] == []


@pytest.mark.parametrize("text, why", [("1.3M", "is 1363148.8"), ("0.1K", "is 102.4"), ("nan", "not a size"),
                                       ("infK", "not a size"), ("1e30G", "too large")])
def test_a_size_that_is_no_whole_number_of_elements_is_refused(text, why, capsys):
    status, out, err = run(capsys, "bench", "--size", text)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert why in err


def test_bench_labels_a_row_as_its_size_was_asked(capsys):
    status, out, _ = run(capsys, "bench", "--size", "1.5K", "--dtype", "float32", "--operation", "gelu",
                         "--threads", "1")
    assert status == 0
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines()[3:5]}
    assert rows["gelu"][:3] == ["gelu", "float32", "1.5K"]  # 1536 elements
    status, out, _ = run(capsys, "bench", "--size", "1.5K", "--dtype", "float32", "--operation", "gelu",
                         "--threads", "1", "--json")
    assert {r["size"] for r in json.loads(out)["rows"]} == {1536}


# --------------------------------------------------------------------------
# bench: a run larger than the memory available is refused before it starts


def _no_allocation(*args, **kwargs):
    raise AssertionError("the benchmark allocated its arrays")


def test_bench_beyond_available_memory_is_refused_before_allocating(capsys, monkeypatch):
    from gelu_numba.tools import bench

    monkeypatch.setattr(bench, "available_memory", lambda: (2 << 30, "a test's limit"), raising=False)
    monkeypatch.setattr(bench, "run", _no_allocation)
    monkeypatch.setattr(bench, "make_data", _no_allocation)
    for json_flag in ((), ("--json",)):
        status, out, err = run(capsys, "bench", "--size", "1M", "1G", *json_flag)
        assert status == 2 and out == "" and err.count("\n") == 1
        need = bench.memory_needed([1 << 20, 1 << 30], ("float32", "float64"))
        assert err == (f"gelu-numba bench: --size 1M 1G needs about {cli._gib(need)} of memory (float32, float64, "
                       "with every peer's arrays and libraries), and 2.0 GiB is available (a test's limit)\n")
    # what fits runs
    timed = []
    monkeypatch.setattr(bench, "run", lambda **kw: timed.append(kw["sizes"]) or [])
    status, _, err = run(capsys, "bench", "--size", "1M", "--dtype", "float32", "--json")
    assert status == 0 and timed == [[1 << 20]]


def test_bench_beyond_available_memory_as_a_user_sees_it():
    from gelu_numba.tools import bench

    free = bench.available_memory()
    if free is None or free[0] >= bench.memory_needed([64 << 30], ["float32", "float64"]):
        pytest.skip("this system does not say how much memory is available, or has over 3 TiB of it")
    r = _cli("bench", "--size", "64G")
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith("gelu-numba bench: --size 64G needs about ") and " is available (" in r.stderr


def test_the_memory_estimate_covers_what_a_run_allocates():
    # NumPy reports its arrays to tracemalloc (PyTorch's and JAX's it does
    # not, so they are left out of both sides).
    import tracemalloc

    from gelu_numba.tools import bench

    peers = [p for p in bench.installed_peers() if p == "numpy+scipy"]
    for data, operations in (("tail", None), ("normal", ("gelu", "gelu_sigmoid"))):
        bench.run(sizes=(4096,), operations=operations, data=data, budget=0)  # compile and import first
        tracemalloc.start()
        try:
            bench.run(sizes=(1 << 20,), operations=operations, data=data, budget=0)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        need = bench.memory_needed([1 << 20], ("float32", "float64"), operations, data, peers=peers,
                                   libraries=False)
        assert peak <= need <= 1.5 * peak, (data, peak, need)


def _tree(root, files):
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return str(root)


MEMINFO = {"proc/meminfo": "MemTotal:       24683792 kB\nMemFree:        1000 kB\nMemAvailable:    8388608 kB\n"}


def test_available_memory_is_the_least_of_meminfo_and_the_cgroup_limits(tmp_path):
    from gelu_numba.tools import bench

    gib = 1 << 30
    # no cgroup files: MemAvailable
    assert bench.available_memory(_tree(tmp_path / "a", MEMINFO)) == (8 * gib, "MemAvailable in /proc/meminfo")
    # cgroup v2 without a limit ("max")
    v2 = {**MEMINFO, "proc/self/cgroup": "0::/user.slice/job\n", "sys/fs/cgroup/user.slice/job/memory.max": "max\n",
          "sys/fs/cgroup/user.slice/job/memory.current": str(5 * gib)}
    assert bench.available_memory(_tree(tmp_path / "b", v2))[0] == 8 * gib
    # a limit on an ancestor binds; its inactive page cache is not usage
    v2["sys/fs/cgroup/user.slice/memory.max"] = str(4 * gib)
    v2["sys/fs/cgroup/user.slice/memory.current"] = str(3 * gib)
    v2["sys/fs/cgroup/user.slice/memory.stat"] = f"anon {gib}\ninactive_file {gib}\nactive_file 5\n"
    free, where = bench.available_memory(_tree(tmp_path / "c", v2))
    assert free == 2 * gib and where == "the limit of memory cgroup /sys/fs/cgroup/user.slice less its usage"
    # cgroup v1, inside a container (its path is not in its own namespace)
    v1 = {**MEMINFO, "proc/self/cgroup": "4:memory:/docker/abc\n0::/\n",
          "sys/fs/cgroup/memory/memory.limit_in_bytes": str(3 * gib),
          "sys/fs/cgroup/memory/memory.usage_in_bytes": str(2 * gib)}
    assert bench.available_memory(_tree(tmp_path / "d", v1))[0] == gib
    # v1's "no limit" is a number near 2**63
    v1["sys/fs/cgroup/memory/memory.limit_in_bytes"] = "9223372036854771712"
    assert bench.available_memory(_tree(tmp_path / "e", v1))[0] == 8 * gib
    # no /proc/meminfo: unknown, so nothing is refused
    assert bench.available_memory(_tree(tmp_path / "f", {"proc/self/cgroup": "0::/\n"})) is None


# --------------------------------------------------------------------------
# bench: cells whose rounds disagree are flagged


def _timings(spread_of_parallel, parallel=1.9):
    from gelu_numba.tools.bench import Timing

    return [Timing("copy", "float32", 1 << 20, "np.copyto", 0.06, 0.07, 1.1),
            Timing("gelu", "float32", 1 << 20, "gelu_numba", 1.2, 1.25, 1.05),
            Timing("gelu", "float32", 1 << 20, "gelu_numba.parallel", parallel, parallel + 0.1, spread_of_parallel),
            Timing("gelu", "float32", 1 << 20, "numpy+scipy", 15.0, 15.2, 1.02)]


def test_a_cells_spread_is_its_slowest_tenth_of_rounds_over_its_best():
    from gelu_numba.tools import bench

    best, median, spread = bench._round_stats([2.0] * 8 + [6.0, 6.0], 2)
    assert (best, median, spread) == (1e9, 1e9, 3.0)


def test_cells_whose_rounds_disagree_are_flagged(capsys, monkeypatch):
    # The median over all cells (here 5 %) says nothing of the one cell
    # whose slowest rounds took 2.9 times its best.
    from gelu_numba.tools import bench

    rows = bench.table(_timings(2.9))
    gelu = rows[1]
    assert gelu["unsteady"] == ["gelu_numba.parallel"] and gelu["round_spread"]["gelu_numba.parallel"] == 2.9
    assert rows[0]["unsteady"] == []
    table = bench.format_table(rows).splitlines()
    assert table[3].split()[3:] == ["1.200", "1.900*", "15.000", "-"]
    assert "*" not in table[2]
    text = bench.legend(rows, threads=2)
    assert "the rounds of 1 figure, marked *, disagree (the slowest tenth took 2.9x the best)" in text
    assert "*" not in bench.legend(bench.table(_timings(1.1)), threads=2)

    monkeypatch.setattr(bench, "run", lambda **kw: _timings(2.9))
    status, out, _ = run(capsys, "bench", "--size", "1M", "--dtype", "float32", "--operation", "gelu", "--json")
    assert status == 0
    assert [r["unsteady"] for r in json.loads(out)["rows"]] == [[], ["gelu_numba.parallel"]]
    status, out, _ = run(capsys, "bench", "--size", "1M", "--dtype", "float32", "--operation", "gelu")
    assert "1.900*" in out and "marked *, disagree" in out


# --------------------------------------------------------------------------
# bench: the busy-machine warning counts other programs, while the run times


def _cpu_samples(monkeypatch, others_cores):
    """cpu_sample gives two readings 10 s apart, in which this process used
    one core and other programs `others_cores`."""
    from gelu_numba.tools import bench

    samples = iter([(100.0, 500.0, 20.0), (110.0, 500.0 + 10 * (1 + others_cores), 30.0)])
    monkeypatch.setattr(bench, "cpu_sample", lambda: next(samples), raising=False)


def test_no_busy_warning_for_load_from_before_the_run(tmp_path, capsys, monkeypatch):
    # After `pip install ... && gelu-numba` the load average still counts pip.
    from gelu_numba.tools import bench

    monkeypatch.setattr(os, "getloadavg", lambda: (4.0 * (os.cpu_count() or 1), 1.0, 0.5))
    monkeypatch.setattr(bench, "run", lambda **kw: _timings(1.1, parallel=0.7))
    _cpu_samples(monkeypatch, 0.0)
    status, out, _ = run(capsys, "bench", "--size", "1M", "--dtype", "float32", "--operation", "gelu")
    assert status == 0 and "ours par" in out and "WARNING" not in out

    _cpu_samples(monkeypatch, 0.0)
    monkeypatch.setattr(cli, "accuracy_table", lambda **kw: [])
    monkeypatch.setattr(cli, "throughput", lambda **kw: bench.table(_timings(1.1, parallel=0.7)))
    status, out, _ = run(capsys, "report", "--plots", tmp_path)
    assert status == 0 and "ours par" in out and "WARNING" not in out


def test_busy_warning_when_other_programs_take_the_cpu(capsys, monkeypatch):
    from gelu_numba.tools import bench

    cores = len(bench.usable_cores())
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(bench, "run", lambda **kw: _timings(1.1))
    _cpu_samples(monkeypatch, 0.75 * cores)
    status, out, _ = run(capsys, "bench", "--size", "1M", "--dtype", "float32", "--operation", "gelu", "--json")
    assert status == 0 and json.loads(out)["other_programs_cores"] == pytest.approx(0.75 * cores)
    _cpu_samples(monkeypatch, 0.75 * cores)
    status, out, _ = run(capsys, "bench", "--size", "1M", "--dtype", "float32", "--operation", "gelu")
    assert f"WARNING: other programs used {0.75 * cores:.2f} of the {cores} cores while this ran" in out


@pytest.mark.parametrize("others, warned", [(0.3, True), (0.25, True), (0.2, False), (0.0, False)])
def test_busy_warning_from_a_quarter_of_a_core(others, warned, capsys, monkeypatch):
    """A quarter of a core taken by other programs already moves the
    threaded figures (issue 28); the warning used to need half the cores."""
    from gelu_numba.tools import bench

    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(bench, "run", lambda **kw: _timings(1.1, parallel=0.7))
    _cpu_samples(monkeypatch, others)
    status, out, _ = run(capsys, "bench", "--size", "1M", "--dtype", "float32", "--operation", "gelu")
    assert status == 0 and ("WARNING: other programs used" in out) == warned, out


def test_warnings_when_threads_lost_to_serial_and_when_the_fallback_engaged(capsys, monkeypatch):
    from gelu_numba.tools import bench

    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    _cpu_samples(monkeypatch, 0.0)
    monkeypatch.setattr(bench, "run", lambda **kw: _timings(1.1, parallel=1.9))  # serial: 1.2
    status, out, _ = run(capsys, "bench", "--size", "1M", "--dtype", "float32", "--operation", "gelu")
    assert "WARNING: threaded calls came out slower than serial ones for gelu float32 1M" in out
    assert "fallback" not in out

    _cpu_samples(monkeypatch, 0.0)
    monkeypatch.setattr(bench, "run", lambda **kw: _timings(1.1, parallel=0.7))
    counts = iter([{"engaged": 3, "fallback": 10}, {"engaged": 5, "fallback": 250}])
    monkeypatch.setattr(bench, "fallback_sample", lambda: next(counts))
    status, out, _ = run(capsys, "bench", "--size", "1M", "--dtype", "float32", "--operation", "gelu")
    assert "the fallback to serial calls engaged 2 times and ran 240 calls serially" in out
    assert "slower than serial" not in out


def test_busy_seconds_from_proc_stat():
    from gelu_numba.tools import bench

    hz = os.sysconf("SC_CLK_TCK")
    stat = ("cpu  9 9 9 9 9 9 9 9 9 9\n"
            #     user nice system idle iowait irq softirq steal guest guest_nice
            f"cpu0 {hz} 0 {hz} {50 * hz} {7 * hz} 0 0 0 {hz} 0\n"
            f"cpu1 0 {hz} 0 {50 * hz} 0 {hz} {hz} {2 * hz} 0 0\n"
            "intr 5 5 5\n")
    assert bench._busy_seconds(stat, {0}) == 2.0  # idle and iowait are not busy; guest is in user already
    assert bench._busy_seconds(stat, {0, 1}) == 7.0  # steal is another machine's
    assert bench._busy_seconds(stat, {2}) is None


# --------------------------------------------------------------------------
# plot


def test_plot_writes_four_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    status, out, _ = run(capsys, "plot", "--plots", tmp_path)
    assert status == 0
    paths = [pathlib.Path(p) for p in out.splitlines()]
    assert all(p.is_absolute() for p in paths)
    assert [p.name for p in paths] == ["gelu_vs_relu.png", "derivatives.png", "approximation_error.png",
                                       "ulp_error.png"]
    for p in paths:
        assert p.parent == tmp_path and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = matplotlib.image.imread(p)
        assert img.shape[0] >= 400 and img.shape[1] >= 600  # readable at 100 %
        assert img[..., :3].std() > 0.05  # something drawn, not a blank canvas


def test_report_and_plot_name_the_figure_directory_alike():
    """One name for the same thing in both commands (--plots), --out an alias."""
    parser = cli.build_parser()
    for command in ("report", "plot"):
        for flag in ("--plots", "--out"):
            assert parser.parse_args([command, flag, "d"]).plots == "d", (command, flag)
        assert "--plots DIR" in parser._subparsers._group_actions[0].choices[command].format_help()


def test_plot_without_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "gelu_numba.tools.plots", raising=False)
    import gelu_numba.tools

    monkeypatch.delattr(gelu_numba.tools, "plots", raising=False)  # or `from . import plots` finds it
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    status, out, err = run(capsys, "plot", "--out", tmp_path)
    assert status == 2 and out == ""
    assert err == 'gelu-numba plot: plots need matplotlib: pip install ".[plot]" in a gelu_numba checkout, ' \
                  'or pip install matplotlib\n'
    assert cli._plots_or_reason(tmp_path) == ([], "not written: " + err.split(": ", 1)[1].strip())
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------
# bad usage: exit status 2, one line on stderr, nothing on stdout


BAD = [
    ["frobnicate"],
    ["--bogus"],
    ["accuracy", "--kernel", "nope"],
    ["accuracy", "--dtype", "float16"],
    ["accuracy", "--exhaustive", "--dtype", "float64"],
    ["accuracy", "--range", "0", "1"],
    ["accuracy", "--exhaustive", "--range", "1", "0"],
    ["accuracy", "--exhaustive", "--range", "nan", "1"],
    ["accuracy", "--exhaustive", "--range", "1"],
    ["bench", "--size", "0"],
    ["bench", "--size", "lots"],
    ["bench", "--threads", "0"],
    ["bench", "--operation", "relu"],
    ["bench", "--size", "1.3M"],
    ["plot", "--bogus"],
]


@pytest.mark.parametrize("argv", BAD, ids=" ".join)
def test_bad_usage(argv, capsys):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.strip() and "Traceback" not in err


def test_unwritable_figure_directory_is_bad_usage(tmp_path, capsys, monkeypatch):
    # Checked before anything else, matplotlib or not.
    monkeypatch.delitem(sys.modules, "gelu_numba.tools.plots", raising=False)
    monkeypatch.delattr(gelu_numba, "plots", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for argv in (["plot", "--out", blocker / "sub"], ["report", "--plots", blocker]):
        status, out, err = run(capsys, *argv)
        assert status == 2 and out == ""  # report fails before any work
        assert err.startswith("cannot write figures to ") and err.count("\n") == 1


def test_range_takes_negative_numbers_in_exponent_form(capsys):
    status, out, _ = run(capsys, "accuracy", "--exhaustive", "--range", "-1e-3", "-9.99e-4",
                         "--kernel", "gelu", "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["range"] == [-1e-3, -9.99e-4]


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "gelu_numba", *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_bad_usage_as_a_user_sees_it():
    r = _cli("accuracy", "--kernel", "nope")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "invalid choice: 'nope'" in r.stderr


def test_version_and_help():
    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"gelu_numba {gelu_numba.__version__}"
    r = _cli("--help")
    assert r.returncode == 0
    for sub in ("report", "accuracy", "bench", "plot"):
        assert sub in r.stdout
    assert "2 bad" in r.stdout.replace("\n", " ")
    for sub, expected in (("plot", "(default: gelu_numba_plots)"), ("report", "(default: gelu_numba_plots)"),
                          ("bench", "(default: normal)"), ("accuracy", "(default: cpu)")):
        r = _cli(sub, "--help")
        text = " ".join(r.stdout.split())
        assert r.returncode == 0 and expected in text, sub
        assert "(default: None)" not in text and "(default: False)" not in text
        if sub != "plot":
            assert "--json print one JSON document instead of tables" in text


def test_accuracy_help_counts_the_kernels():
    r = _cli("accuracy", "--help")
    text = " ".join(r.stdout.split())
    assert r.returncode == 0 and "--kernel" in text
    assert f"repeatable; default: all {len(cli.KERNELS) + len(cli.BACKWARD)}" in text and "six" not in text


def test_compile_refuses_an_unusable_numba_cache_dir(tmp_path, capsys, monkeypatch):
    from gelu_numba.core import build as _build

    built = []
    monkeypatch.setattr(_build, "ufunc", lambda name, target="cpu": built.append((name, target)))
    (tmp_path / "a_file").write_text("")
    bad = tmp_path / "a_file" / "cache"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(bad))
    status, out, err = run(capsys, "compile")
    assert status == 2 and out == "" and built == []  # before compiling anything
    assert err == f"gelu-numba compile: NUMBA_CACHE_DIR={bad} cannot hold Numba's cache: Not a directory\n"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "new" / "cache"))
    status, out, err = run(capsys, "compile")
    assert status == 0 and (tmp_path / "new" / "cache").is_dir()
    every = set(_build.NAMES) | set(_build.FUSED)  # the fused forms too, serial and parallel
    assert sorted(built) == sorted((name, target) for name in every for target in ("cpu", "parallel"))


def test_unusable_numba_cache_dir_as_a_user_sees_it(tmp_path):
    (tmp_path / "a_file").write_text("")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "a_file" / "cache")}
    r = subprocess.run([sys.executable, "-m", "gelu_numba", "compile"], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "NUMBA_CACHE_DIR=" in r.stderr  # no "compile: started"
    # A library never refuses: Numba caches elsewhere, or compiles in memory.
    r = subprocess.run([sys.executable, "-c", "import gelu_numba as gn; print(gn.gelu(1.0))"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0 and float(r.stdout) == pytest.approx(0.8413447460685429)


def test_console_script():
    script = pathlib.Path(sys.executable).with_name("gelu-numba")
    if not script.exists():
        pytest.skip("gelu-numba console script not installed in this environment (pip install .)")
    r = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == f"gelu_numba {gelu_numba.__version__}"


def test_report_prints_each_section_as_it_is_measured(tmp_path):
    # Redirected to a pipe, the report's first tables arrive before the
    # accuracy sweep is done, and stderr says what is running.
    code = ("import sys, time; from gelu_numba.tools import cli; "
            "t = cli.accuracy_table; cli.accuracy_table = lambda **kw: (time.sleep(30), t(kernels=('gelu',), **kw))[1]; "
            "cli.throughput = lambda **kw: []; "
            f"sys.exit(cli.main(['report', '--plots', {str(tmp_path)!r}]))")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=ROOT)
    try:
        first = p.stdout.readline()
        t_first = time.monotonic()
        out, err = p.communicate(timeout=300)
        waited = time.monotonic() - t_first
    finally:
        p.kill()
    assert first.startswith("gelu_numba ") and waited > 20  # printed before the sleeping accuracy step
    assert "accuracy: started" in err and "accuracy: done in" in err
    assert p.returncode == 0


def test_progress_lines_when_not_a_terminal():
    import io

    stream = io.StringIO()
    bar = cli.Progress("sweep", stream=stream)
    bar(0.0)
    bar(0.5)
    bar(1.0)
    assert stream.getvalue().splitlines()[0] == "sweep: started"
    assert stream.getvalue().splitlines()[1].startswith("sweep: done in ")
    assert len(stream.getvalue().splitlines()) == 2


def test_exhaustive_json_says_null_where_monotonicity_is_not_checked(capsys):
    status, out, _ = run(capsys, "accuracy", "--exhaustive", "--range", "1", "1.001",
                         "--kernel", "gelu_grad", "--kernel", "gelu", "--json")
    assert status == 0
    rows = {r["kernel"]: r for r in json.loads(out)["accuracy"]}
    assert rows["gelu_grad"]["monotonicity_checked"] is False and rows["gelu_grad"]["monotonic_violations"] is None
    assert rows["gelu"]["monotonicity_checked"] is True and rows["gelu"]["monotonic_violations"] == 0


def test_at_x_digits_follow_the_format(capsys):
    # 9 significant digits name a float32, 17 a float64, in every table.
    status, out, _ = run(capsys, "accuracy", "--kernel", "gelu")
    at = {r[1]: r[3] for r in (ln.split() for ln in out.splitlines()[3:5])}
    assert at["float32"] == f"{float(at['float32']):.9g}"
    assert at["float64"] == f"{float(at['float64']):.17g}"


def test_progress_bar(capsys):
    bar = cli.Progress("sweep", enabled=True, width=10)
    bar(0.5)
    bar(1.0)
    err = capsys.readouterr().err
    assert "sweep [#####.....]  50.0%" in err
    assert "sweep [##########] 100.0%" in err and err.endswith("\n")
    cli.Progress("quiet", enabled=False)(0.5)
    assert capsys.readouterr().err == ""
