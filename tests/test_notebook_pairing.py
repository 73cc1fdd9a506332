"""Every course notebook ``notebooks/NN_name.ipynb`` (which keeps the outputs) is paired by
jupytext (``jupytext.toml``) with a percent-format source ``notebooks/NN_name.py`` (the text
to edit and review). The two must hold the same cells: same kind, same source, same tags.
These checks only read files; nothing is executed."""

from __future__ import annotations

import difflib
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCE_FORMAT = "py:percent"


def _shown(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def _cells(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source, tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def _describe(cell: tuple[str, str, tuple[str, ...]] | None) -> str:
    if cell is None:
        return "no such cell"
    kind, source, tags = cell
    first = source.splitlines()[0] if source else ""
    return f"{kind} cell{f' tags={list(tags)}' if tags else ''} starting {first!r}"


def pairing_problem(ipynb: Path, source: Path) -> str | None:
    """None when ``ipynb`` and its paired ``source`` hold the same cells (kind, source, tags);
    else a message naming the notebook and the first cell that differs, and the fix."""
    in_notebook = _cells(nbformat.read(ipynb, as_version=4))
    in_source = _cells(jupytext.read(source, fmt=SOURCE_FORMAT))
    if in_notebook == in_source:
        return None
    n = len(in_notebook)
    i = next(
        (k for k, (a, b) in enumerate(zip(in_notebook, in_source, strict=False)) if a != b),
        min(n, len(in_source)),
    )
    mine = in_notebook[i] if i < n else None
    theirs = in_source[i] if i < len(in_source) else None
    lines = [
        f"{_shown(ipynb)} and its source {_shown(source)} disagree "
        f"({n} cells vs {len(in_source)}); first difference at cell {i + 1}:",
        f"  notebook: {_describe(mine)}",
        f"  source:   {_describe(theirs)}",
    ]
    if mine and theirs and mine[:2] != theirs[:2]:
        diff = difflib.unified_diff(
            mine[1].splitlines(), theirs[1].splitlines(), "notebook", "source", lineterm="", n=1
        )
        lines += ["  " + line for line in list(diff)[:12]]
    lines.append(
        f"Run `jupytext --sync {_shown(ipynb)}` (it takes the cells of whichever file was "
        "modified last and keeps the notebook's outputs), then check the result with git diff."
    )
    return "\n".join(lines)


def unpaired(folder: Path) -> list[str]:
    """Notebooks in ``folder`` without a paired source, and sources without a notebook."""
    notebooks = {p.stem for p in folder.glob("*.ipynb")}
    sources = {p.stem for p in folder.glob("*.py")}
    return [
        f"{_shown(folder / name)}.ipynb has no paired source {name}.py: "
        f"run `jupytext --sync {_shown(folder / name)}.ipynb`"
        for name in sorted(notebooks - sources)
    ] + [
        f"{_shown(folder / name)}.py has no notebook {name}.ipynb: create it with "
        f"`jupytext --sync {_shown(folder / name)}.py` (then run it), or delete the source"
        for name in sorted(sources - notebooks)
    ]


COURSE = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_course_notebooks_found():
    assert COURSE, f"no notebooks under {NOTEBOOKS}"


def test_every_notebook_has_its_source_and_every_source_its_notebook():
    problems = unpaired(NOTEBOOKS)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("ipynb", COURSE, ids=[p.stem for p in COURSE])
def test_notebook_matches_its_source(ipynb):
    source = ipynb.with_suffix(".py")
    if not source.exists():
        pytest.skip(f"{source.name} missing (reported by the pairing test above)")
    problem = pairing_problem(ipynb, source)
    assert problem is None, problem


# The checks above must be able to fail: a small pair written to tmp_path, then broken.


def _write_pair(folder: Path, name: str = "99_demo") -> tuple[Path, Path]:
    nb = new_notebook(
        cells=[
            new_markdown_cell("# 99 · Demo\n\nSome text."),
            new_code_cell(
                'import sys\n\nif "google.colab" in sys.modules:\n'
                "    !pip -q install -e /content/x\n    %cd /content/x"
            ),
            new_code_cell("PROFILE = None", metadata={"tags": ["parameters"]}),
            new_markdown_cell("## A section\n\nMore text."),
            new_code_cell(
                "print(1 + 1)",
                outputs=[new_output("stream", name="stdout", text="2\n")],
                execution_count=1,
            ),
        ],
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
    )
    ipynb, source = folder / f"{name}.ipynb", folder / f"{name}.py"
    nbformat.write(nb, ipynb)
    jupytext.write(nb, source, fmt=SOURCE_FORMAT)
    return ipynb, source


def test_pairing_problem_accepts_a_fresh_pair(tmp_path):
    ipynb, source = _write_pair(tmp_path)
    assert pairing_problem(ipynb, source) is None
    assert unpaired(tmp_path) == []


def test_pairing_problem_reports_an_edited_markdown_cell(tmp_path):
    ipynb, source = _write_pair(tmp_path)
    text = source.read_text()
    assert "# More text." in text
    source.write_text(text.replace("# More text.", "# More text, edited."))
    problem = pairing_problem(ipynb, source)
    assert problem is not None
    assert "99_demo.ipynb" in problem
    assert "first difference at cell 4" in problem
    assert "edited" in problem
    assert "jupytext --sync" in problem and "99_demo.ipynb`" in problem


def test_pairing_problem_reports_a_lost_tag_and_an_extra_cell(tmp_path):
    ipynb, source = _write_pair(tmp_path)
    text = source.read_text()
    source.write_text(text.replace('# %% tags=["parameters"]', "# %%"))
    assert "first difference at cell 3" in pairing_problem(ipynb, source)

    source.write_text(text + '\n# %%\nprint("new")\n')
    problem = pairing_problem(ipynb, source)
    assert "(5 cells vs 6)" in problem and "first difference at cell 6" in problem


def test_unpaired_reports_both_directions(tmp_path):
    _write_pair(tmp_path, "01_a")
    _write_pair(tmp_path, "02_b")
    (tmp_path / "01_a.py").unlink()
    (tmp_path / "02_b.ipynb").unlink()
    problems = unpaired(tmp_path)
    assert len(problems) == 2
    assert "01_a.ipynb has no paired source" in problems[0]
    assert "02_b.py has no notebook" in problems[1]
