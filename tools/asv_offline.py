"""Make asv's published site work offline, and finish it for this project.

    python tools/asv_offline.py [.asv/html]

Run after `asv publish` (tools/asv_history.sh does).  It

- copies tools/asv_static/ into the site and rewrites the CDN addresses in
  its HTML files to those copies (the page then needs no network);
- patches asv's graph page (see PATCHES): the x axis of a graph over the
  history is labelled with the short hashes of the measured commits (asv
  draws it without labels), and every y axis starts at zero unless "zoom y
  axis" is on (asv does that for seconds and bytes only);
- writes commits.html, one row per commit in the history (hash, date,
  subject, tags, from `git log`), which asv.conf.json's show_commit_url
  points at: the project has no public repository to link commits to.
"""

import html
import json
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

# Two changes to asv's (0.6) graph page, each found by a line of its code and
# applied once (the mark says it is done); where asv's code differs (another
# version) the page is left as asv wrote it, with a warning.
#
# Commit labels: asv draws the "commits" x axis with an empty tick formatter,
# so a graph over the history names no commit (only the hover tooltip does).
# This gives that axis a tick per measured commit in view, labelled with its
# short hash, thinned to about one per 80 pixels (the newest always kept);
# zooming re-labels.  The date axis ("date scale") and graphs over a
# parameter are left as asv draws them.
COMMIT_TICKS_ANCHOR = 'options.xaxis.tickFormatter = function (v, axis) { return ""; };'
COMMIT_TICKS = """
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
# treats every unit as asv treats seconds, "zoom y axis" included.
ZERO_BASED_ANCHOR = """                multiplier = 1.0;
"""
ZERO_BASED = """                MARK
                if (!zoom_y_axis && min >= 0) {
                    options.yaxis.min = 0.0;
                    options.yaxis.max = max * 1.3;
                }
"""

PATCHES = {
    # name: (a line of asv's code, what goes after it; MARK: the mark)
    "commit labels on the x axis": (COMMIT_TICKS_ANCHOR, COMMIT_TICKS),
    "y axis from zero for every unit": (ZERO_BASED_ANCHOR, ZERO_BASED),
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


def patch_graph_page(site):
    """Apply PATCHES to the site's graphdisplay.js; the names of those that
    no longer apply (asv's code has changed)."""
    js = pathlib.Path(site) / "graphdisplay.js"
    text = js.read_text()
    failed = []
    for name, (anchor, code) in PATCHES.items():
        mark = f"/* gelu_numba (tools/asv_offline.py): {name} */"
        if mark in text:
            continue
        if text.count(anchor) != 1:
            failed.append(name)
            continue
        text = text.replace(anchor, anchor + code.replace("MARK", mark))
    js.write_text(text)
    return failed


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


def write_commits_page(site):
    """commits.html: every commit of the published history, newest first,
    each row's id the short hash asv appends to show_commit_url."""
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
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{project}: benchmarked commits</title>
<link rel="stylesheet" href="static/bootstrap.min.css">
<style>body {{ padding: 1em 2em; }} td {{ white-space: nowrap; }} td:nth-child(3) {{ white-space: normal; }} tr:target td {{ background: #fcf8e3; }}</style>
</head>
<body>
<h3>{project}: the commits of the benchmark history</h3>
<p>Newest first. The project has no public repository: read a commit in a
clone with the <code>git show</code> command beside it.
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


if __name__ == "__main__":
    site = sys.argv[1] if len(sys.argv) > 1 else ROOT / ".asv" / "html"
    missing = localise(site)
    for name in patch_graph_page(site):
        print(f"warning: graphdisplay.js is not as asv 0.6 wrote it: left without {name}",
              file=sys.stderr)
    write_commits_page(site)
    if missing:
        print("no local copy for:", *sorted(missing), sep="\n  ")
        sys.exit(1)
