"""Build a course notebook from its "percent"-format source (maintainers' tool).

    python tools/nbbuild.py tools/notebook_sources/03_cnnbh.py   # -> notebooks/03_cnnbh.ipynb

Cells start with ``# %%`` (code; ``# %% tags=["parameters"]`` for the papermill
parameters cell) or ``# %% [markdown]`` (lines lose their leading ``# ``). The Colab
badge and the Colab install cell are added at the top, built from
``hashlib_edu.REPO_URL`` (the one place the repository address is written).
Building wipes outputs: run the notebook afterwards
(``python -m hashlib_edu.course run notebooks/<name>.ipynb``).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hashlib_edu import REPO_URL  # noqa: E402

INSTALL = """# Colab only: fetch the course and install it (this cell does nothing elsewhere).
import sys

if "google.colab" in sys.modules:
    !git clone -q --depth 1 {repo} /content/hashlib_edu
    !pip -q install -e /content/hashlib_edu
    sys.path.insert(0, "/content/hashlib_edu")
    %cd /content/hashlib_edu/notebooks"""


def parse(source: str) -> list:
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(re.sub(r"^# ?", "", ln) for ln in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(text)
            if tags:
                cell.metadata["tags"] = tags
            cells.append(cell)

    for line in source.splitlines():
        if line.startswith("# %%"):
            flush()
            rest = line[4:].strip()
            kind = "markdown" if rest.startswith("[markdown]") else "code"
            m = re.search(r"tags=(\[.*\])", rest)
            tags, lines = (ast.literal_eval(m.group(1)) if m else []), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def build(src: Path) -> Path:
    name = src.stem
    slug = REPO_URL.split("github.com/")[-1]
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"(https://colab.research.google.com/github/{slug}/blob/main/notebooks/{name}.ipynb)")
    cells = parse(src.read_text())
    if not cells or cells[0].cell_type != "markdown":
        raise SystemExit(f"{src}: the first cell must be the markdown title.")
    cells[0].source = cells[0].source + "\n\n" + badge
    cells.insert(1, nbformat.v4.new_code_cell(INSTALL.format(repo=REPO_URL + ".git")))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    out = ROOT / "notebooks" / f"{name}.ipynb"
    nbformat.write(nb, out)
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(build(Path(arg)))
