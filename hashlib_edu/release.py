"""Trained models to download instead of train: the bundle of the course's final weights.

A lecturer who has trained the course's models publishes them once::

    python -m hashlib_edu.release pack        # checkpoints/*.pt (finished ones) -> release/

``release/`` then holds ``manifest.json`` and one ``<name>.pt`` per finished checkpoint, with
the final weights only: the model's state, the loss's state (DPAH's anchors, OrthoHash's
targets), the history (``train_seconds``) and the epoch count -- no optimizer, scheduler or RNG
state, so nothing there can resume a run. Uploaded as the assets of the GitHub release
``models-v<version>`` (or anywhere else, see :func:`models_url`), they are what
:func:`hashlib_edu.training.train_model` looks for when a checkpoint is missing: a model in the
manifest is downloaded (:func:`fetch`), its sha256 checked against the manifest, and loaded
as a finished checkpoint instead of trained.

Where: ``$HASHLIB_EDU_MODELS_URL`` (an ``http(s)://`` or ``file://`` URL or a local folder;
empty: never download), by default :func:`default_models_url`. Never under the ``smoke``
profile unless that variable is set (CI is offline), never with ``HASHLIB_EDU_TRAIN=1``.
Offline, or with nothing published, a short notice is printed and the model is trained.

Safety: nothing here unpickles code. Checkpoints and bundles are read with
``torch.load(weights_only=True)`` (tensors and plain values only). A manifest entry names a
plain file inside the bundle's folder (no separators, no ``..``); a download stops at the
manifest's ``size`` and at an overall deadline (:data:`DOWNLOAD_DEADLINE`, or
``$HASHLIB_EDU_DOWNLOAD_SECONDS``), and is kept only after its sha256 matched, it proved a
bundle of final weights and (given ``expected_shapes``) it fits the model it is for. Every
file is written to a temporary name and renamed into place.

Precision: :func:`pack` stores float32 unless given a ``check`` that rebuilds a model and
shows its codes are identical in float16 (:func:`codes_check`): the state alone cannot say
whether half precision changes a code, so a bundle is only made smaller where it was shown
harmless. The manifest records each file's ``dtype``.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import pickle
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch
from torch import nn

from ._version import REPO_URL, __version__
from .files import atomic_write_bytes, atomic_write_text
from .profiles import (
    TRAIN_ENV,
    checkpoints_dir,
    get_profile,
    output_root,
    training_forced,
    use_training,
)

__all__ = [
    "MODELS_URL_ENV",
    "TRAIN_ENV",
    "DEADLINE_ENV",
    "MANIFEST",
    "MANIFEST_KEYS",
    "BUNDLE_FORMAT",
    "DOWNLOAD_DEADLINE",
    "ChecksumError",
    "ManifestError",
    "BundleError",
    "UnsafeCheckpointError",
    "check_entry",
    "default_models_url",
    "training_forced",
    "models_url",
    "sha256_file",
    "is_finished",
    "bundle_state",
    "codes_check",
    "pack",
    "read_manifest",
    "fetch",
    "use_training",
    "main",
]

#: Where trained models are looked for (a URL or folder holding ``manifest.json``).
MODELS_URL_ENV = "HASHLIB_EDU_MODELS_URL"
#: ``1`` (or ``true``/``yes``/``on``): always train, never download.
MANIFEST = "manifest.json"
#: The ``format`` field of a bundled model file and of the manifest.
BUNDLE_FORMAT = "hashlib_edu-model-1"
#: Seconds an http(s) request may stall before the location counts as unreachable (the
#: manifest: a short wait when offline; a model file: a slow link still gets through).
MANIFEST_TIMEOUT = 10.0
HTTP_TIMEOUT = 30.0
#: Seconds a whole model download may take (a drip-fed or endless transfer is abandoned then
#: and the model trained instead); ``$HASHLIB_EDU_DOWNLOAD_SECONDS`` or ``fetch(deadline=)``
#: set another.
DOWNLOAD_DEADLINE = 600.0
DEADLINE_ENV = "HASHLIB_EDU_DOWNLOAD_SECONDS"
#: The keys every manifest entry must have.
MANIFEST_KEYS = ("name", "file", "sha256", "size")
_CHUNK = 1 << 20
_FLOAT32_NOTE = ("float32 unless pack() was given a check that rebuilt the model and found "
                 "identical codes in float16 (then float16)")

#: A ``pack`` check: ``check(name, state, half_state) -> True`` when the model's codes are
#: identical with the float16 ``half_state`` as with the float32 ``state``.
Check = Callable[[str, Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]], bool]

_MANIFESTS: dict[str, dict[str, dict] | None] = {}  # http(s) manifests read by this process
_NOTICED: set[str] = set()


class ChecksumError(RuntimeError):
    """A downloaded model file whose sha256 or size is not the manifest's (it is never
    loaded)."""


class ManifestError(ValueError):
    """A manifest entry that is incomplete or names a file outside its bundle's folder
    (nothing is opened for it)."""


class BundleError(RuntimeError):
    """A verified download that is not a bundle of final weights, or not of the model it is
    meant for (it is not kept)."""


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint that holds Python objects beyond tensors and plain values: loading it
    would run code stored in it, so it is not loaded."""


# --------------------------------------------------------------------------- where


def default_models_url() -> str:
    """The course repository's release assets for this version:
    ``<REPO_URL>/releases/download/models-v<version>``."""
    return f"{REPO_URL}/releases/download/models-v{__version__}"


def models_url(profile: str | None = None) -> str | None:
    """Where trained models are looked for, or ``None`` when nothing may be downloaded.

    ``None`` with ``HASHLIB_EDU_TRAIN=1``; else ``$HASHLIB_EDU_MODELS_URL`` when set (empty:
    ``None``); else ``None`` under the ``smoke`` profile (CI is offline) and
    :func:`default_models_url` otherwise.
    """
    if training_forced():
        return None
    env = os.environ.get(MODELS_URL_ENV)
    if env is not None:
        return env.strip() or None
    if get_profile(profile) == "smoke":
        return None
    return default_models_url()


def _is_http(location: str) -> bool:
    return urllib.parse.urlparse(location).scheme in ("http", "https")


def _local_dir(location: str) -> Path:
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    return Path(location).expanduser()


def check_entry(entry: Any, where: str) -> dict:
    """A manifest entry, checked before anything is opened for it: a dict with every key of
    :data:`MANIFEST_KEYS`, ``file`` a plain file name (no folder separators, no ``..``, not
    absolute), ``sha256`` 64 hex digits, ``size`` a byte count.

    Args:
        entry: one item of the manifest's ``models`` list.
        where: the manifest's location, for the error message.

    Raises:
        ManifestError: naming the manifest, the entry and what is wrong.
    """
    fix = ("Repack the bundle (python -m hashlib_edu.release pack) and publish it again, point "
           f"{MODELS_URL_ENV} at another bundle, or train instead ({TRAIN_ENV}=1).")
    if not isinstance(entry, dict):
        raise ManifestError(f"The manifest {where} holds an entry that is not an object "
                            f"({entry!r:.80}). {fix}")
    label = entry.get("name", "without a name")
    missing = [key for key in MANIFEST_KEYS if key not in entry]
    if missing:
        raise ManifestError(f"The manifest {where}: entry {label!r} lacks {', '.join(missing)} "
                            f"(every entry needs {', '.join(MANIFEST_KEYS)}). {fix}")
    name, file, sha, size = (entry[key] for key in MANIFEST_KEYS)
    if not isinstance(name, str) or not name:
        raise ManifestError(f"The manifest {where}: an entry's name is {name!r}, not a "
                            f"non-empty string. {fix}")
    if not _is_plain_file_name(file):
        raise ManifestError(f"The manifest {where}: entry {name!r} names the file {file!r}, "
                            "which is not a plain file name inside the bundle's folder (no "
                            f"folders, no '..', not absolute); nothing was opened. {fix}")
    if (not isinstance(sha, str) or len(sha) != 64
            or any(c not in "0123456789abcdef" for c in sha.lower())):
        raise ManifestError(f"The manifest {where}: entry {name!r} has sha256 {sha!r}, not 64 "
                            f"hex digits. {fix}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestError(f"The manifest {where}: entry {name!r} has size {size!r}, not a "
                            f"byte count. {fix}")
    return entry


def _is_plain_file_name(file: Any) -> bool:
    """A file name alone: no separator of any system, not ``.``/``..``, no NUL, not absolute."""
    return (isinstance(file, str) and file not in ("", ".", "..") and "\0" not in file
            and "/" not in file and "\\" not in file
            and PurePosixPath(file).name == file and PureWindowsPath(file).name == file
            and not PureWindowsPath(file).drive)


def _open(location: str, filename: str, timeout: float = HTTP_TIMEOUT):
    """A binary stream of ``filename``, a plain file name (:func:`check_entry`), at
    ``location``: an http(s) response, or a regular file that lies in the local folder (raises
    ``OSError`` when absent, a device, a folder, or a link leading out of the folder)."""
    if not _is_plain_file_name(filename):
        raise ManifestError(f"{filename!r} is not a plain file name; refused.")
    if _is_http(location):
        url = f"{location.rstrip('/')}/{urllib.parse.quote(filename)}"
        return urllib.request.urlopen(url, timeout=timeout)  # http(s) only
    folder = _local_dir(location)
    path = folder / filename
    if not path.is_file():
        raise FileNotFoundError(f"no regular file {path}")
    if path.resolve().parent != folder.resolve():
        raise FileNotFoundError(f"{path} leads out of {folder}")
    return open(path, "rb")


def _notice(location: str, text: str) -> None:
    """Print ``text`` once per location and process (a notebook run has many models)."""
    if location not in _NOTICED:
        _NOTICED.add(location)
        print(text)


# --------------------------------------------------------------------------- packing


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_finished(state: Mapping[str, Any]) -> bool | None:
    """Whether a checkpoint saved by :func:`hashlib_edu.training.fit` is finished, ``None``
    when it cannot tell.

    Finished means its ``epoch`` equals the epochs its run asked for: the stored ``epochs``
    (checkpoints and bundles since this module exists). An older checkpoint without it is
    judged by its learning-rate schedule, which knows its length: a one-cycle (``total_steps``)
    or cosine (``T_max``) schedule that has taken all its steps is finished, one that has not
    is unfinished; without such a schedule (``constant``) it cannot tell.
    """
    if state.get("epochs") is not None:
        return int(state["epoch"]) == int(state["epochs"])
    schedule = state.get("scheduler") or {}
    for total in ("total_steps", "T_max"):
        if total in schedule and "last_epoch" in schedule:
            return int(schedule["last_epoch"]) >= int(schedule[total])
    return None


def _is_checkpoint(state: Any) -> bool:
    return isinstance(state, dict) and all(k in state for k in ("model", "epoch", "history"))


def bundle_state(state: Mapping[str, Any], half: bool = False) -> dict[str, Any]:
    """The bundled form of a finished checkpoint: model state (its float32 tensors in float16
    when ``half``), loss state, history and epoch count, without optimizer, scheduler or RNG
    state (:func:`hashlib_edu.training.fit` loads it as finished)."""
    model = dict(state["model"])
    if half:
        model = _half(model)
    return {"format": BUNDLE_FORMAT, "epoch": int(state["epoch"]), "epochs": int(state["epoch"]),
            "dtype": "float16" if half else "float32", "model": model,
            "loss_fn": state.get("loss_fn"), "history": dict(state["history"])}


def _half(model_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if torch.is_tensor(v) and v.dtype in (torch.float32, torch.float64)
            else v for k, v in model_state.items()}


def _half_is_safe(name: str, model_state: Mapping[str, torch.Tensor], check: Check) -> bool:
    """float16 keeps every value finite (no overflow past 65504) and ``check`` finds the same
    codes."""
    half = _half(model_state)
    for key, value in half.items():
        if torch.is_tensor(value) and value.is_floating_point():
            if not bool((torch.isfinite(value) | ~torch.isfinite(model_state[key])).all()):
                return False
    return bool(check(name, model_state, half))


def codes_check(build: Callable[[str], nn.Module | None], probe: torch.Tensor,
                threshold: float = 0.0) -> Check:
    """A ``pack(check=)`` callable that compares codes on a fixed probe batch.

    Args:
        build: ``build(name)`` -> a fresh network of the checkpoint ``name`` (its
            architecture; the weights are loaded here), or ``None`` when it does not know the
            name (the model then stays float32).
        probe: a deterministic batch of the network's inputs, e.g.
            ``prepare(data.images("query")[:256])`` (:func:`hashlib_edu.training.prepare`).
        threshold: codes are ``embed(probe) >= threshold`` (``0.5`` for sigmoid outputs).

    Returns:
        ``check(name, state, half_state)``: ``True`` when both states give identical codes.
    """
    def check(name: str, state: Mapping[str, torch.Tensor],
              half_state: Mapping[str, torch.Tensor]) -> bool:
        model = build(name)
        if model is None:
            return False
        codes = []
        for weights in (state, half_state):
            model.load_state_dict(weights)  # float16 values are copied into float32 tensors
            model.eval()
            with torch.no_grad():
                out = model.embed(probe) if hasattr(model, "embed") else model(probe)
            codes.append(out.float() >= threshold)
        return torch.equal(codes[0], codes[1])

    return check


def _manifest_entries(out: Path) -> dict[str, dict]:
    """The entries of an existing ``out/manifest.json`` that are well formed and whose files,
    inside ``out``, are still intact; the others are dropped with a printed reason."""
    try:
        models = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    kept = {}
    for entry in models if isinstance(models, list) else []:
        try:
            check_entry(entry, str(out / MANIFEST))
        except ManifestError as err:
            print(f"dropped from the manifest: {err}")
            continue
        path = out / entry["file"]
        if (path.is_file() and path.resolve().parent == out.resolve()
                and sha256_file(path) == entry["sha256"]):
            kept[entry["name"]] = entry
    return kept


def _load_checkpoint(path: Path) -> Any:
    """A checkpoint read with ``weights_only=True`` (tensors and plain values only).

    Raises:
        UnsafeCheckpointError: a ``torch.save`` archive that holds other Python objects.
        Exception: whatever ``torch.load`` raises for a file that is not a checkpoint.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not zipfile.is_zipfile(path):
            raise
        raise UnsafeCheckpointError(
            f"{path} holds Python objects beyond tensors and plain values, so it was not "
            "loaded: loading it would run code stored in it. If it is a checkpoint of an "
            "older hashlib_edu that you trained yourself, train it again (delete it and rerun "
            "its notebook); otherwise move it out of the checkpoints folder, or pack the "
            f"others with --only PATTERN. ({str(err).splitlines()[-1][:200]})") from err


def pack(checkpoints: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
         only: str | None = None, check: Check | None = None,
         profile: str | None = None) -> list[dict]:
    """Write the bundle of the finished checkpoints: ``out/<name>.pt`` and ``out/manifest.json``.

    Args:
        checkpoints: the folder of ``<name>.pt`` checkpoints, searched recursively (default:
            the profile's ``checkpoints/``).
        out: the bundle folder (default: ``release/`` under the profile's output root). An
            existing manifest there is updated: models packed again replace their entries,
            the others stay while their files are intact.
        only: a glob on checkpoint names (e.g. ``"cifar10-1k-dsh-*"``).
        check: see :func:`codes_check`; without it every model is stored in float32.
        profile: the profile whose folders are the defaults.

    Unfinished checkpoints, and old ones that cannot tell (:func:`is_finished`), are skipped
    with a printed reason. Returns the manifest's entries (name, file, sha256, size, dtype,
    epochs, train_seconds).
    """
    src = Path(checkpoints) if checkpoints is not None else checkpoints_dir(profile)
    dst = Path(out) if out is not None else output_root(profile) / "release"
    if not src.is_dir():
        raise FileNotFoundError(f"No checkpoints folder {src}: train the course's models first "
                                "(run the notebooks or python -m hashlib_edu.reproduce), or "
                                "pass --checkpoints DIR.")
    dst.mkdir(parents=True, exist_ok=True)
    entries = _manifest_entries(dst)
    for path in sorted(src.rglob("*.pt")):
        # a checkpoint's name is its path under checkpoints/ (a folder per protocol and
        # regime); its bundle file is that name flattened into one plain file name
        name = path.relative_to(src).with_suffix("").as_posix()
        if only is not None and not fnmatch.fnmatchcase(name, only):
            continue
        try:
            state = _load_checkpoint(path)
        except UnsafeCheckpointError:
            raise
        except Exception as err:  # skipped, saying why
            print(f"skipped {name}: not readable ({type(err).__name__}: {err}).")
            continue
        if not _is_checkpoint(state):
            print(f"skipped {name}: not a checkpoint of hashlib_edu.training.fit.")
            continue
        finished = is_finished(state)
        if finished is None:
            print(f"skipped {name}: saved by an older hashlib_edu without its total epochs, and "
                  "its schedule cannot tell whether it is finished; train it again (delete it "
                  "and rerun its notebook) to publish it.")
            continue
        if not finished:
            total = state.get("epochs")
            of = f" of {total}" if total is not None else ""
            print(f"skipped {name}: unfinished (epoch {state['epoch']}{of}); finish training it "
                  "first (rerun its notebook: it resumes).")
            continue
        half = check is not None and _half_is_safe(name, state["model"], check)
        bundle = bundle_state(state, half=half)
        target = dst / f"{name.replace('/', '--')}.pt"
        buffer = io.BytesIO()
        torch.save(bundle, buffer)
        buffer.seek(0)
        torch.load(buffer, map_location="cpu", weights_only=True)  # loadable without code
        atomic_write_bytes(target, buffer.getvalue())
        history = bundle["history"]
        entries[name] = {"name": name, "file": target.name, "sha256": sha256_file(target),
                         "size": target.stat().st_size, "dtype": bundle["dtype"],
                         "epochs": bundle["epochs"],
                         "train_seconds": float(sum(history.get("seconds", [])))}
        print(f"packed {name} ({bundle['dtype']}, {entries[name]['size'] / 1e6:.1f} MB)")
    manifest = {"format": BUNDLE_FORMAT, "version": __version__, "dtype_note": _FLOAT32_NOTE,
                "models": [entries[name] for name in sorted(entries)]}
    atomic_write_text(dst / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest["models"]


# --------------------------------------------------------------------------- downloading


def read_manifest(location: str) -> dict[str, dict] | None:
    """The manifest at ``location`` as ``{name: entry}``, or ``None`` (with one printed notice)
    when it cannot be read: offline, nothing published there, not a manifest. An http(s)
    manifest is read once per process.

    Raises:
        ManifestError: a manifest whose entries are incomplete or name files outside the
            bundle's folder (:func:`check_entry`).
    """
    if _is_http(location) and location in _MANIFESTS:
        return _MANIFESTS[location]
    try:
        with _open(location, MANIFEST, MANIFEST_TIMEOUT) as f:
            data = json.loads(f.read().decode("utf-8"))
        models = data["models"]
        if not isinstance(models, list):
            raise TypeError("its models are not a list")
    except (OSError, ValueError, KeyError, TypeError) as err:
        reason = getattr(err, "reason", None) or type(err).__name__
        if location == default_models_url():  # the course's own address: nothing published
            _notice(location, "Training the models here (no published models to download; "
                              f"see {MODELS_URL_ENV} in the README).")
        else:
            _notice(location, f"No trained models found at {location} ({reason}): training "
                              f"instead (set {MODELS_URL_ENV} to look elsewhere).")
        models = None
    if models is not None:
        where = f"{location.rstrip('/')}/{MANIFEST}"
        models = {entry["name"]: entry for entry in (check_entry(e, where) for e in models)}
    if _is_http(location):
        _MANIFESTS[location] = models
    return models


def _check_bundle(path: Path, name: str, entry: Mapping[str, Any],
                  expected_shapes: Mapping[str, tuple[int, ...]] | None) -> None:
    """A verified download is a bundle: loadable without pickled code, final weights only, and
    (given ``expected_shapes``) the model state of the network it is meant for."""
    fix = ("Repack the bundle at its source (python -m hashlib_edu.release pack) or train "
           f"instead ({TRAIN_ENV}=1).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BundleError(f"{entry['file']} matches the manifest's sha256 but is not a "
                          f"hashlib_edu model bundle ({str(err).splitlines()[0][:200]}); it was "
                          f"not kept. {fix}") from err
    if not _is_checkpoint(state) or "optimizer" in state or not is_finished(state):
        raise BundleError(f"{entry['file']} is not the final weights of a finished {name}; it "
                          f"was not kept. {fix}")
    if expected_shapes is None:
        return
    model = state["model"]
    if not isinstance(model, Mapping):
        raise BundleError(f"{entry['file']} holds no model state for {name}; it was not kept. "
                          f"{fix}")
    got = {k: tuple(v.shape) if torch.is_tensor(v) else None for k, v in model.items()}
    want = {k: tuple(v) for k, v in expected_shapes.items()}
    problems = [f"missing {k}" for k in sorted(set(want) - set(got))]
    problems += [f"unexpected {k}" for k in sorted(set(got) - set(want))]
    problems += [f"{k} is {got[k]} in the bundle, {want[k]} in the model"
                 for k in sorted(set(want) & set(got)) if got[k] != want[k]]
    if problems:
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more"
                                           if len(problems) > 4 else "")
        raise BundleError(f"{entry['file']} (manifest name {name!r}) is not a model of the "
                          f"network it is for ({shown}): the bundle labels another model "
                          f"with this name. It was not kept. {fix}")


def _deadline(deadline: float | None) -> float:
    """Seconds a download may take: ``deadline``, else ``$HASHLIB_EDU_DOWNLOAD_SECONDS``, else
    :data:`DOWNLOAD_DEADLINE`."""
    if deadline is None:
        env = os.environ.get(DEADLINE_ENV, "").strip()
        try:
            deadline = float(env) if env else DOWNLOAD_DEADLINE
        except ValueError:
            raise ValueError(f"{DEADLINE_ENV}={env!r} is not a number of seconds; set it to "
                             f"e.g. {DOWNLOAD_DEADLINE:.0f} or unset it.") from None
    if not deadline > 0:
        raise ValueError(f"A download deadline must be positive seconds; got {deadline!r}.")
    return float(deadline)


class _TooSlow(OSError):
    """The download did not finish before its deadline."""


def _copy_capped(src, out, size: int, end: float, digest) -> int:
    """Copy ``src`` into ``out`` and ``digest`` until EOF; returns the bytes copied.

    Raises:
        ChecksumError: more than ``size`` bytes arrived (stopped at the first byte too many).
        _TooSlow: ``time.monotonic()`` passed ``end``.
    """
    read = getattr(src, "read1", src.read)  # what has arrived, never waiting for a full chunk
    copied = 0
    while True:
        if time.monotonic() > end:
            raise _TooSlow(f"not complete by the download deadline: {copied} of {size} bytes")
        chunk = read(min(_CHUNK, size + 1 - copied))
        if not chunk:
            return copied
        copied += len(chunk)
        if copied > size:
            raise ChecksumError(f"more than the manifest's {size} bytes")
        digest.update(chunk)
        out.write(chunk)


def fetch(name: str, dest: str | os.PathLike, profile: str | None = None,
          location: str | None = None, *,
          expected_shapes: Mapping[str, tuple[int, ...]] | None = None,
          deadline: float | None = None) -> bool:
    """Download the trained model ``name`` to ``dest`` when :func:`models_url` (or
    ``location``) has it; ``True`` when ``dest`` now holds it.

    ``False`` (train instead) when downloads are off, the location is unreachable or too slow
    (one printed notice) or its manifest has no ``name``. The file is written next to ``dest``
    and moved there only after its size and sha256 matched the manifest and it proved a
    bundle (of the right network, given ``expected_shapes``).

    Args:
        name: the model's name in the manifest (its checkpoint's stem).
        dest: where the checkpoint goes.
        profile, location: where to look (see :func:`models_url`).
        expected_shapes: ``{key: shape}`` of the network's ``state_dict()`` (e.g.
            ``{k: tuple(v.shape) for k, v in model.state_dict().items()}``); the bundle's
            model state must have exactly these keys and shapes.
        deadline: seconds the whole download may take (default: ``$HASHLIB_EDU_DOWNLOAD_SECONDS``,
            else :data:`DOWNLOAD_DEADLINE`); past it the transfer stops and ``False`` is
            returned.

    Raises:
        ManifestError: the manifest's entries are incomplete or name a file outside the
            bundle's folder (nothing is opened).
        ChecksumError: the downloaded file is not the one the manifest describes: more bytes
            than its ``size``, or another sha256 (no file is left in ``dest``'s folder).
        BundleError: the file is the manifest's but not a bundle of final weights, or not of
            the network ``expected_shapes`` describes (not kept).
    """
    loc = location if location is not None else models_url(profile)
    if loc is None:
        return False
    seconds = _deadline(deadline)
    manifest = read_manifest(loc)
    if manifest is None or name not in manifest:
        return False
    entry, dest = manifest[name], Path(dest)
    file, expected_size = entry["file"], entry["size"]
    end = time.monotonic() + seconds
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{file}.", suffix=".download", dir=dest.parent)
    tmp, digest, size = Path(tmp_name), hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with _open(loc, file, min(HTTP_TIMEOUT, seconds)) as src:
                    announced = getattr(src, "headers", {}).get("Content-Length")
                    if announced is not None and announced.isdigit() \
                            and int(announced) > expected_size:
                        raise ChecksumError(f"announced as {announced} bytes")
                    size = _copy_capped(src, out, expected_size, end, digest)
                out.flush()
                os.fsync(out.fileno())
            except ChecksumError as err:
                raise ChecksumError(
                    f"The download of {file} from {loc} was stopped: {err}, the manifest "
                    f"gives {expected_size} bytes. It was not kept nor loaded. The copy at "
                    f"{loc} is not the one the manifest describes: delete it and pack or "
                    f"upload it again, point {MODELS_URL_ENV} at a correct bundle, or train "
                    f"instead (TRAIN = True in the notebook, or {TRAIN_ENV}=1).") from None
            except (OSError, ValueError) as err:
                reason = getattr(err, "reason", None) or f"{type(err).__name__}: {err}"
                more = ""
                if isinstance(err, _TooSlow):
                    reason, more = str(err), (f" after {seconds:g} s; allow more time with "
                                              f"{DEADLINE_ENV}=SECONDS")
                print(f"Could not download {file} from {loc} ({reason}{more}): training "
                      "instead.")
                return False
        actual = digest.hexdigest()
        if size != expected_size or actual != entry["sha256"]:
            raise ChecksumError(
                f"The downloaded {file} (from {loc}, {size} bytes) does not match its "
                f"manifest: expected {expected_size} bytes and sha256 {entry['sha256']}, got "
                f"sha256 {actual}. It was not kept "
                f"nor loaded. To proceed: try again (a cut or altered transfer); if the copy at "
                f"{loc} is damaged, delete it and pack or upload it again; or train instead "
                "(TRAIN = True in "
                f"the notebook, i.e. train_model(..., download=False), or {TRAIN_ENV}=1); or "
                f"point {MODELS_URL_ENV} at a correct bundle.")
        _check_bundle(tmp, name, entry, expected_shapes)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"Downloaded the trained model {name} ({size / 1e6:.1f} MB, sha256 verified) "
          f"from {loc}.")
    return True


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m hashlib_edu.release pack [--checkpoints DIR] [--out DIR] [--only PATTERN]``."""
    parser = argparse.ArgumentParser(
        prog="python -m hashlib_edu.release",
        description="Bundle the final weights of the course's trained models for download.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pack", help="write <out>/<name>.pt + manifest.json of every "
                                         "finished checkpoint (float32)")
    p.add_argument("--checkpoints", type=Path, default=None,
                   help="checkpoints folder (default: the profile's checkpoints/)")
    p.add_argument("--out", type=Path, default=None,
                   help="bundle folder (default: release/ under the profile's output root)")
    p.add_argument("--only", default=None, metavar="PATTERN",
                   help="glob on checkpoint names, e.g. 'cifar10-1k-dsh-*'")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else output_root() / "release"
    entries = pack(args.checkpoints, out, only=args.only)
    if not entries:
        print(f"Nothing packed into {out}: no finished checkpoint matched.")
        return 1
    print(f"{len(entries)} model(s) in {out / MANIFEST}: upload {out}/* as the assets of the "
          f"GitHub release models-v{__version__} (or anywhere, and set {MODELS_URL_ENV}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
