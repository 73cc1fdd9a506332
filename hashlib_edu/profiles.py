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
    "EPOCH_SECONDS",
    "epoch_seconds",
    "time_budget_table",
    "training_plan",
    "TRAIN_ENV",
    "training_forced",
    "use_training",
]

PROFILES = ("smoke", "quick", "paper")
#: Set to 1 to train every model here and never download one (a notebook's ``TRAIN = True``).
TRAIN_ENV = "HASHLIB_EDU_TRAIN"
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


# ------------------------------------------------------------------- time budget

#: Seconds one training epoch takes, per ``(backbone, protocol, device type)``, and whether the
#: figure was measured (on this course's 2-core CPU, or on a GPU) or is an estimate. The
#: README's "Time budget" shows the same table. ``small``: the shared small backbone from
#: scratch; ``dshnet``: DSH's own CIFAR network (notebook 04); ``efficientnet_lite0-last``: the
#: ``finetune-last`` regime on cached activations (after the one-time activation cache,
#: 27.5–33 minutes measured on the CPU); ``efficientnet_lite0`` / ``alexnet``: the whole
#: backbone at 224 px. CPU figures marked "measured" come from ``fit``'s defaults on this
#: course's CPU, which has bfloat16 units (``results/*.json`` record ``precision``); a CPU
#: without them trains in float32, about 1.75x slower (measured: 32.4 s against 18.3 s for ten
#: DPAH epochs on the validation split). "measured in float32": not re-measured since.
EPOCH_SECONDS: dict[tuple[str, str, str], tuple[float, str]] = {
    ("small", "cifar10-1k", "cpu"): (2.0, "measured"),
    ("small", "cifar10-dsh", "cpu"): (55.0, "measured in float32"),
    ("dshnet", "cifar10-1k", "cpu"): (1.2, "measured"),
    ("dshnet", "cifar10-dsh", "cpu"): (13.3, "measured"),
    ("efficientnet_lite0-last", "cifar10-1k", "cpu"): (15.5, "measured in float32"),
    ("efficientnet_lite0", "cifar10-1k", "cpu"): (330.0, "estimate"),
    ("small", "cifar10-1k", "cuda"): (1.0, "estimate"),
    ("small", "cifar10-dsh", "cuda"): (8.0, "estimate"),
    ("dshnet", "cifar10-1k", "cuda"): (0.5, "estimate"),
    ("dshnet", "cifar10-dsh", "cuda"): (5.0, "estimate"),
    ("efficientnet_lite0-last", "cifar10-1k", "cuda"): (1.0, "estimate"),
    ("efficientnet_lite0", "cifar10-1k", "cuda"): (12.0, "estimate"),
    ("alexnet", "cifar10-1k", "cuda"): (8.0, "estimate"),
}


def _device_kind(device) -> str:
    """``"cuda"`` for a CUDA device (``"cuda"``, ``"cuda:0"``, a ``torch.device``), else ``"cpu"``."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


def time_budget_table() -> str:
    """:data:`EPOCH_SECONDS` as the Markdown table of the README's "Time budget" (written there by
    ``python -m hashlib_edu.report``; a test checks that the README shows this table)."""
    lines = ["| backbone | protocol | device | seconds per epoch | source |",
             "|---|---|---|---:|---|"]
    lines += [f"| `{backbone}` | `{protocol}` | {device} | {seconds:g} | {source} |"
              for (backbone, protocol, device), (seconds, source) in EPOCH_SECONDS.items()]
    return "\n".join(lines)


def epoch_seconds(backbone: str = "small", protocol: str = "cifar10-1k",
                  device: str = "cpu") -> tuple[float, str]:
    """``(seconds, "measured" | "estimate")`` of one training epoch from :data:`EPOCH_SECONDS`
    (``device``: ``"cpu"``, ``"cuda"`` or a ``torch.device``; ``mps`` counts as ``cpu``). An
    unknown combination raises ``KeyError`` naming the known ones."""
    kind = _device_kind(device)
    key = (backbone, protocol, kind)
    if key not in EPOCH_SECONDS:
        known = ", ".join(f"{b}/{p}/{d}" for b, p, d in EPOCH_SECONDS)
        raise KeyError(f"No time figure for backbone {backbone!r} on {protocol!r} ({kind}); "
                       f"known: {known}.")
    return EPOCH_SECONDS[key]


def training_plan(n_models: int, epochs: int, *, backbone: str,
                  protocol: str = "cifar10-1k", device: str = "cpu") -> str:
    """One line a notebook prints before it trains: how many models, how many epochs, and
    the time that takes from :data:`EPOCH_SECONDS` (marked as measured or as an estimate).
    ``backbone`` has no default: the same epochs take minutes on the small backbone and
    hours on a pretrained one. This is a guess made before training; ``fit`` prints its own
    estimate for this machine after a run's first epoch.
    Models already trained (a local checkpoint or a download) take seconds instead. Under the
    ``smoke`` profile (small subsets) it says so instead of quoting full-protocol minutes."""
    if n_models < 0 or epochs < 0:
        raise ValueError(f"n_models and epochs must be >= 0; got {n_models}, {epochs}.")
    if get_profile() == "smoke":  # the per-epoch figures are for the full protocols
        return (f"This cell trains {n_models} model{'s' if n_models != 1 else ''} of {epochs} "
                f"epoch{'s' if epochs != 1 else ''} on the smoke profile's small subsets: "
                "seconds each.")
    seconds, source = epoch_seconds(backbone, protocol, device)
    total = n_models * epochs * seconds / 60
    return (f"This cell trains {n_models} model{'s' if n_models != 1 else ''} of {epochs} "
            f"epoch{'s' if epochs != 1 else ''} ({backbone} backbone, {protocol}): about "
            f"{total:.0f} min on {_device_kind(device)} ({source}, {seconds:g} s an epoch); "
            "a model already trained loads in seconds.")


# ------------------------------------------------------------------- train or download


def training_forced() -> bool:
    """``$HASHLIB_EDU_TRAIN`` is ``1`` / ``true`` / ``yes`` / ``on``: train, never download."""
    return os.environ.get(TRAIN_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def use_training(train: bool) -> bool:
    """A notebook's ``TRAIN`` parameter: ``True`` sets ``$HASHLIB_EDU_TRAIN`` for this process,
    so every model trains here and nothing is downloaded (a local finished checkpoint still
    loads); ``False`` leaves the environment as it is. Returns :func:`training_forced`."""
    if not isinstance(train, bool):
        raise TypeError(f"TRAIN must be True or False, got {train!r}.")
    if train:
        os.environ[TRAIN_ENV] = "1"
    return training_forced()
