"""Make asv's published site work offline.

    python tools/asv_offline.py [.asv/html]

Copies tools/asv_static/ into the site and rewrites the CDN addresses in its
HTML files to those copies.  Run after `asv publish` (tools/asv_history.sh
does).
"""

import pathlib
import re
import shutil
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


if __name__ == "__main__":
    missing = localise(sys.argv[1] if len(sys.argv) > 1 else ROOT / ".asv" / "html")
    if missing:
        print("no local copy for:", *sorted(missing), sep="\n  ")
        sys.exit(1)
