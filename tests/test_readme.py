"""The README fits a lecturer's first screen, and its links (and the docs' links) lead somewhere.

* the set-up commands (the ``pip install`` line and the test command) stand within the first
  40 lines;
* no cell of a Markdown table in the README holds more than 25 words;
* every notebook in ``notebooks/`` has a row in the README;
* every relative link of ``README.md`` and ``docs/*.md`` names a file of the repository that
  exists, and a ``#fragment`` into a Markdown file names one of its headings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

FIRST_SCREEN = 40
MAX_CELL_WORDS = 25

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_TEST_COMMAND = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*pytest(?:\s|$)")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of the lines outside fenced code blocks."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, line))
    return out


def code_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of the lines inside fenced code blocks."""
    prose = {n for n, _ in prose_lines(text)}
    return [(n, line) for n, line in enumerate(text.splitlines(), 1)
            if n not in prose and not _FENCE.match(line)]


def table_cells(text: str) -> list[tuple[int, str]]:
    """``(line number, cell text)`` of every cell of every Markdown table (rules left out)."""
    cells = []
    for number, line in prose_lines(text):
        stripped = line.strip()
        if not stripped.startswith("|"):
            continue
        parts = re.split(r"(?<!\\)\|", stripped.strip("|"))
        if all(re.fullmatch(r"\s*:?-{3,}:?\s*", p) for p in parts):
            continue  # the header rule
        cells += [(number, p.strip()) for p in parts]
    return cells


def long_cells(text: str, limit: int = MAX_CELL_WORDS) -> list[str]:
    return [f"line {n}: {len(cell.split())} words: {cell[:80]}..."
            for n, cell in table_cells(text) if len(cell.split()) > limit]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            name, k = base, 0
            while name in found:  # GitHub numbers repeated headings
                k += 1
                name = f"{base}-{k}"
            found.add(name)
    return found


def relative_links(path: Path) -> list[tuple[int, str]]:
    """``(line number, target)`` of the links and images of a Markdown file that point into
    the repository (web addresses and ``mailto:`` left out)."""
    out = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for target in _LINK.findall(line):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                continue  # https:, mailto:, ...
            out.append((number, target))
    return out


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """The relative links of ``path`` whose file does not exist (or leaves ``root``), and the
    fragments into Markdown files that name no heading there."""
    broken = []
    for number, target in relative_links(path):
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path.resolve()
        where = f"{path.name}:{number}: {target}"
        if root.resolve() not in (dest, *dest.parents):
            broken.append(f"{where} (outside the repository)")
        elif not dest.exists():
            broken.append(f"{where} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{where} (no heading #{fragment} in {dest.name})")
    return broken


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


# ------------------------------------------------------------------------------ the README


def test_setup_commands_are_on_the_first_screen():
    lines = README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN]
    head = "\n".join(lines)
    commands = [line.strip() for _, line in code_lines(head)]
    assert any(c.startswith("pip install -r requirements.txt") for c in commands), (
        f"the pip install line must be within README's first {FIRST_SCREEN} lines")
    assert any(_TEST_COMMAND.match(c) for c in commands), (
        f"the test command (pytest, as .ci/run runs it) must be within README's first "
        f"{FIRST_SCREEN} lines")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^pytest\b", ci, re.M), ".ci/run should run the README's test command"


def test_readme_table_cells_are_short():
    assert table_cells(README.read_text(encoding="utf-8")), "README has no table"
    too_long = long_cells(README.read_text(encoding="utf-8"))
    assert not too_long, (f"README table cells over {MAX_CELL_WORDS} words (move the detail "
                          "into docs/):\n" + "\n".join(too_long))


def test_every_notebook_has_a_row_in_the_readme():
    text = README.read_text(encoding="utf-8")
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    missing = [nb.name for nb in notebooks if f"notebooks/{nb.name})" not in text]
    assert not missing, f"README's notebook table lacks {missing}"


def test_readme_links_every_docs_page():
    text = README.read_text(encoding="utf-8")
    pages = sorted(DOCS.glob("*.md"))
    assert (DOCS / "seminar.md") in pages
    unlinked = [p.name for p in pages if f"](docs/{p.name}" not in text]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


def test_readme_keeps_the_generated_parts():
    from hashlib_edu.report import BEGIN, BUDGET_BEGIN, BUDGET_END, END

    text = README.read_text(encoding="utf-8")
    for marker in (BEGIN, END, BUDGET_BEGIN, BUDGET_END):
        assert text.count(marker) == 1, f"README needs exactly one {marker}"


# ------------------------------------------------------------------------------ the links


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_point_at_files_that_exist(path):
    broken = broken_links(path)
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_links_into_docs():
    targets = [t for _, t in relative_links(README)]
    assert any(t.startswith("docs/") for t in targets)


# ------------------------------------------------------------------------------ the checks


def test_the_checks_catch_what_they_should(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page\n\n## When it's done\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/page.md) [ok too](docs/page.md#when-its-done) [web](https://example.org)\n"
        "[missing](docs/nope.md) [bad anchor](docs/page.md#nowhere) [out](../../etc/passwd)\n"
        "```\n[in code](docs/ignored.md)\n```\n"
        "| a | b |\n|---|:--:|\n| short | " + "word " * 26 + "|\n")
    broken = broken_links(readme, root=tmp_path)
    assert len(broken) == 3, broken
    assert any("nope.md" in b and "no such file" in b for b in broken)
    assert any("#nowhere" in b for b in broken)
    assert any("outside" in b for b in broken)
    assert len(long_cells(readme.read_text())) == 1
    assert slug("The papers' regime: `frozen`, `finetune`") == "the-papers-regime-frozen-finetune"
    assert _TEST_COMMAND.match("HASHLIB_EDU_PROFILE=smoke pytest")
    assert _TEST_COMMAND.match("pytest")
    assert not _TEST_COMMAND.match("pytest-xdist")
