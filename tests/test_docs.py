"""README and docs/: the links resolve, every figure block is filled, and
README stays the short page a user reads first."""

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
BLOCK = re.compile(r"<!-- figures:([\w-]+) -->\n(.*?)<!-- /figures:\1 -->", re.S)


def _figures_tool():
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "tools" / "readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    text = page.read_text()
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#")[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.name}: links to missing files {broken}"


def test_every_page_is_linked_from_readme():
    readme = (ROOT / "README.md").read_text()
    linked = {pathlib.Path(t.split("#")[0]).name for t in LINK.findall(readme) if t.startswith("docs/")}
    assert {p.name for p in PAGES[1:]} <= linked


def test_every_figure_block_is_filled_and_written_by_the_figures_command():
    found = {}
    for page in PAGES:
        for name, body in BLOCK.findall(page.read_text()):
            assert name not in found, f"block {name} in {found[name]} and {page.name}"
            found[name] = page.name
            assert body.strip(), f"block {name} in {page.name} is empty"
            assert re.search(r"Measured|measured", body), f"block {name} in {page.name} says not when it was measured"
    written = {block for blocks in _figures_tool().BLOCKS.values() for block in blocks}
    assert set(found) == written, f"blocks in the pages {sorted(found)}, written by the command {sorted(written)}"


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines; details belong in docs/"


#: "see README, 'Types'", "see docs/ecosystem.md: 'PyTorch'", "README, 'Types'".
POINTER = re.compile(r"(README|docs/[\w-]+\.md)(?:\.md)?(?:,|:)?\s+'([^']+)'")
BARE = re.compile(r"see README\b(?![.,:]?\s*')")


def _pointer_sources():
    files = [ROOT / "pyproject.toml", *sorted((ROOT / "examples").glob("*.py")),
             *sorted((ROOT / "gelu_numba").rglob("*.py")), *sorted((ROOT / "tests").glob("*.py")),
             *sorted((ROOT / "tools").glob("*.py"))]
    return [f for f in files if f.name != "test_docs.py"]


def _sections(page):
    """A page's headings and its bold paragraph labels (**PyTorch.**)."""
    text = page.read_text()
    return {m.strip() for m in re.findall(r"^#+\s*(.+)$", text, re.M)} | {
        m.strip() for m in re.findall(r"\*\*([^*]+?)\.?\*\*", text)}


def test_pointers_into_the_docs_name_a_section_that_exists():
    """A message that sends a user to README or a docs page names the page and
    a section of it that is there (text moves between pages)."""
    bad = []
    for path in _pointer_sources():
        text = path.read_text()
        for line_no, line in enumerate(text.splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{line_no}"
            if BARE.search(line):
                bad.append(f"{where}: 'see README' without a section")
            for page, section in POINTER.findall(line):
                target = ROOT / (page if page.endswith(".md") else page + ".md")
                if not target.exists() or section not in _sections(target):
                    bad.append(f"{where}: {page} has no section {section!r}")
    assert not bad, "\n".join(bad)
