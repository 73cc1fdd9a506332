"""The repository address is written once (``REPO_URL``); every badge and install cell agrees
with it, and ``python -m hashlib_edu.fork`` moves them all to a fork."""

from __future__ import annotations

import re
import shutil

import pytest

from hashlib_edu import REPO_URL
from hashlib_edu.fork import files_naming, github_path, point_to
from hashlib_edu.profiles import project_root


def test_every_notebook_badge_and_install_cell_names_the_one_repository():
    root = project_root()
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.py"))
    assert notebooks
    path = github_path(REPO_URL)
    for nb in notebooks:
        text = nb.read_text(encoding="utf-8")
        named = set(re.findall(r"github\.com/([\w.-]+/[\w.-]+?)(?:\.git|/blob|/|\s|\))", text))
        assert named == {path}, f"{nb.name} names {named}, REPO_URL is {REPO_URL}"
    assert set(files_naming()) >= set(notebooks)


def test_fork_rewrites_every_copy(tmp_path):
    root = project_root()
    for sub in ("notebooks", "hashlib_edu"):
        (tmp_path / sub).mkdir()
    for nb in (root / "notebooks").glob("0[0-3]_*.*"):
        shutil.copy(nb, tmp_path / "notebooks" / nb.name)
    shutil.copy(root / "hashlib_edu" / "_version.py", tmp_path / "hashlib_edu" / "_version.py")
    shutil.copy(root / "README.md", tmp_path / "README.md")
    fork = "https://github.com/a-lecturer/hashing-seminar"
    changed = point_to(fork, root=tmp_path)
    assert len(changed) >= 5
    assert files_naming(REPO_URL, tmp_path) == []
    assert set(files_naming(fork, tmp_path)) == set(changed)
    text = (tmp_path / "notebooks" / "03_cnnbh.ipynb").read_text()
    assert "colab.research.google.com/github/a-lecturer/hashing-seminar/blob/main" in text
    assert f'REPO_URL = "{fork}"' in (tmp_path / "hashlib_edu" / "_version.py").read_text()


@pytest.mark.parametrize("bad", ["github.com/x/y", "https://gitlab.com/x/y", "https://github.com/x"])
def test_fork_refuses_what_is_not_a_github_repository(bad):
    with pytest.raises(ValueError, match="https://github.com/<owner>/<name>"):
        github_path(bad)
