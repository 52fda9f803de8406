"""The asv history page: the suite against the committed results, the
finished page's choices, and the preview serving on this machine only.

The tests that need asv (``pip install .[bench]``) skip without it; none
builds an environment or runs a benchmark.  Each server is a subprocess with
a deadline, killed (its whole process group) whatever happens.
"""

import importlib.util
import itertools
import json
import os
import pathlib
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SERVING = re.compile(r"http://([0-9.]+):(\d+)/")


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def offline():
    return _load(ROOT / "tools" / "asv_offline.py", "asv_offline_under_test")


@pytest.fixture(scope="module")
def suite_json():
    return json.loads((RESULTS / "benchmarks.json").read_text())


def _result_files():
    return sorted(p for p in RESULTS.glob("*/*.json") if p.name != "machine.json")


def _asv_or_skip():
    asv = shutil.which("asv") or shutil.which("asv", path=str(pathlib.Path(sys.executable).parent))
    if asv is None:
        pytest.skip("asv is not installed (pip install .[bench])")
    return asv


# --- serving -----------------------------------------------------------------


def _listening(port):
    """(table, hex address) of every TCP socket listening on port, from
    /proc/net/tcp and tcp6 (skips where there is no /proc/net/tcp)."""
    if not pathlib.Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read the listening address from (not Linux)")
    found = []
    for table in ("tcp", "tcp6"):
        path = pathlib.Path("/proc/net", table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append((table, address))
    return found


def _loopback(table, address):
    if table == "tcp":  # IPv4, little-endian: 127.x.y.z ends in 7F
        return address.upper().endswith("7F")
    return address.upper() in ("00000000000000000000000001000000",  # ::1
                                "0000000000000000FFFF00000100007F")  # ::ffff:127.0.0.1


class _Server:
    """A command that ends up serving HTTP: started in its own process group,
    its output read by a thread; `address()` waits for the line that names
    the address, `stop()` kills the group."""

    def __init__(self, command, cwd, env=None):
        self.lines = queue.Queue()
        self.output = []
        self.proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def address(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.output.append(line)
            m = SERVING.search(line)
            if m and "Serving" in line:
                return m.group(1), int(m.group(2))
        pytest.fail("no serving address within %ss; output:\n%s" % (timeout, "".join(self.output)))

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.proc.stdout.close()


def _check_loopback_only(host, port):
    assert host == "127.0.0.1"
    sockets = _listening(port)
    assert sockets, f"nothing listens on port {port}"
    beyond = [s for s in sockets if not _loopback(*s)]
    assert not beyond, f"port {port} listens beyond loopback: {beyond} (0...0 is every interface)"


def _get(host, port, path):
    with urllib.request.urlopen(f"http://{host}:{port}/{path}", timeout=10) as r:
        return r.read()


def test_preview_server_listens_on_loopback_only(tmp_path):
    """tools/asv_offline.py --serve (what asv_history.sh serves with) binds
    127.0.0.1, not every interface as `asv preview` does."""
    (tmp_path / "index.html").write_text("<p>gelu_numba</p>")
    server = _Server([sys.executable, str(ROOT / "tools" / "asv_offline.py"), "--serve",
                      str(tmp_path), "--port", "0"], cwd=ROOT)
    try:
        host, port = server.address(timeout=60)
        _check_loopback_only(host, port)
        assert b"gelu_numba" in _get(host, port, "index.html")
    finally:
        server.stop()


def test_publish_only_serves_the_history_on_loopback_only(tmp_path):
    """README's command, tools/asv_history.sh --publish-only, in a clone of
    this repository with this working tree's scripts and results: it
    publishes, finishes and serves the page on 127.0.0.1 only, and the page
    opens each graph on one machine."""
    asv = _asv_or_skip()
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout (asv publish reads the commits)")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", str(ROOT), str(clone)],
                   check=True, timeout=120)
    if subprocess.run(["git", "-C", str(clone), "rev-parse", "--verify", "-q", "main"],
                      capture_output=True).returncode != 0:
        if subprocess.run(["git", "-C", str(clone), "branch", "main", "origin/main"],
                          capture_output=True).returncode != 0:
            pytest.skip("no branch main (asv.conf.json's branches)")
    for name in ("asv.conf.json", "pyproject.toml"):
        shutil.copy2(ROOT / name, clone / name)
    shutil.copytree(ROOT / "tools", clone / "tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "benchmarks", clone / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__", "figures"))
    env = dict(os.environ, ASV=asv, PYTHON=sys.executable)
    server = _Server(["bash", "tools/asv_history.sh", "--publish-only", "--port", "0"],
                     cwd=clone, env=env)
    try:
        host, port = server.address(timeout=300)
        _check_loopback_only(host, port)
        index = json.loads(_get(host, port, "index.json"))
        assert b"static/jquery" in _get(host, port, "index.html")
        assert b"the benchmark history" in _get(host, port, "commits.html")
    finally:
        server.stop()

    page = index["gelu_numba"]
    machines = index["params"]["machine"]
    assert page["default_machine"] in machines
    # the machine that measured the newest commit
    newest = {}
    for path in _result_files():
        result = json.loads(path.read_text())
        rev = int(subprocess.run(["git", "-C", str(ROOT), "rev-list", "--count", result["commit_hash"]],
                                 capture_output=True, text=True, check=True).stdout)
        newest[result["params"]["machine"]] = max(newest.get(result["params"]["machine"], 0), rev)
    assert newest[page["default_machine"]] == max(newest.values())
    # no machine description without a value ("[none]" buttons)
    assert all(None not in index["params"].get(key, []) for key in page["machine_keys"])
    # each view on the default machine: every value drawn has results (no
    # legend entry without a line), and the kernel graph draws both
    # precisions, each curve measured
    site = clone / ".asv" / "html"
    offline = _load(clone / "tools" / "asv_offline.py", "asv_offline_clone")
    for benchmark, view in page["views"].items():
        if benchmark in page["unmeasured"]:
            continue
        measured = offline._series(site, index, benchmark, page["default_machine"])
        drawn = list(itertools.product(*view.values()))
        for k, values in enumerate(view.values()):
            for value in values:
                assert any(c[k] == value and c in measured for c in drawn), (benchmark, value)
    kernels = page["views"]["bench_cpu.TimeKernels.time_kernel"]
    assert kernels["dtype"] == ["'float32'", "'float64'"]
    assert len(kernels["size"]) == len(kernels["target"]) == len(kernels["out"]) == 1
    measured = offline._series(site, index, "bench_cpu.TimeKernels.time_kernel", page["default_machine"])
    assert all(c in measured for c in itertools.product(*kernels.values()))


# --- the suite and the committed results -------------------------------------


def test_suite_has_every_kernel(suite_json):
    """The suite's kernels are gelu_numba's (second derivatives included), and
    the committed benchmarks.json (what --publish-only publishes) lists them."""
    names = _load(ROOT / "gelu_numba" / "core" / "names.py", "gelu_numba_names")
    common = _load(ROOT / "benchmarks" / "common.py", "benchmarks_common")
    assert set(common.KERNELS) == set(names.NAMES)
    assert set(common.UNARY) == set(names.UNARY)
    params = dict(zip(suite_json["bench_cpu.TimeKernels.time_kernel"]["param_names"],
                      suite_json["bench_cpu.TimeKernels.time_kernel"]["params"]))
    assert set(params["kernel"]) == {repr(k) for k in names.NAMES}
    params = dict(zip(suite_json["bench_accuracy.TrackAccuracy.track_max_ulp"]["param_names"],
                      suite_json["bench_accuracy.TrackAccuracy.track_max_ulp"]["params"]))
    assert set(params["kernel"]) == {repr(k) for k in names.UNARY}


def test_views_name_what_the_suite_has(offline, suite_json):
    for benchmark, view in offline.VIEWS.items():
        assert benchmark in suite_json, benchmark
        params = dict(zip(suite_json[benchmark]["param_names"], suite_json[benchmark]["params"]))
        for name, values in view.items():
            assert name in params, (benchmark, name)
            assert {repr(v) for v in values} <= set(params[name]), (benchmark, name)
    names = _load(ROOT / "gelu_numba" / "core" / "names.py", "gelu_numba_names")
    assert offline.VIEWS["bench_accuracy.TrackAccuracy.track_max_ulp"]["kernel"] == list(names.UNARY)


def test_machine_descriptions_match(suite_json):
    """Every machine.json has the same keys, the RAM in bytes, and each result
    file carries its machine's description (asv shows a missing key as a
    "[none]" button and two spellings of one value as two)."""
    machines = {p.parent.name: json.loads(p.read_text()) for p in RESULTS.glob("*/machine.json")}
    assert machines
    keys = {frozenset(m) for m in machines.values()}
    assert len(keys) == 1, keys
    for name, info in machines.items():
        assert info["machine"] == name
        assert info["ram"].isdigit(), (name, info["ram"])
        assert info["num_cpu"].isdigit(), (name, info["num_cpu"])
    for path in _result_files():
        params = json.loads(path.read_text())["params"]
        info = machines[path.parent.name]
        assert {k: params.get(k) for k in info if k != "version"} == \
               {k: v for k, v in info.items() if k != "version"}, path


def test_committed_results_match_the_suite(suite_json, tmp_path):
    """asv hides a result whose benchmark version (a hash of its source
    unless pinned) differs from the suite's: every committed result's version
    is the one the suite in this tree has, and the one benchmarks.json
    records."""
    pytest.importorskip("asv_runner", reason="asv is not installed (pip install .[bench])")
    script = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from asv_runner.discovery import disc_benchmarks\n"
        "print(json.dumps({b.name: b.version for b in disc_benchmarks(sys.argv[2])}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(ROOT), "benchmarks"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    suite = json.loads(out.stdout.strip().splitlines()[-1])
    for name, version in suite.items():
        assert suite_json[name]["version"] == version, name
    for path in _result_files():
        result = json.loads(path.read_text())
        columns = result["result_columns"]
        for name, row in result["results"].items():
            version = dict(zip(columns, row)).get("version")
            assert name in suite, f"{path.name}: {name} is no longer in the suite"
            assert version == suite[name], f"{path.parent.name}/{path.name}: {name} would be hidden"
