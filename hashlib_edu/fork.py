"""Point a copy of the course at its own repository: ``python -m hashlib_edu.fork``.

A lecturer who forks the course wants the notebooks' "Open in Colab" badges, their install
cells and the trained-models address to name the fork. The address is written once, as
``REPO_URL`` in :mod:`hashlib_edu._version`; the badges and install cells must hold it
literally (Colab and Markdown cannot import it), so this command rewrites every copy::

    python -m hashlib_edu.fork https://github.com/<owner>/<name>

and ``tests/test_fork.py`` checks that every copy agrees with ``REPO_URL``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ._version import REPO_URL
from .profiles import project_root

__all__ = ["github_path", "files_naming", "point_to", "main"]

_GITHUB = re.compile(r"^https://github\.com/([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+?)/?$")
#: Text files that may hold the address, relative to the course's root.
_PATTERNS = ("README.md", "docs/**/*.md", "notebooks/*.py", "notebooks/*.ipynb",
             "hashlib_edu/_version.py")


def github_path(url: str) -> str:
    """``"owner/name"`` of ``https://github.com/owner/name``.

    Raises:
        ValueError: for anything else, saying what is expected.
    """
    match = _GITHUB.match(url.strip().removesuffix(".git"))
    if not match:
        raise ValueError(f"expected a GitHub repository address like "
                         f"https://github.com/<owner>/<name>; got {url!r}.")
    return match.group(1)


def _forms(path: str) -> tuple[str, str]:
    """The two ways the address is written: the repository's own URL, and Colab's
    ``colab.research.google.com/github/<owner>/<name>/``."""
    return f"https://github.com/{path}", f"colab.research.google.com/github/{path}/"


def files_naming(url: str = REPO_URL, root: str | Path | None = None) -> list[Path]:
    """The course files that contain ``url`` (in either form), sorted."""
    root = Path(root) if root is not None else project_root()
    forms = _forms(github_path(url))
    found = {p for pattern in _PATTERNS for p in root.glob(pattern) if p.is_file()
             and any(form in p.read_text(encoding="utf-8") for form in forms)}
    return sorted(found)


def point_to(new_url: str, root: str | Path | None = None, old_url: str = REPO_URL) -> list[Path]:
    """Rewrite every copy of ``old_url`` under ``root`` (default: this course) to ``new_url``;
    returns the files changed. Writes each file whole, through a temporary file."""
    old, new = _forms(github_path(old_url)), _forms(github_path(new_url))
    changed = []
    for path in files_naming(old_url, root):
        text = path.read_text(encoding="utf-8")
        for before, after in zip(old, new, strict=True):
            text = text.replace(before, after)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashlib_edu.fork",
                                     description="Point the course's badges, install cells and "
                                                 "trained-models address at your fork.")
    parser.add_argument("url", help="your fork, e.g. https://github.com/<owner>/<name>")
    args = parser.parse_args(argv)
    try:
        github_path(args.url)
    except ValueError as err:
        parser.error(str(err))
    changed = point_to(args.url)
    root = project_root()
    print(f"{len(changed)} files now point at {args.url}:")
    for path in changed:
        print(f"  {path.relative_to(root)}")
    print("Commit them; re-open notebooks from the fork's badges.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
