"""Make asv's published site work offline, finish it for this project, and
serve it on this machine only.

    python tools/asv_offline.py [.asv/html]
    python tools/asv_offline.py --serve [.asv/html] [--port 8080]

Run after `asv publish` (tools/asv_history.sh does).  It

- copies tools/asv_static/ into the site and rewrites the CDN addresses in
  its HTML files to those copies (the page then needs no network);
- chooses what the page opens on, and writes it into the site's index.json
  (key "gelu_numba"): the default machine (the one that measured the newest
  commit) and, for each benchmark, the view its graph opens on (VIEWS, else
  asv's own choice; values without results on that machine left out);
- redraws the grid's thumbnails from those views on that machine (asv's
  thumbnails mix every machine and every parameter into one geometric mean);
- patches asv's page (see PATCHES): every graph opens on one machine and on
  its view, with a legend that names only what differs between its curves,
  in columns, and a line above it that names the rest; the side panel has no
  selectors for what a machine is (cpu, ram, os: the machine button's
  tooltip lists them); a thumbnail without results says so; the x axis of a
  graph over the history is labelled with the short hashes of the measured
  commits; every y axis starts at zero unless "zoom y axis" is on;
- writes commits.html, the project's page (asv.conf.json's project_url):
  what the project is, the machines, and one row per commit in the history
  (hash, date, subject, tags, from `git log`), which show_commit_url points
  at: the project has no public repository to link commits to.

--serve serves the site over HTTP on 127.0.0.1 only (asv preview listens on
every interface), on --port (default 8080, else the next free of the four
after it; 0: any free port), and prints the address.
"""

import argparse
import errno
import functools
import html
import http.server
import itertools
import json
import math
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
STATIC = ROOT / "tools" / "asv_static"

# CDN file name -> local file name
LOCAL = {
    "jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "jquery.flot.min.js": "jquery.flot.js",
    "jquery.flot.time.min.js": "jquery.flot.time.js",
    "jquery.flot.selection.min.js": "jquery.flot.selection.js",
    "jquery.flot.categories.min.js": "jquery.flot.categories.js",
    "jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupidtable.min.js",
    "md5.min.js": "md5.min.js",
    "bootstrap.min.js": "bootstrap.min.js",
    "bootstrap.min.css": "bootstrap.min.css",
}
CDN = re.compile(r"""(src|href)="(https://(?:code\.jquery\.com|cdnjs\.cloudflare\.com|cdn\.jsdelivr\.net)/[^"]+)\"""")

LOCAL_TAG = re.compile(r"""<(?:script|link)[^>]*(?:src|href)="static/[^"]+"[^>]*>""")
SRI = re.compile(r'\s(?:integrity|crossorigin|referrerpolicy)="[^"]*"')

# The view each graph opens on: for a benchmark, parameter -> the values
# drawn, as Python values (a parameter not named here, or a benchmark not
# named here, gets asv's choice: its first values, up to MAX_CURVES curves).
# On the default machine, a value none of whose curves has a result there is
# left out (so a view never opens on empty curves), unless that leaves none.
# The side panel still offers every value.
MAX_CURVES = 8
VIEWS = {
    # The headline kernels in both precisions at 10^7 elements, parallel,
    # with out= (what tools/asv_history_slice.txt measures): a change of one
    # precision (the float64 redesign at ae9f221d; the next one will be
    # float32) shows against the other, unchanged one.  Every kernel is a
    # button of the side panel.
    "bench_cpu.TimeKernels.time_kernel": {
        "kernel": ["gelu", "gelu_tanh", "gelu_backward"],
        "dtype": ["float32", "float64"],
        "size": [10_000_000],
        "target": ["parallel"],
        "out": [True],
    },
    # float64, every unary kernel (gelu_numba.core.names.UNARY): float32 is 0.5
    # ulp throughout, a flat line.
    "bench_accuracy.TrackAccuracy.track_max_ulp": {
        "kernel": ["gelu", "gelu_tanh", "gelu_sigmoid",
                   "gelu_grad", "gelu_tanh_grad", "gelu_sigmoid_grad",
                   "gelu_grad2", "gelu_tanh_grad2", "gelu_sigmoid_grad2"],
        "dtype": ["float64"],
    },
    # 10^7 elements: smaller sizes drawn beside it lie flat on the zero line.
    "bench_cpu.TimeCopy.time_copyto": {"size": [10_000_000]},
    "bench_peers.TimeTorch.time_torch": {"size": [10_000_000]},
    "bench_peers.TimeNumpyScipy.time_numpy_scipy": {"size": [10_000_000]},
    "bench_cuda.TimeCUDA.time_kernel": {"dtype": ["float32"], "size": [1 << 26]},
    "bench_cuda.TrackCUDABandwidth.track_gbps": {"size": [1 << 26]},
}

NO_RESULTS = "No results: none of the published machines ran it."

# Changes to asv's (0.6) page scripts, each found by a piece of its code and
# applied once (the mark says it is done); where asv's code differs (another
# version) that file is left as asv wrote it, with a warning.  In the code
# that replaces the piece, ANCHOR stands for the piece itself and MARK for
# the mark.  What they read from index.json's "gelu_numba" (finish_index)
# they do without when it is absent.
#
# Commit labels: asv draws the "commits" x axis with an empty tick formatter,
# so a graph over the history names no commit (only the hover tooltip does).
# This gives that axis a tick per measured commit in view, labelled with its
# short hash, thinned to about one per 80 pixels (the newest always kept);
# zooming re-labels.  The date axis ("date scale") and graphs over a
# parameter are left as asv draws them.
COMMIT_TICKS_ANCHOR = 'options.xaxis.tickFormatter = function (v, axis) { return ""; };'
COMMIT_TICKS = """ANCHOR
                MARK
                options.xaxis.ticks = function (axis) {
                    var revs = [];
                    $.each(graphs, function (i, graph) {
                        $.each(graph.data, function (j, point) {
                            if (point[1] !== null && point[0] >= axis.min &&
                                    point[0] <= axis.max && revs.indexOf(point[0]) === -1) {
                                revs.push(point[0]);
                            }
                        });
                    });
                    revs.sort(function (a, b) { return a - b; });
                    var room = Math.max(1, Math.floor(($('#main-graph').width() || 800) / 80));
                    var step = Math.ceil(revs.length / room);
                    var ticks = [];
                    for (var i = revs.length - 1; i >= 0; i -= step) {
                        ticks.push([revs[i], '' + $.asv.get_commit_hash(revs[i])]);
                    }
                    return ticks;
                };"""

# A y axis from zero: asv starts it at 0 for seconds and bytes only (with
# "zoom y axis" to fit the data instead); any other unit (ulp, ratio, GB/s)
# got an axis from the smallest value to the largest, so a near-flat curve
# filled the graph and its ticks, printed to 3 digits, all read alike.  This
# treats every unit as asv treats seconds, "zoom y axis" included.  The top
# 23% stays free for the legend.
ZERO_BASED_ANCHOR = """                multiplier = 1.0;
"""
ZERO_BASED = """ANCHOR                MARK
                if (!zoom_y_axis && min >= 0) {
                    options.yaxis.min = 0.0;
                    options.yaxis.max = max * 1.3;
                }
"""

# One machine: asv opens a graph on every machine at once, so two machines'
# histories are drawn over each other as one (and their curves double the
# legend).  This opens it on the default machine alone; the machine panel
# adds others.  The choice then stays in the page's address (asv leaves it
# out when every machine is selected, which would bring back the default).
ONE_MACHINE_ANCHOR = """            $.each(index.params, function(param, values) {
                state[param] = values;
                if (values.length > 1 && param !== 'machine') {
                    if (param == 'branch') {
                        state[param] = [values[0]];
                    }
                }
            });
"""
ONE_MACHINE = """ANCHOR            MARK
            if ((index.gelu_numba || {}).default_machine &&
                    $.inArray(index.gelu_numba.default_machine, index.params.machine) != -1) {
                state.machine = [index.gelu_numba.default_machine];
            }
"""
MACHINE_IN_ADDRESS_ANCHOR = """                if (state[param].length != values.length || param == 'branch') {
"""
MACHINE_IN_ADDRESS = """                if (state[param].length != values.length || param == 'branch' || param == 'machine') {  MARK
"""

# The view: asv opens a parameterised graph on the first values of each
# parameter, up to 8 curves, so the ninth kernel was never drawn and float64
# (the second dtype) never at all.  This opens it on the benchmark's view
# (VIEWS); a value named in the page's address wins.
VIEW_ANCHOR = """        /* Default plot: up to 8 lines */
"""
VIEW = """ANCHOR        MARK
        var gn_view = ((index.gelu_numba || {}).views || {})[current_benchmark] || {};
        state_selection = $.extend({}, state_selection);
        $.each(gn_view, function (name, values) {
            if (state_selection['p-' + name] === undefined) {
                state_selection['p-' + name] = values;
            }
        });
"""

# The legend: asv labels each curve with every parameter that has more than
# one value in the benchmark, selected or not ("dtype-float32; kernel-gelu;
# out-True; size-10000000; target-parallel"), one row per curve, over the top
# of the plot.  This names only the parameters whose selection differs
# between the curves, in at most 4 rows (a column per value of the parameter
# that varies fastest, where that fits), and a line above the graph names
# the rest: the machine and the parameters with one value selected.
LEGEND_LABEL_ANCHOR = """                                    different[param_names[axis-1]] = true;
"""
LEGEND_LABEL = """                                    if (param_selection[axis].length > 1) { different[param_names[axis-1]] = true; }  MARK
"""
LEGEND_COLUMNS_ANCHOR = """                position: "nw",
"""
LEGEND_COLUMNS = """ANCHOR                MARK
                noColumns: (function () {
                    var n = graphs.length, columns = Math.ceil(n / 4);
                    for (var k = 1; k < benchmark_param_selection.length; ++k) {
                        var m = benchmark_param_selection[k].length;
                        if (k != x_coordinate_axis && m > 1) {
                            if (m <= 4 && n % m == 0 && n / m <= 4) {
                                columns = m;
                            }
                            break;
                        }
                    }
                    return Math.max(1, columns);
                })(),
"""
LEGEND_SPACING_ANCHOR = """                    return $("<span>").text(label).html();
"""
LEGEND_SPACING = """                    return '<span style="padding-right: 1.2em">' + $("<span>").text(label).html() + '</span>';  MARK
"""
CAPTION_ANCHOR = """        setup_benchmark_params(state_selection);
        replace_graphs();
"""
CAPTION = """        setup_benchmark_params(state_selection);
        MARK
        (function () {
            var bm = $.asv.main_json.benchmarks[bm_name];
            $('#gelu-numba-no-results').remove();
            var caption = $('#gelu-numba-caption');
            if (!caption.length) {
                caption = $('<div id="gelu-numba-caption"/>').css({
                    position: 'absolute', top: '6px', left: '60px', right: '0',
                    color: '#555', 'font-size': '14px'});
                $('#graph').append(caption);
            }
            if (!bm) {
                caption.text('');
                return;
            }
            var parts = [];
            if (state.machine && state.machine.length == 1) {
                parts.push('machine ' + state.machine[0]);
            }
            $.each(bm.params, function (k, values) {
                var picked = benchmark_param_selection[k + 1] || [];
                if (k + 1 != x_coordinate_axis && values.length > 1 && picked.length == 1) {
                    parts.push(bm.param_names[k] + ' ' +
                               $.asv.convert_benchmark_param_value(values[picked[0]]));
                }
            });
            caption.text(parts.length ? 'Drawn: ' + parts.join(', ') +
                         ' (the side panel selects others)' : '');
        })();
        replace_graphs();
"""

# The machine's description (cpu, ram, os, arch, num_cpu) is a parameter of
# every result, so asv's side panel had a selector for each: two buttons
# each (one per machine) that select nothing the machine buttons do not, and
# "[none]" where a machine.json lacked a key.  The machine button's tooltip
# lists them; this drops their selectors (graph page and list page).
NO_MACHINE_PANELS_ANCHOR = """            if (values.length > 1 && param != 'machine') {
"""
NO_MACHINE_PANELS = """            if (values.length > 1 && param != 'machine' &&
                    $.inArray(param, ($.asv.main_json.gelu_numba || {}).machine_keys || []) == -1) {  MARK
"""

# The list page opens on the first machine by name; this opens it on the
# default machine, as the graphs.
LIST_MACHINE_ANCHOR = """        $.each(index.params, function(param, values) {
            state[param] = values[0];
        });
"""
LIST_MACHINE = """ANCHOR        MARK
        if ((index.gelu_numba || {}).default_machine &&
                $.inArray(index.gelu_numba.default_machine, index.params.machine) != -1) {
            state.machine = index.gelu_numba.default_machine;
        }
"""

# The grid: a line on what its thumbnails show, and a thumbnail without
# results (the CUDA benchmarks on machines without a GPU) says so instead of
# staying blank.
GRID_NOTE_ANCHOR = """        if (summary_loaded) {
            return;
        }
"""
GRID_NOTE = """ANCHOR        MARK
        var gn_note = ($.asv.main_json.gelu_numba || {}).grid_note;
        if (gn_note) {
            summary_display.append($('<p/>').css({margin: '0.5em 1em 0', color: '#555'}).text(gn_note));
        }
"""
EMPTY_THUMBNAIL_ANCHOR = """            }).fail(function() {
                // TODO: Handle failure
            });
"""
EMPTY_THUMBNAIL = """            }).fail(function() {
                MARK
                plot_div.append($('<div/>').css({
                    height: '100%', border: '1px dashed #bbb', color: '#666',
                    'font-size': '12px', 'padding': '28px 8px 0', 'text-align': 'center',
                    'white-space': 'normal'
                }).text(($.asv.main_json.gelu_numba || {}).no_results || 'No results.'));
            });
"""

# A benchmark no machine ran (the CUDA ones, on machines without a GPU):
# asv's graph page answers "No data for this combination of filters", as if
# another selection would show some.  This says that there are none, and why
# where the benchmark's name (pretty_name) says.
UNMEASURED_ANCHOR = """    function no_data(ajax, status, error) {
"""
UNMEASURED = """ANCHOR        MARK
        var gn = $.asv.main_json.gelu_numba || {};
        if ($.inArray(current_benchmark, gn.unmeasured || []) != -1) {
            var bm = $.asv.main_json.benchmarks[current_benchmark] || {};
            $('#gelu-numba-no-results').remove();
            $('#main-graph').parent().append($('<div id="gelu-numba-no-results"/>').css({
                position: 'absolute', top: '40%', left: '0', right: '0',
                'text-align': 'center', 'font-size': '18px', color: '#555'
            }).text(gn.no_results + (bm.pretty_name ? ' ' + bm.pretty_name : '')));
            return;
        }
"""

PATCHES = {
    # file: {name: (a piece of asv's code, what replaces it)}
    "graphdisplay.js": {
        "commit labels on the x axis": (COMMIT_TICKS_ANCHOR, COMMIT_TICKS),
        "y axis from zero for every unit": (ZERO_BASED_ANCHOR, ZERO_BASED),
        "one machine by default": (ONE_MACHINE_ANCHOR, ONE_MACHINE),
        "the machine choice kept in the address": (MACHINE_IN_ADDRESS_ANCHOR, MACHINE_IN_ADDRESS),
        "each graph opens on its view": (VIEW_ANCHOR, VIEW),
        "legend names what differs": (LEGEND_LABEL_ANCHOR, LEGEND_LABEL),
        "legend in columns": (LEGEND_COLUMNS_ANCHOR, LEGEND_COLUMNS),
        "legend labels spaced": (LEGEND_SPACING_ANCHOR, LEGEND_SPACING),
        "a line names what is drawn": (CAPTION_ANCHOR, CAPTION),
        "no selectors for the machine's description": (NO_MACHINE_PANELS_ANCHOR, NO_MACHINE_PANELS),
        "a benchmark without results says so": (UNMEASURED_ANCHOR, UNMEASURED),
    },
    "summarylist.js": {
        "list opens on the default machine": (LIST_MACHINE_ANCHOR, LIST_MACHINE),
        "no selectors for the machine's description": (NO_MACHINE_PANELS_ANCHOR, NO_MACHINE_PANELS),
    },
    "summarygrid.js": {
        "a note on the thumbnails": (GRID_NOTE_ANCHOR, GRID_NOTE),
        "an empty thumbnail says why": (EMPTY_THUMBNAIL_ANCHOR, EMPTY_THUMBNAIL),
    },
}


def localise(site):
    site = pathlib.Path(site)
    target = site / "static"
    target.mkdir(exist_ok=True)
    for f in STATIC.iterdir():
        if f.suffix in (".js", ".css"):
            shutil.copy2(f, target / f.name)
    missing = set()
    for page in site.glob("*.html"):
        text = page.read_text()

        def swap(m):
            name = m.group(2).rsplit("/", 1)[-1]
            if name not in LOCAL:
                missing.add(m.group(2))
                return m.group(0)
            return f'{m.group(1)}="static/{LOCAL[name]}"'

        text = CDN.sub(swap, text)
        # The subresource-integrity hashes name the CDN builds; a local copy
        # (not byte-identical: some are unminified) would be refused.
        text = LOCAL_TAG.sub(lambda m: SRI.sub("", m.group(0)), text)
        page.write_text(text)
    return missing


def patch_scripts(site):
    """Apply PATCHES to the site's scripts; the names ("file: patch") of
    those that no longer apply (asv's code has changed)."""
    failed = []
    for filename, patches in PATCHES.items():
        js = pathlib.Path(site) / filename
        text = js.read_text()
        for name, (anchor, code) in patches.items():
            mark = f"/* gelu_numba (tools/asv_offline.py): {name} */"
            if mark in text:
                continue
            if text.count(anchor) != 1:
                failed.append(f"{filename}: {name}")
                continue
            text = text.replace(anchor, code.replace("ANCHOR", anchor).replace("MARK", mark))
        js.write_text(text)
    return failed


# --- what the page opens on --------------------------------------------------


def _sanitize(name):
    """asv.util.sanitize_filename (www/asv.js: sanitize_filename)."""
    name = re.sub('[<>:"/\\\\^|?*\x00-\x1f]', "_", name)
    reserved = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
    return name + "_" if name.upper() in reserved else name


def _graph_path(site, benchmark, params):
    """The graph file asv wrote for one benchmark and one set of the
    site-wide parameters (www/asv.js: graph_to_path)."""
    parts = []
    for key, value in params.items():
        part = f"{key}-null" if value is None else f"{key}-{value}" if value else key
        parts.append(_sanitize(str(part)))
    return pathlib.Path(site, "graphs", *sorted(parts), _sanitize(benchmark) + ".json")


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _series(site, index, benchmark, machine):
    """{combination of the benchmark's parameters (tuple of value reprs, ()
    for none): {revision: value}} of one machine, its measured points only."""
    params = index["benchmarks"][benchmark].get("params") or []
    combos = list(itertools.product(*params))
    out = {}
    for graph_params in index.get("graph_param_list", []):
        if graph_params.get("machine") != machine:
            continue
        path = _graph_path(site, benchmark, graph_params)
        if not path.is_file():
            continue
        for rev, value in json.loads(path.read_text()):
            values = value if params else [value]
            if not isinstance(values, list):
                continue
            for combo, v in zip(combos, values):
                if _number(v):
                    # several environments of one machine: the later wins
                    out.setdefault(combo, {})[int(rev)] = v
    return out


def _default_machine(site, index):
    """The machine whose results include the newest commit (the history's
    head), ties broken by the number of measurements, then by name."""
    best = None
    for machine in index["params"].get("machine", []):
        newest, count = -1, 0
        for benchmark in index["benchmarks"]:
            for points in _series(site, index, benchmark, machine).values():
                newest = max(newest, max(points))
                count += len(points)
        key = (newest, count, machine)
        if newest >= 0 and (best is None or key > best):
            best = key
    return best[2] if best else None


def _resolve_view(benchmark, meta, measured, warn):
    """{parameter: [value reprs]} the graph opens on: VIEWS, else asv's
    choice, less the values without results (measured: the combinations
    measured on the default machine)."""
    params = meta.get("params") or []
    names = meta.get("param_names") or []
    wanted = VIEWS.get(benchmark, {})
    for name in set(wanted) - set(names):
        warn(f"VIEWS[{benchmark!r}]: no parameter {name!r}")
    selection, count = [], 1
    for name, values in zip(names, params):
        picked = []
        if name in wanted:
            want = [repr(v) for v in wanted[name]]
            for w in want:
                if w not in values:
                    warn(f"VIEWS[{benchmark!r}][{name!r}]: no value {w}")
            picked = [v for v in values if v in want]
        if not picked:  # asv's choice
            for j, value in enumerate(values):
                if (j + 1) * count > MAX_CURVES:
                    break
                picked.append(value)
        count *= max(1, len(picked))
        selection.append(picked)
    if measured:
        drawn = [c for c in itertools.product(*selection) if c in measured]
        selection = [[v for v in picked if any(c[k] == v for c in drawn)] or picked
                     for k, picked in enumerate(selection)]
    return dict(zip(names, selection))


def _geometric_mean(values):
    if all(v > 0 for v in values):
        return math.exp(sum(math.log(v) for v in values) / len(values))
    return sum(values) / len(values)


def _summary(series):
    """asv's thumbnail: per revision, the geometric mean of the series, each
    filled from its nearest measured neighbour where it has no point."""
    series = [s for s in series if s]
    revs = sorted(set().union(*series)) if series else []
    points = []
    for rev in revs:
        values = []
        for s in series:
            if rev in s:
                values.append(s[rev])
            else:
                before = [r for r in s if r < rev]
                values.append(s[max(before)] if before else s[min(s)])
        points.append([rev, _geometric_mean(values)])
    return points


def _machine_words(index, machine):
    info = index.get("machines", {}).get(machine, {})
    words = [info.get("cpu") or "", f"{info['num_cpu']} CPUs" if info.get("num_cpu") else ""]
    return ", ".join(w for w in words if w)


def finish_index(site):
    """Write the page's choices into index.json (key "gelu_numba") and redraw
    the thumbnails from them; warnings (VIEWS naming what the suite lacks)."""
    site = pathlib.Path(site)
    index_path = site / "index.json"
    index = json.loads(index_path.read_text())
    warnings = []
    default = _default_machine(site, index)
    machines = index["params"].get("machine", [])
    views, used, unmeasured = {}, {}, []
    for benchmark, meta in index["benchmarks"].items():
        # the default machine's results, else those of the machine that ran
        # this benchmark last (else none: the thumbnail says so)
        candidates = [default] + sorted(
            (m for m in machines if m != default),
            key=lambda m: -max((max(p) for p in _series(site, index, benchmark, m).values()), default=-1))
        series, machine = {}, None
        for m in candidates:
            series = _series(site, index, benchmark, m) if m else {}
            if series:
                machine = m
                break
        if machine is None:
            unmeasured.append(benchmark)
        if meta.get("params"):
            view = _resolve_view(benchmark, meta, set(series) if machine == default else set(),
                                 warnings.append)
            views[benchmark] = view
            drawn = set(itertools.product(*view.values()))
        else:
            drawn = {()}
        thumbnail = site / "graphs" / "summary" / (_sanitize(benchmark) + ".json")
        points = _summary([s for combo, s in series.items() if combo in drawn])
        if points:
            thumbnail.parent.mkdir(parents=True, exist_ok=True)
            thumbnail.write_text(json.dumps(points))
            used[benchmark] = machine
        elif thumbnail.exists():
            thumbnail.unlink()
    for benchmark in VIEWS:
        if benchmark not in index["benchmarks"]:
            warnings.append(f"VIEWS: no benchmark {benchmark!r}")

    machine_keys = sorted({k for info in index.get("machines", {}).values() for k in info}
                          - {"machine", "version"})
    note = ""
    if default:
        others = [m for m in machines if m != default]
        note = (f"Machine {default} ({_machine_words(index, default)}). Each thumbnail is the "
                "geometric mean of the curves its graph opens on; a graph opens on this "
                "machine alone")
        note += (f" (its machine panel adds {', '.join(others)})." if others else ".")
        elsewhere = sorted(b for b, m in used.items() if m != default)
        if elsewhere:
            note += (" Measured on another machine only: " +
                     "; ".join(f"{b.split('.', 1)[-1]} ({used[b]})" for b in elsewhere) + ".")
    index["gelu_numba"] = {
        "default_machine": default,
        "views": views,
        "machine_keys": machine_keys,
        "grid_note": note,
        "no_results": NO_RESULTS,
        "unmeasured": sorted(unmeasured),
    }
    index_path.write_text(json.dumps(index, separators=(",", ":")))
    return warnings


# --- commits.html: the project's page ----------------------------------------


def _git_describe(commit):
    """(date, subject) of a commit from the local repository, or None."""
    try:
        out = subprocess.run(
            ["git", "show", "-s", "--date=short", "--format=%ad%x1f%s", commit],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    date, _, subject = out.rstrip("\n").partition("\x1f")
    return date, subject


def _description():
    """pyproject.toml's description, or ''."""
    try:
        text = (ROOT / "pyproject.toml").read_text()
    except OSError:
        return ""
    m = re.search(r'^description\s*=\s*"([^"]*)"', text, re.M)
    return m.group(1) if m else ""


def write_commits_page(site):
    """commits.html: what the project is, the machines, and every commit of
    the published history, newest first, each row's id the short hash asv
    appends to show_commit_url."""
    site = pathlib.Path(site)
    index = json.loads((site / "index.json").read_text())
    project = html.escape(index.get("project", ""))
    short = int(index.get("hash_length", 8))
    tags = {}
    for tag, rev in index.get("tags", {}).items():
        tags.setdefault(str(rev), []).append(tag)
    rows = []
    revisions = sorted(index.get("revision_to_hash", {}).items(), key=lambda kv: -int(kv[0]))
    for rev, commit in revisions:
        described = _git_describe(commit)
        date, subject = described if described else ("", "(not in this clone)")
        tag = " ".join(f'<span class="label label-default">{html.escape(t)}</span>' for t in tags.get(rev, []))
        rows.append(
            f'<tr id="{html.escape(commit[:short])}"><td><code>{html.escape(commit[:short])}</code></td>'
            f"<td>{html.escape(date)}</td><td>{html.escape(subject)} {tag}</td>"
            f'<td><code>git show {html.escape(commit[:short])}</code></td></tr>'
        )
    default = (index.get("gelu_numba") or {}).get("default_machine")
    machines = []
    for name, info in sorted(index.get("machines", {}).items()):
        shown = dict(info)
        if str(shown.get("ram", "")).isdigit():
            shown["ram"] = f"{int(shown['ram']) / 1e9:.1f} GB"
        details = ", ".join(f"{k} {shown[k]}" for k in ("cpu", "num_cpu", "arch", "os", "ram") if shown.get(k))
        opens = " (the graphs open on this one)" if name == default else ""
        machines.append(f"<li><code>{html.escape(name)}</code>: {html.escape(details)}{opens}</li>")
    description = html.escape(_description())
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{project}: benchmarked commits</title>
<link rel="stylesheet" href="static/bootstrap.min.css">
<style>body {{ padding: 1em 2em; }} td {{ white-space: nowrap; }} td:nth-child(3) {{ white-space: normal; }} tr:target td {{ background: #fcf8e3; }}</style>
</head>
<body>
<h3>{project}: the benchmark history</h3>
<p>{description}</p>
<p>Each graph of the <a href="index.html">benchmark pages</a> is one benchmark
over the commits below, on one machine at a time (the side panel adds the
others):</p>
<ul>
{chr(10).join(machines)}
</ul>
<p>The commits, newest first. The project has no public repository: read a
commit in a clone with the <code>git show</code> command beside it.
<a href="index.html">Back to the graphs</a>.</p>
<table class="table table-condensed">
<thead><tr><th>commit</th><th>date</th><th>subject</th><th>in a clone</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</body>
</html>
"""
    (site / "commits.html").write_text(page)
    return len(rows)


# --- serving -----------------------------------------------------------------

HOST = "127.0.0.1"


def make_server(site, port=8080, host=HOST):
    """An HTTP server for the site bound to host (this machine only, by
    default), on port or, if taken, the next free of the four after it (port
    0: any free port)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    ports = [port] if port == 0 else range(port, port + 5)
    for p in ports:
        try:
            return http.server.ThreadingHTTPServer((host, p), handler)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or p == ports[-1]:
                raise
    raise AssertionError("unreachable")


def serve(site, port=8080, host=HOST):
    httpd = make_server(site, port, host)
    host, port = httpd.server_address[:2]
    print(f"Serving {site} at http://{host}:{port}/ (this machine only; Ctrl-C stops)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", default=str(ROOT / ".asv" / "html"),
                        help="the published site (default: .asv/html)")
    parser.add_argument("--serve", action="store_true",
                        help="serve the site on 127.0.0.1 instead of finishing it")
    parser.add_argument("--port", type=int, default=8080,
                        help="with --serve: the port (default 8080, else the next free of the "
                             "four after it; 0: any free port)")
    args = parser.parse_args(argv)
    site = pathlib.Path(args.site)
    if args.serve:
        if not (site / "index.html").is_file():
            parser.error(f"{site} has no index.html: publish first")
        serve(site, args.port)
        return 0
    missing = localise(site)
    for warning in finish_index(site):
        print(f"warning: {warning}", file=sys.stderr)
    for name in patch_scripts(site):
        print(f"warning: not as asv 0.6 wrote it, left without the change: {name}", file=sys.stderr)
    write_commits_page(site)
    if missing:
        print("no local copy for:", *sorted(missing), sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
