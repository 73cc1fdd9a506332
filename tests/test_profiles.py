"""hashlib_edu.profiles: the run profile and where outputs go (never the checkout under smoke)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

import hashlib_edu.profiles as profiles
from hashlib_edu.profiles import (
    PROFILES,
    checkpoints_dir,
    figure_path,
    figures_dir,
    get_profile,
    output_root,
    project_root,
    results_dir,
)

PACKAGE_PARENT = Path(profiles.__file__).resolve().parents[1]


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def test_profile_from_env_and_argument(monkeypatch):
    assert get_profile() == "smoke"  # set by the autouse fixture
    monkeypatch.setenv("HASHLIB_EDU_PROFILE", " Quick ")
    assert get_profile() == "quick"
    assert get_profile("paper") == "paper"  # the argument wins
    assert get_profile("SMOKE") == "smoke"
    assert PROFILES == ("smoke", "quick", "paper")


@pytest.mark.parametrize("cuda, want", [(True, "quick"), (False, "quick")])
def test_profile_default_is_quick_on_every_device(monkeypatch, cuda, want):
    monkeypatch.delenv("HASHLIB_EDU_PROFILE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert get_profile() == want
    monkeypatch.setenv("HASHLIB_EDU_PROFILE", "")  # empty counts as unset
    assert get_profile() == want


def test_unknown_profile(monkeypatch):
    with pytest.raises(ValueError, match="smoke, quick, paper"):
        get_profile("fast")
    monkeypatch.setenv("HASHLIB_EDU_PROFILE", "full")
    with pytest.raises(ValueError, match="'full'.*HASHLIB_EDU_PROFILE"):
        get_profile()


def test_smoke_outputs_go_to_hashlib_edu_output(tmp_path):
    out = tmp_path / "output"
    assert output_root() == out
    fig = figure_path("x.png")
    assert fig == out / "figures" / "x.png" and fig.parent.is_dir()
    assert results_dir() == out / "results" and results_dir().is_dir()
    assert checkpoints_dir() == out / "checkpoints" and checkpoints_dir().is_dir()
    assert not _inside(fig, project_root())


def test_smoke_without_output_env_uses_one_temp_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("HASHLIB_EDU_OUTPUT")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # keep mkdtemp inside tmp_path
    first = output_root()
    assert _inside(first, tmp_path) and first.name.startswith("hashlib_edu-smoke-")
    assert output_root() == first  # one folder per process
    assert figures_dir().parent == first
    for root in (project_root(), PACKAGE_PARENT):
        assert not _inside(first, root)
        assert not _inside(figures_dir(), root)


def test_quick_and_paper_write_to_project_root(monkeypatch, tmp_path):
    monkeypatch.setenv("HASHLIB_EDU_ROOT", str(tmp_path / "course"))
    assert project_root() == tmp_path / "course"
    for name in ("quick", "paper"):
        assert output_root(name) == tmp_path / "course"
        assert figures_dir(name) == tmp_path / "course" / "figures"
    assert output_root("smoke") == tmp_path / "output"  # argument beats the env profile


def test_project_root_is_the_checkout(monkeypatch):
    monkeypatch.delenv("HASHLIB_EDU_ROOT", raising=False)
    root = project_root()
    if (PACKAGE_PARENT / "notebooks").is_dir():
        assert root == PACKAGE_PARENT
    else:  # an installed, non-editable package
        assert root == Path.cwd()


def test_training_plan_multiplies_the_table_and_labels_its_source(monkeypatch):
    monkeypatch.setenv("HASHLIB_EDU_PROFILE", "quick")
    seconds, source = profiles.epoch_seconds("small", "cifar10-1k", "cpu")
    line = profiles.training_plan(4, 60, backbone="small", device="cpu")
    assert f"{4 * 60 * seconds / 60:.0f} min" in line and source in line and "4 models" in line
    assert "estimate" in profiles.training_plan(1, 10, backbone="alexnet", device="cuda:0")
    assert "1 model of 10" in profiles.training_plan(1, 10, backbone="small", device=torch.device("cpu"))
    with pytest.raises(KeyError, match="known"):
        profiles.epoch_seconds("vgg", "cifar10-1k", "cpu")
    with pytest.raises(ValueError):
        profiles.training_plan(-1, 10, backbone="small")
    # smoke trains on small subsets: no full-protocol minutes
    monkeypatch.setenv("HASHLIB_EDU_PROFILE", "smoke")
    line = profiles.training_plan(11, 60, backbone="small", device="cpu")
    assert "11 models of 60" in line and "smoke" in line and "min" not in line


def test_the_readme_shows_the_time_budget_table():
    from hashlib_edu.profiles import EPOCH_SECONDS, project_root, time_budget_table

    table = time_budget_table()
    assert table.count("\n") == len(EPOCH_SECONDS) + 1  # header, rule, one row per entry
    assert "| `small` | `cifar10-1k` | cpu | 2 | measured |" in table
    readme = (project_root() / "README.md").read_text()
    from hashlib_edu.report import BUDGET_BEGIN, BUDGET_END

    shown = readme.split(BUDGET_BEGIN + "\n", 1)[1].split("\n" + BUDGET_END)[0]
    assert shown == table, "README's time budget is stale: run python -m hashlib_edu.report"
