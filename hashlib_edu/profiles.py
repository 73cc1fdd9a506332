"""Run profiles (smoke / quick / paper) and where a run writes its figures and results.

* ``smoke`` -- CI: seconds per notebook, tiny data, outputs to a temporary directory.
* ``quick`` -- CPU: minutes per notebook, the real protocol with short schedules.
* ``paper`` -- GPU: the paper's schedule.

``HASHLIB_EDU_PROFILE`` chooses; the default is ``quick`` on every device (``paper`` is
opt-in: its schedules take hours even on a GPU). A ``smoke`` run never writes over the committed ``figures/`` and
``results/``: it writes to ``$HASHLIB_EDU_OUTPUT`` or a fresh temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = [
    "PROFILES",
    "get_profile",
    "use_profile",
    "project_root",
    "output_root",
    "figures_dir",
    "results_dir",
    "checkpoints_dir",
    "figure_path",
]

PROFILES = ("smoke", "quick", "paper")
_SMOKE_TMP: Path | None = None


def get_profile(profile: str | None = None) -> str:
    """Resolve the run profile: the argument, else ``$HASHLIB_EDU_PROFILE``, else ``"quick"``
    on every device (``"paper"``, the papers' long schedules, is opt-in, also on a GPU)."""
    name = (profile or os.environ.get("HASHLIB_EDU_PROFILE") or "quick").strip().lower()
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}; choose one of {', '.join(PROFILES)} "
            "(argument or HASHLIB_EDU_PROFILE)."
        )
    return name


def use_profile(profile: str | None = None) -> str:
    """Resolve the profile (as :func:`get_profile`) and make it this process's profile, so
    every later call without an explicit profile (figure and results folders) agrees with a
    notebook's ``PROFILE`` parameter. Returns the resolved name."""
    name = get_profile(profile)
    os.environ["HASHLIB_EDU_PROFILE"] = name
    return name


def project_root() -> Path:
    """The course checkout: ``$HASHLIB_EDU_ROOT``, else the folder holding this package
    when it has ``notebooks/`` beside it (a clone), else the current directory."""
    env = os.environ.get("HASHLIB_EDU_ROOT")
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve().parents[1]
    if (here / "notebooks").is_dir():
        return here
    return Path.cwd()


def output_root(profile: str | None = None) -> Path:
    """Root under which ``figures/``, ``results/`` and ``checkpoints/`` are written.

    The project root for ``quick`` and ``paper``; for ``smoke``, ``$HASHLIB_EDU_OUTPUT``
    or one temporary folder per process, so tests never touch committed outputs.
    """
    global _SMOKE_TMP
    if get_profile(profile) != "smoke":
        return project_root()
    env = os.environ.get("HASHLIB_EDU_OUTPUT")
    if env:
        return Path(env).expanduser()
    if _SMOKE_TMP is None:
        _SMOKE_TMP = Path(tempfile.mkdtemp(prefix="hashlib_edu-smoke-"))
    return _SMOKE_TMP


def _sub(name: str, profile: str | None) -> Path:
    path = output_root(profile) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir(profile: str | None = None) -> Path:
    """Folder for figures (``figures/`` in the project; a temporary one under smoke)."""
    return _sub("figures", profile)


def results_dir(profile: str | None = None) -> Path:
    """Folder for results JSON and codes (``results/``; temporary under smoke)."""
    return _sub("results", profile)


def checkpoints_dir(profile: str | None = None) -> Path:
    """Folder for model checkpoints (``checkpoints/``, git-ignored; temporary under smoke)."""
    return _sub("checkpoints", profile)


def figure_path(name: str, profile: str | None = None) -> Path:
    """Path of a figure file with a stable name, e.g. ``figure_path("cifar10_examples.png")``."""
    return figures_dir(profile) / name
