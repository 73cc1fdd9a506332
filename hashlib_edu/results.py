"""One results writer for every method notebook, and readers for what it wrote.

For each trained (method, bits) :func:`save_results` evaluates the codes and writes

* ``<folder>/<method>-<bits>.json`` -- the numbers (schema below);
* ``<folder>/codes/<method>-<bits>.npz`` -- the packed codes with the
  query/database indices and labels, so anyone can re-check every number.

The folder (:func:`results_folder`) keeps runs of different profiles, regimes and backbones
apart, so their files never share a name: ``results/<protocol>/`` for networks trained from
scratch under ``quick`` (the course's CPU results), else
``results/<protocol>/<profile>-<regime>-<backbone>/``.

JSON keys: ``method, bits, protocol, regime, backbone, map, map_tie_aware, map_at_1000,
map_at_1000_tie_aware, p_at_h2, p_at_h2_empty_fraction, p_at_500, p_at_500_tie_aware,
p_at_1500, p_at_1500_tie_aware, train_seconds, encode_seconds, epochs, profile, device, seed,
version, commit, paper_map`` (``null`` when none), plus any extra ``run_info`` (e.g.
``recipe``). ``map``, ``map_at_1000``, ``p_at_500`` and ``p_at_1500`` rank equal Hamming
distances in database order (what argsort-based evaluation code gives; kept for
compatibility); their ``*_tie_aware`` twins are the exact expectation under a random order
inside each tie -- the headline numbers, since the database is sorted by class and its order
is not neutral.
:func:`refresh` adds the keys a newer version of this schema has to older JSON files.
npz arrays: ``query_codes``, ``db_codes`` (``np.packbits`` of ``{0,1}`` bits, bit 1 <=> +1),
``n_bits``, ``query_idx``, ``db_idx`` (indices into ``load_cifar10()``), ``query_labels``,
``db_labels``.

Both files are written whole or not at all (to a temporary name, renamed into place), the codes
first: a result counts only when its JSON file and its codes file are both there and readable
(:func:`result_is_complete`). A results file that cannot be read is named in the error
(:class:`ResultsFileError`), or skipped with a warning naming it where the reader allows.
"""

from __future__ import annotations

import json
import math
import subprocess
import warnings
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .codes import as_numpy, check_binary, pack_codes, unpack_codes
from .files import atomic_savez_compressed, atomic_write_text
from .metrics import evaluate_retrieval
from .profiles import get_profile, project_root, results_dir

__all__ = ["RESULT_KEYS", "REGIMES", "evaluate_codes", "save_results", "load_results",
           "load_codes", "codes_path", "result_path", "results_folder", "git_commit", "refresh",
           "METRIC_KEYS", "CODES_KEYS", "ResultsFileError", "read_result", "result_is_complete"]

#: How a network's backbone was trained: from scratch, frozen ImageNet features, the last
#: stage fine-tuned on cached activations, or the whole backbone fine-tuned.
REGIMES = ("scratch", "frozen", "finetune-last", "finetune")

RESULT_KEYS = (
    "method", "bits", "protocol", "regime", "backbone", "map", "map_tie_aware", "map_at_1000",
    "map_at_1000_tie_aware", "p_at_h2", "p_at_h2_empty_fraction", "p_at_500",
    "p_at_500_tie_aware", "p_at_1500", "p_at_1500_tie_aware", "train_seconds",
    "encode_seconds", "epochs", "profile", "device", "seed", "version", "commit", "paper_map",
)


def git_commit() -> str | None:
    """The project's current git commit (``None`` outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(),
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


#: The keys :func:`evaluate_codes` fills, in :data:`RESULT_KEYS` order.
METRIC_KEYS = RESULT_KEYS[RESULT_KEYS.index("map"): RESULT_KEYS.index("train_seconds")]

#: The arrays of a codes file.
CODES_KEYS = ("query_codes", "db_codes", "n_bits", "query_idx", "db_idx", "query_labels",
              "db_labels")


class ResultsFileError(ValueError):
    """A results JSON or codes file that cannot be read; the message names it and says what
    to do."""


def _fix(path: Path) -> str:
    return (f"Delete {path} (and its twin: the JSON beside codes/, or codes/<name>.npz) and "
            "rerun what wrote it (its notebook or python -m hashlib_edu.reproduce), or restore "
            f"the committed copy (git checkout -- {path}).")


def evaluate_codes(query_codes, db_codes, query_labels, db_labels) -> dict[str, float]:
    """The headline numbers of one set of codes, from one pass over the distances
    (:func:`hashlib_edu.metrics.evaluate_retrieval`).

    Args:
        query_codes: ``(nq, k)`` in ``{-1, +1}`` or ``{0, 1}``.
        db_codes: ``(nd, k)`` likewise.
        query_labels, db_labels: ``(nq,)`` / ``(nd,)`` class ids or multi-hot.

    Returns:
        dict of floats, keys :data:`METRIC_KEYS`: ``map``, ``map_tie_aware`` (mAP@all),
        ``map_at_1000`` and its ``_tie_aware`` twin, ``p_at_h2``, ``p_at_h2_empty_fraction``,
        ``p_at_500``, ``p_at_1500`` and their ``_tie_aware`` twins. A database smaller than
        1,000 (1,500) items gives mAP@nd = mAP@all (P@nd) under those names.
    """
    nd = max(1, len(db_codes))  # an empty database is reported by evaluate_retrieval
    s = evaluate_retrieval(query_codes, db_codes, query_labels, db_labels,
                           top_k=min(1000, nd), radius=2, ns=(min(500, nd), min(1500, nd)))
    return {
        "map": s.map,
        "map_tie_aware": s.map_tie_aware,
        "map_at_1000": s.map_at_k,
        "map_at_1000_tie_aware": s.map_at_k_tie_aware,
        "p_at_h2": s.p_within_radius,
        "p_at_h2_empty_fraction": s.empty_fraction,
        "p_at_500": float(s.p_at_n[0]),
        "p_at_500_tie_aware": float(s.p_at_n_tie_aware[0]),
        "p_at_1500": float(s.p_at_n[1]),
        "p_at_1500_tie_aware": float(s.p_at_n_tie_aware[1]),
    }


def _clean(value: Any) -> Any:
    """JSON-safe values: numpy scalars to Python, NaN to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def results_folder(protocol: str, profile: str | None = None, regime: str = "scratch",
                   backbone: str = "small", root: str | Path | None = None) -> Path:
    """The folder of one (protocol, profile, regime, backbone)'s results:
    ``results/<protocol>/`` for ``regime="scratch"`` under ``quick`` (or ``smoke``, whose
    ``results/`` is temporary) -- the backbone trained from scratch is then part of the
    method (the small backbone, or DSH's own network) -- else
    ``results/<protocol>/<profile>-<regime>-<backbone>/``. ``root`` replaces ``results/``."""
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}; got {regime!r}.")
    profile = get_profile(profile)
    base = (Path(root) if root is not None else results_dir(profile)) / protocol
    if regime == "scratch" and profile in ("quick", "smoke"):
        return base
    return base / f"{profile}-{regime}-{backbone}"


def save_results(method: str, bits: int, protocol: str, query_codes, db_codes, split, labels,
                 *, regime: str = "scratch", backbone: str = "small", **run_info) -> dict:
    """Evaluate codes and write ``results/<protocol>/<method>-<bits>.json`` and the codes npz.

    Args:
        method: short name, e.g. ``"cnnbh"`` (letters, digits, ``_``, ``-`` and ``.``).
        bits: code length ``k``.
        protocol: e.g. ``"cifar10-1k"``.
        query_codes: ``(nq, k)`` binary codes of the queries, in ``split[0]`` order.
        db_codes: ``(nd, k)`` binary codes of the database, in ``split[-1]`` order.
        split: ``(query_idx, train_idx, db_idx)`` (or ``(query_idx, db_idx)``),
            indices into ``labels``.
        labels: ``(N,)`` or ``(N, c)`` labels of the whole dataset.
        regime: one of :data:`REGIMES` (how the backbone was trained).
        backbone: ``"small"`` (the shared small backbone), ``"dshnet"`` (DSH's own network)
            or a pretrained backbone's name.
        **run_info: ``train_seconds``, ``encode_seconds``, ``epochs``, ``profile``,
            ``device``, ``seed``, ``paper_map`` and anything else worth keeping
            (e.g. ``recipe``); the profile decides the folder (temporary under ``smoke``).

    Returns:
        The dict written to JSON (with ``"json_path"`` and ``"codes_path"`` added).
    """
    name = f"{method}-{bits}"
    if not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError(f"method {method!r} must use letters, digits, '_', '-' or '.' only.")
    if len(split) not in (2, 3):
        raise ValueError("split must be (query_idx, train_idx, db_idx) or (query_idx, db_idx).")
    query_idx, db_idx = np.asarray(split[0], np.int64), np.asarray(split[-1], np.int64)
    q, _ = check_binary(query_codes, "query_codes")
    d, _ = check_binary(db_codes, "db_codes")
    if q.shape[1] != bits or d.shape[1] != bits:
        raise ValueError(f"codes have {q.shape[1]} / {d.shape[1]} bits but bits={bits}.")
    if len(q) != len(query_idx) or len(d) != len(db_idx):
        raise ValueError(
            f"{len(q)} query codes for {len(query_idx)} query indices and {len(d)} database "
            f"codes for {len(db_idx)} database indices: they must match one to one.")
    labels = as_numpy(labels)
    q_labels, d_labels = labels[query_idx], labels[db_idx]
    profile = get_profile(run_info.pop("profile", None))
    record = {key: None for key in RESULT_KEYS}
    record.update(method=method, bits=int(bits), protocol=protocol, regime=regime,
                  backbone=backbone, profile=profile,
                  version=__version__, commit=git_commit(), paper_map=None)
    record.update(evaluate_codes(q, d, q_labels, d_labels))
    record.update(run_info)
    codes_file = codes_path(protocol, method, bits, profile, regime=regime, backbone=backbone)
    json_path = codes_file.parent.parent / f"{name}.json"
    json_path.unlink(missing_ok=True)  # an old JSON never stands beside new codes
    atomic_savez_compressed(codes_file, query_codes=pack_codes(q), db_codes=pack_codes(d),
                            n_bits=np.int64(bits), query_idx=query_idx, db_idx=db_idx,
                            query_labels=q_labels, db_labels=d_labels)
    record = _clean(record)
    atomic_write_text(json_path, json.dumps(record, indent=2, sort_keys=False) + "\n")
    return {**record, "json_path": str(json_path), "codes_path": str(codes_file)}


def codes_path(protocol: str, method: str | None = None, bits: int | None = None,
               profile: str | None = None, root: str | Path | None = None,
               regime: str = "scratch", backbone: str = "small") -> Path:
    """Where :func:`save_results` puts codes: ``<results_folder>/codes/<method>-<bits>.npz``
    (the folder itself when ``method`` is ``None``); ``root`` replaces this profile's
    ``results/``."""
    folder = results_folder(protocol, profile, regime, backbone, root) / "codes"
    return folder if method is None else folder / f"{method}-{bits}.npz"


def result_path(protocol: str, method: str, bits: int, profile: str | None = None,
                root: str | Path | None = None, regime: str = "scratch",
                backbone: str = "small") -> Path:
    """Where :func:`save_results` puts the JSON of (method, bits):
    ``<results_folder>/<method>-<bits>.json``."""
    return results_folder(protocol, profile, regime, backbone, root) / f"{method}-{bits}.json"


def load_codes(path: str | Path) -> dict[str, np.ndarray]:
    """Read a codes npz written by :func:`save_results` (never unpickling); codes come back
    unpacked in ``{-1, +1}``: ``query_codes (nq, k)``, ``db_codes (nd, k)`` int8, and the
    indices and labels as stored.

    Raises:
        ResultsFileError: naming the file, when it is missing, damaged or incomplete.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
        missing = [k for k in CODES_KEYS if k not in out]
        if missing:
            raise KeyError(f"no {', '.join(missing)}")
        bits = int(out["n_bits"])
        out["query_codes"] = unpack_codes(out["query_codes"], bits)
        out["db_codes"] = unpack_codes(out["db_codes"], bits)
        if (len(out["query_codes"]) != len(out["query_idx"])
                or len(out["db_codes"]) != len(out["db_idx"])):
            raise ValueError("codes and indices differ in length")
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
        raise ResultsFileError(f"Could not read the codes file {path} "
                               f"({type(err).__name__}: {err}). {_fix(path)}") from err
    return out


def read_result(path: str | Path) -> dict:
    """One results JSON: a dict with at least ``method`` (str), ``bits`` (int) and
    ``protocol`` (str).

    Raises:
        ResultsFileError: naming the file, when it is missing, not JSON or not a record.
    """
    return _read_json(Path(path), required=(("method", str), ("bits", int),
                                            ("protocol", str)))


def _read_json(path: Path, required: tuple[tuple[str, type], ...] = ()) -> dict:
    """A JSON object with the ``required`` (key, type) pairs, else :class:`ResultsFileError`."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        wrong = [key for key, kind in required
                 if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool)]
        if wrong:
            raise ValueError(f"no valid {', '.join(wrong)}")
    except (OSError, ValueError) as err:
        raise ResultsFileError(f"Could not read the results file {path} "
                               f"({type(err).__name__}: {err}). {_fix(path)}") from err
    return record


def result_is_complete(json_path: str | Path) -> bool:
    """Whether the result of ``json_path`` (``<folder>/<method>-<bits>.json``, see
    :func:`result_path`) counts as done: the JSON and its codes file
    ``<folder>/codes/<method>-<bits>.npz`` are both present and readable. A run killed while
    saving leaves an incomplete result, which is then run again."""
    json_path = Path(json_path)
    try:
        read_result(json_path)
        load_codes(json_path.parent / "codes" / f"{json_path.stem}.npz")
    except ResultsFileError:
        return False
    return True


def load_results(protocol: str | None = None, method: str | None = None,
                 profile: str | None = None, root: str | Path | None = None,
                 regime: str = "scratch", backbone: str = "small",
                 headline: Collection[str] | None = None) -> list[dict]:
    """The result records of one (profile, regime, backbone) folder (see
    :func:`results_folder`), optionally of one protocol / method, sorted by protocol, method
    and bits.

    Args:
        headline: the methods whose results must be readable. A results file that cannot be
            read (:func:`read_result`) raises :class:`ResultsFileError` naming it when its
            method (the file name before ``-<bits>``) is one of them, or when ``headline`` is
            ``None``; otherwise it is skipped with a warning naming it.
    """
    protocols = ([protocol] if protocol is not None else
                 sorted(p.name for p in (Path(root) if root is not None
                                         else results_dir(profile)).glob("*") if p.is_dir()))
    records = []
    for proto in protocols:
        folder = results_folder(proto, profile, regime, backbone, root)
        for path in sorted(folder.glob(f"{method or '*'}-*.json")):
            try:
                records.append(read_result(path))
            except ResultsFileError as err:
                if headline is None or path.stem.rpartition("-")[0] in headline:
                    raise
                warnings.warn(f"skipped: {err}", stacklevel=2)
    if method is not None:
        records = [r for r in records if r.get("method") == method]
    return sorted(records, key=lambda r: (r["protocol"], r["method"], r["bits"]))


def _with_new_keys(record: dict, new: dict) -> dict:
    """``record`` with the keys of ``new`` it lacks, each placed right after the nearest key
    before it in :data:`RESULT_KEYS` that the record has (at the end if none); the other keys
    keep their order and values."""
    keys, values = list(record), {**new, **record}
    for key in RESULT_KEYS:
        if key in new and key not in keys:
            before = [k for k in RESULT_KEYS[: RESULT_KEYS.index(key)] if k in keys]
            keys.insert(keys.index(before[-1]) + 1 if before else len(keys), key)
    keys += [k for k in new if k not in keys]
    return {k: values[k] for k in keys}


def refresh(root: str | Path | None = None, tol: float = 1e-9) -> list[str]:
    """Recompute every results JSON under ``root`` from its codes file and add the metric keys
    it lacks (e.g. ``map_at_1000_tie_aware`` in files written before it existed), and label
    a run of DSH's own network (``network`` "DSHNet ...") with ``backbone = "dshnet"``.

    For each ``<folder>/<name>.json`` (any depth) with ``<folder>/codes/<name>.npz``: the
    metrics of :func:`evaluate_codes` it lacks are inserted right after their stable twins
    (key order kept, every other value untouched, the file rewritten only if a key was
    added); those it has are compared with the recomputed ones.

    Args:
        root: the results folder; the committed ``results/`` by default.
        tol: largest accepted ``|stored - recomputed|``.

    Returns:
        One line per problem: a stored value off by more than ``tol`` (it is kept, not
        overwritten), a JSON file without its codes file, or a file that cannot be read
        (named, with what to do). Empty when all agree.
    """
    root = Path(root) if root is not None else project_root() / "results"
    problems = []
    for path in sorted(root.rglob("*.json")):
        codes = path.parent / "codes" / f"{path.stem}.npz"
        if not codes.is_file():
            problems.append(f"{path}: no codes file {codes.name} beside it; not recomputed")
            continue
        try:
            record = _read_json(path)
            z = load_codes(codes)
        except ResultsFileError as err:
            problems.append(f"{path}: not recomputed: {err}")
            continue
        got = _clean(evaluate_codes(z["query_codes"], z["db_codes"], z["query_labels"],
                                    z["db_labels"]))
        for key, value in got.items():
            stored = record.get(key, value)  # a missing key is added, not compared
            if stored is None and value is None:
                continue
            if stored is None or value is None or abs(stored - value) > tol:
                problems.append(f"{path}: {key} stored {stored}, recomputed {value}")
        updated = _with_new_keys(record, got)
        if str(record.get("network", "")).startswith("DSHNet"):
            updated["backbone"] = "dshnet"  # DSH's own network, never the small backbone
        if updated != record:
            atomic_write_text(path, json.dumps(updated, indent=2, sort_keys=False) + "\n")
    return problems


def save_model_results(model, method: str, bits: int, data, history, *, recipe=None,
                       paper_map: float | None = None, seed: int = 0, threshold: float = 0.0,
                       **run_info) -> dict:
    """Encode ``data``'s queries and database with ``model`` and :func:`save_results` them.

    Args:
        model: a hashing model (``encode`` binarizes ``model.embed``).
        data: a ``hashlib_edu.data.ProtocolData``.
        history: the ``fit`` history (training time and epochs are recorded from it).
        recipe: the training ``Recipe`` (stored in the JSON).
        threshold: binarization threshold of ``encode`` (0.5 for sigmoid outputs).
    """
    import time

    from .training import encode

    start = time.perf_counter()
    q_codes = encode(model, data.images("query"), threshold=threshold)
    db_codes = encode(model, data.images("database"), threshold=threshold)
    encode_seconds = time.perf_counter() - start
    device = next(model.parameters()).device
    info = {"train_seconds": history.train_seconds, "encode_seconds": encode_seconds,
            "epochs": history.epochs, "profile": data.profile, "device": str(device),
            "precision": getattr(history, "precision", None),
            "seed": seed, "paper_map": paper_map,
            "recipe": dict(recipe.__dict__) if recipe is not None else None}
    info.update(run_info)
    # the network's own name where it has one (DSH's network: "dshnet"), else the small backbone
    info.setdefault("backbone", getattr(model, "backbone_name", "small"))
    return save_results(method, bits, data.protocol, q_codes, db_codes, data.split, data.labels,
                        **info)
