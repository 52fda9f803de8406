"""The command line: each subcommand's output, --json, exit statuses and bad usage.

Most tests call ``gelu_numba.__main__.main`` in process (the same function
the console script and ``python -m gelu_numba`` call); a few run it as a
subprocess to see what a user sees: no traceback, one line, the exit status.
"""

import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

import gelu_numba
from gelu_numba import __main__ as cli
from gelu_numba import accuracy as acc_module

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
    assert lines[2].startswith("CUDA: ")
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
    from gelu_numba import bench

    monkeypatch.setattr(bench, "available_peers", lambda: [])
    monkeypatch.setattr(cli, "accuracy_table", lambda **kw: [])
    monkeypatch.setattr(cli, "throughput", lambda **kw: [])
    status, out, _ = run(capsys, "report", "--plots", tmp_path)
    assert status == 0
    assert ('Not compared, not installed: scipy (pip install ".[report]" in a gelu_numba checkout), '
            'torch (pip install ".[torch]" in a gelu_numba checkout; CPU-only: see README), jax') in out
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


def test_accuracy_same_precision_is_float32_only(capsys):
    status, out, _ = run(capsys, "accuracy", "--target", "same-precision", "--kernel", "gelu", "--json")
    assert status == 0
    rows = json.loads(out)["accuracy"]
    assert [(r["kernel"], r["dtype"]) for r in rows] == [("gelu", "float32")]
    assert rows[0]["max_ulp"] <= 2.0


def test_accuracy_native_measures_the_float32_native_kernels(capsys):
    """--target native runs the experimental float32-in-float32 kernels:
    float32 only, and their error is not the CPU kernels' 0.5 ulp (the
    tanh form measured 1.44 ulp on this sample)."""
    status, out, _ = run(capsys, "accuracy", "--target", "native", "--kernel", "gelu_tanh", "--json")
    rows = json.loads(out)["accuracy"]
    assert [(r["kernel"], r["dtype"]) for r in rows] == [("gelu_tanh", "float32")]
    assert 0.51 < rows[0]["max_ulp"] <= 2.0
    assert status == 0


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
    assert set(rows["copy"]["ns_per_element"]) == {"np.copyto"}
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
    assert lines[3].split()[:3] == ["copy", "float64", "2048"]
    assert lines[4].split()[:3] == ["gelu_tanh", "float64", "2048"]
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
    from gelu_numba import bench

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
# plot


def test_plot_writes_four_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    status, out, _ = run(capsys, "plot", "--out", tmp_path)
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


def test_plot_without_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "gelu_numba.plots", raising=False)
    monkeypatch.delattr(gelu_numba, "plots", raising=False)  # or `from . import plots` finds it
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
    monkeypatch.delitem(sys.modules, "gelu_numba.plots", raising=False)
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


def test_console_script():
    script = pathlib.Path(sys.executable).with_name("gelu-numba")
    if not script.exists():
        pytest.skip("gelu-numba console script not installed in this environment (pip install .)")
    r = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == f"gelu_numba {gelu_numba.__version__}"


def test_report_prints_each_section_as_it_is_measured(tmp_path):
    # Redirected to a pipe, the report's first tables arrive before the
    # accuracy sweep is done, and stderr says what is running.
    code = ("import sys, time; from gelu_numba import __main__ as cli; "
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
