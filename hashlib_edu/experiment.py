"""One experiment, one path: :class:`Experiment` names every model the course trains and
:func:`run` trains (or loads), encodes, evaluates and saves it.

    >>> from hashlib_edu import Experiment, run
    >>> result = run(Experiment(method="dpah", bits=12, protocol="cifar10-1k"))
    >>> result.record["map_tie_aware"], result.model, result.loss

An :class:`Experiment` is a frozen spec: the method and its typed settings (each method's
module holds its defaults: :class:`~hashlib_edu.methods.dpah.DPAHSettings`, ...), code length,
protocol, how the backbone is trained (``regime``, ``backbone``), profile, seed, epochs and
the optimisation recipe. Whatever is left out is filled in from the method's module for the
protocol, profile and regime, so ``Experiment("dpah", 12)`` is today's headline DPAH model.
:meth:`Experiment.digest` hashes exactly the fields that change the trained weights: the
checkpoint's name carries it, so a changed setting never loads another setting's weights and
a cosmetic edit (a docstring, a ``repr``, a label) renames nothing.

Files (see :func:`checkpoint_name` and :meth:`Experiment.result_name`):

* ``checkpoints/<protocol>/<profile>-<regime>-<backbone>/<method>-<bits>[-seed<s>][-ep<e>]-<digest>.pt``;
* ``results/<protocol>/[<profile>-<regime>-<backbone>/]<name>-<bits>.json`` (+ ``codes/``), each
  with ``experiment`` (:meth:`Experiment.to_dict`) and ``experiment_digest``.

:func:`stale_results` compares committed results with the experiments today's code would run
(``python -m hashlib_edu.report --check``; ``python -m hashlib_edu.reproduce --stale`` retrains
them).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .activations import ActivationLoader
from .backbones import backbone_input, pretrained_backbone, split_pretrained
from .data import ProtocolData, load_protocol, validation_protocol
from .methods import baselines, cnnbh, dpah, dsh, orthohash
from .metrics import positive_int
from .profiles import checkpoints_dir, get_profile
from .recipes import Recipe
from .regimes import (
    REGIME_EPOCHS,
    REGIME_INPUT_SIZE,
    check_regime,
    pretrained_features,
    regime_recipe,
    warn_if_slow,
)
from .results import (
    load_codes,
    read_result,
    result_is_complete,
    results_folder,
    save_model_results,
    save_results,
)
from .specs import FittedSpec, MethodSpec
from .training import (
    History,
    backbone_features,
    encode,
    seed_everything,
    select_device,
    train_model,
)

__all__ = ["TRAINED_METHODS", "FITTED_METHODS", "METHODS", "PROTOCOLS", "PAPER_MAP",
           "PAPER_MAP_CIFAR10_DSH", "FEATURE_BITS", "FittedSettings", "Experiment", "Run", "checkpoint_name",
           "experiment_data", "run", "saved_or_run", "headline_experiment", "stale_results"]

#: The one registry of the course's trained methods, each supplied by its own module.
TRAINED_METHODS: dict[str, MethodSpec] = {
    spec.name: spec for spec in (cnnbh.SPEC, dsh.SPEC, dpah.SPEC, orthohash.SPEC)}
#: The methods fitted on features (KSH is slow to fit: ``reproduce`` runs it only when asked).
FITTED_METHODS: dict[str, FittedSpec] = {
    "lsh": FittedSpec("lsh", lambda bits, seed: baselines.LSH(bits, random_state=seed)),
    "itq": FittedSpec("itq", lambda bits, seed: baselines.PCAITQ(bits, n_iter=50,
                                                                 random_state=seed)),
    "ksh": FittedSpec("ksh", lambda bits, seed: baselines.KSH(bits, random_state=seed),
                      supervised=True),
}
METHODS = (*FITTED_METHODS, *TRAINED_METHODS)
#: Protocols an experiment runs on; ``<protocol>-val`` is its validation split (settings are
#: chosen there: :func:`hashlib_edu.data.validation_protocol`).
PROTOCOLS = ("cifar10-1k", "cifar10-dsh")
#: Paper mAP@all on ``cifar10-1k`` where a paper reports that protocol (CNNBH Table 1, with
#: its own backbone; DPAH appendix Table 1, with a pretrained backbone); recorded with the
#: headline results as ``paper_map``.
PAPER_MAP = {
    "cnnbh": {12: 0.532, 24: 0.564, 32: 0.610, 48: 0.617},
    "dpah": {12: 0.810, 24: 0.825, 32: 0.838, 48: 0.845},
}
#: Paper mAP on ``cifar10-dsh``: DSH's own 12-bit model M1 (supplementary Table 3).
PAPER_MAP_CIFAR10_DSH = {"dsh": {12: 0.6157}}
#: The CNNBH classifier whose Pool3 features the fitted methods hash under ``scratch``.
FEATURE_BITS = 48


@dataclass(frozen=True)
class FittedSettings:
    """Settings of a fitted method (LSH, ITQ, KSH): the features it hashes.

    Attributes:
        features: ``"pool3"`` -- the L2-normalized Pool3 features of the
            :data:`FEATURE_BITS`-bit CNNBH classifier (``scratch``) or the pretrained
            backbone's pooled features (``frozen``).
        source: the digest of the experiment that made the features (filled in): a retrained
            classifier makes every hash of its features stale.
    """

    features: str = "pool3"
    source: str | None = None


def _canonical(settings: Any) -> Any:
    """``settings`` with whole numbers given for float fields stored as floats, so that
    ``margin=2`` and ``margin=2.0`` are one experiment (one digest)."""
    changes = {f.name: float(getattr(settings, f.name)) for f in dataclasses.fields(settings)
               if "float" in str(f.type) and isinstance(getattr(settings, f.name), int)
               and not isinstance(getattr(settings, f.name), bool)}
    return dataclasses.replace(settings, **changes) if changes else settings


def _base(protocol: str) -> str:
    return protocol.removesuffix("-val")


@dataclass(frozen=True)
class Experiment:
    """The spec of one model: what :func:`run` trains, names, evaluates and saves.

    Attributes:
        method: one of :data:`METHODS`.
        bits: code length ``k``.
        protocol: ``"cifar10-1k"`` or ``"cifar10-dsh"``; ``+ "-val"`` for its validation split.
        regime: one of :data:`~hashlib_edu.regimes.REGIMES`.
        backbone: ``None``: the method's own network for ``scratch`` (``"small"``, or
            ``"dshnet"`` for DSH on ``cifar10-dsh``), ``"efficientnet_lite0"`` otherwise.
        profile: ``None``: the current profile (:func:`hashlib_edu.profiles.get_profile`).
        seed: the seed of initialization, batches and targets.
        epochs: ``None``: the method's budget for the protocol, profile and regime.
        settings: the method's settings object, a dict of the fields to change, or ``None``
            (the method's defaults).
        recipe: the optimisation recipe; ``None``: the method's (``epochs`` always wins).
        label: the results file's name; ``None``: :meth:`result_name`'s default. Cosmetic:
            not part of the digest.
    """

    method: str
    bits: int
    protocol: str = "cifar10-1k"
    regime: str = "scratch"
    backbone: str | None = None
    profile: str | None = None
    seed: int = 0
    epochs: int | None = None
    settings: Any = None
    recipe: Recipe | None = None
    label: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        put = functools.partial(object.__setattr__, self)
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}.")
        put("bits", positive_int(self.bits, "bits"))
        if _base(self.protocol) not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; use one of {PROTOCOLS} "
                             "(with '-val' for its validation split).")
        put("profile", get_profile(self.profile))
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be an integer; got {self.seed!r}.")
        put("seed", int(self.seed))
        trained = self.method in TRAINED_METHODS
        if self.backbone is None:
            own = (TRAINED_METHODS[self.method].default_backbone(_base(self.protocol))
                   if trained else "small")
            put("backbone", own if self.regime == "scratch" else "efficientnet_lite0")
        check_regime(self.regime, self.backbone)
        if self.regime == "finetune-last" and not trained:
            raise ValueError(f"{self.method} is fitted on features: use regime 'frozen' or "
                             "'scratch'.")
        if self.regime == "finetune" and not trained:
            raise ValueError(f"{self.method} is fitted on features: use regime 'frozen' or "
                             "'scratch'.")
        put("settings", self._resolve_settings())
        if trained:
            if self.epochs is None:
                put("epochs", self.default_epochs())
            put("epochs", positive_int(self.epochs, "epochs"))
            recipe = self.recipe if self.recipe is not None else self._default_recipe()
            if isinstance(recipe, dict):
                recipe = Recipe(**recipe)
            put("recipe", dataclasses.replace(recipe, epochs=self.epochs))
        else:
            if self.epochs is not None or self.recipe is not None:
                raise ValueError(f"{self.method} is fitted, not trained: leave epochs and recipe "
                                 "out.")

    # ----------------------------------------------------------------- defaults

    def _settings_type(self) -> type:
        if self.method in TRAINED_METHODS:
            return TRAINED_METHODS[self.method].settings
        return FittedSettings

    def _resolve_settings(self) -> Any:
        kind = self._settings_type()
        settings = self.settings
        if settings is None:
            settings = kind()
        elif isinstance(settings, dict):
            unknown = set(settings) - {f.name for f in dataclasses.fields(kind)}
            if unknown:
                raise ValueError(f"{kind.__name__} has no field(s) {sorted(unknown)}; its fields: "
                                 f"{[f.name for f in dataclasses.fields(kind)]}.")
            settings = kind(**settings)
        elif not isinstance(settings, kind):
            raise TypeError(f"settings of {self.method} must be a {kind.__name__} (or a dict of "
                            f"its fields); got {type(settings).__name__}.")
        if kind is FittedSettings and settings.source is None:
            settings = dataclasses.replace(settings, source=self.feature_source())
        return _canonical(settings)

    def default_epochs(self) -> int | None:
        """The method's epoch budget for this protocol, profile, regime and backbone."""
        if self.method not in TRAINED_METHODS:
            return None
        if self.regime != "scratch":
            return REGIME_EPOCHS[self.regime][self.profile]
        return TRAINED_METHODS[self.method].epochs(self.backbone, _base(self.protocol),
                                                  self.profile)

    def _default_recipe(self) -> Recipe:
        if self.regime != "scratch":
            return regime_recipe(self.regime, self.epochs)
        return TRAINED_METHODS[self.method].recipe(self.settings, self.backbone, self.epochs)

    def feature_experiment(self) -> Experiment | None:
        """The classifier whose features a fitted method hashes under ``scratch``."""
        if self.method in TRAINED_METHODS or self.regime != "scratch":
            return None
        return Experiment("cnnbh", FEATURE_BITS, self.protocol, profile=self.profile,
                          seed=self.seed)

    def feature_source(self) -> str:
        """What a fitted method's features come from: a digest, or the backbone and size."""
        source = self.feature_experiment()
        if source is not None:
            return source.digest()
        return f"{self.backbone}-pooled-{REGIME_INPUT_SIZE[self.profile]}px"

    # ----------------------------------------------------------------- identity

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields; :meth:`from_dict` inverts it."""
        return {"method": self.method, "bits": self.bits, "protocol": self.protocol,
                "regime": self.regime, "backbone": self.backbone, "profile": self.profile,
                "seed": self.seed, "epochs": self.epochs,
                "settings": dataclasses.asdict(self.settings),
                "recipe": dataclasses.asdict(self.recipe) if self.recipe is not None else None,
                "label": self.result_name()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Experiment:
        """The experiment :meth:`to_dict` wrote (settings and recipe rebuilt as objects)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"not an experiment: unknown field(s) {sorted(unknown)}.")
        return cls(**d)

    def digest(self) -> str:
        """12 hex digits of the SHA-256 of the canonical JSON of the fields that change the
        trained weights (everything but the label)."""
        fields = {k: v for k, v in self.to_dict().items() if k != "label"}
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def result_name(self) -> str:
        """The results file's name (without ``-<bits>``): ``label``, else the method, with
        ``_ep<epochs>`` for another budget than the method's and ``_seed<seed>`` for a seed
        other than 0."""
        if self.label is not None:
            return self.label
        name = self.method
        if self.epochs is not None and self.epochs != self.default_epochs():
            name += f"_ep{self.epochs}"
        return name if self.seed == 0 else f"{name}_seed{self.seed}"

    def results_folder(self, root: str | Path | None = None) -> Path:
        """Where its results JSON lies (:func:`hashlib_edu.results.results_folder`)."""
        return results_folder(self.protocol, self.profile, self.regime, self.backbone, root)

    def json_path(self, root: str | Path | None = None) -> Path:
        return self.results_folder(root) / f"{self.result_name()}-{self.bits}.json"

    def paper_map(self) -> float | None:
        """The paper's mAP for this method, protocol and code length, where a paper reports it
        for a network trained from scratch on this protocol."""
        if self.regime != "scratch":
            return None
        table = {"cifar10-1k": PAPER_MAP, "cifar10-dsh": PAPER_MAP_CIFAR10_DSH}.get(self.protocol)
        return None if table is None else table.get(self.method, {}).get(self.bits)

    def replace(self, **changes: Any) -> Experiment:
        """A copy with ``changes``; settings given as a dict change only those fields. The
        recipe follows the new settings and epochs unless ``recipe`` is given too; ``epochs``
        follows a new method, protocol, regime, backbone or profile unless given."""
        if isinstance(changes.get("settings"), dict):
            changes["settings"] = dataclasses.replace(self.settings, **changes["settings"])
        if ("epochs" in changes or "settings" in changes) and "recipe" not in changes:
            changes["recipe"] = None
        if any(k in changes for k in ("method", "protocol", "regime", "backbone", "profile")):
            changes.setdefault("recipe", None)
            changes.setdefault("epochs", None)
        return dataclasses.replace(self, **changes)


def checkpoint_name(experiment: Experiment) -> str:
    """The checkpoint's name under ``checkpoints/`` (without ``.pt``): a folder per
    (protocol, profile, regime, backbone), then method, bits, seed and epochs where not the
    default, and the digest."""
    e = experiment
    stem = f"{e.method}-{e.bits}"
    if e.seed:
        stem += f"-seed{e.seed}"
    if e.epochs is not None and e.epochs != e.default_epochs():
        stem += f"-ep{e.epochs}"
    return f"{e.protocol}/{e.profile}-{e.regime}-{e.backbone}/{stem}-{e.digest()}"


@dataclass
class Run:
    """What :func:`run` returns: the saved ``record`` (the results JSON as a dict, with
    ``json_path`` and ``codes_path``), the trained ``model`` and ``loss`` (for a notebook's
    analysis; ``None`` for fitted methods, whose fitted hasher is ``model``), the ``history``."""

    experiment: Experiment
    record: dict
    model: Any = None
    loss: nn.Module | None = None
    history: History | None = None


@functools.lru_cache(maxsize=8)
def _load(protocol: str, profile: str) -> ProtocolData:
    if protocol.endswith("-val"):
        return validation_protocol(_load(_base(protocol), profile))
    return load_protocol(protocol, profile, seed=0)


def experiment_data(experiment: Experiment) -> ProtocolData:
    """The protocol data an experiment trains and evaluates on (loaded once per process)."""
    return _load(experiment.protocol, experiment.profile)


def _check_data(experiment: Experiment, data: ProtocolData | None) -> ProtocolData:
    if data is None:
        return experiment_data(experiment)
    if data.protocol != experiment.protocol or data.profile != experiment.profile:
        raise ValueError(f"data is {data.protocol!r} under {data.profile!r} but the experiment "
                         f"runs on {experiment.protocol!r} under {experiment.profile!r}.")
    return data


def _download(train: bool | None) -> bool:
    if train not in (None, True, False):
        raise TypeError(f"train must be None, True or False; got {train!r}.")
    return train is not True


def _require_checkpoint(experiment: Experiment, train: bool | None) -> None:
    """``train=False``: only a finished local or downloadable model may be used."""
    if train is not False:
        return
    ckpt = checkpoints_dir(experiment.profile) / f"{checkpoint_name(experiment)}.pt"
    if not ckpt.is_file():
        from .release import fetch

        fetch(checkpoint_name(experiment), ckpt, profile=experiment.profile)
    if not ckpt.is_file():
        raise FileNotFoundError(
            f"no trained model for {experiment.result_name()}-{experiment.bits} ({ckpt}) and "
            "none published: run it with train=None (train when missing) or train=True.")


def run(experiment: Experiment, train: bool | None = None, *, data: ProtocolData | None = None,
        device=None, progress: bool | None = None) -> Run:
    """Train (or load a finished or downloaded checkpoint, or resume an interrupted one),
    encode, evaluate and save one experiment: the one path every model of the course takes.

    Args:
        experiment: what to run.
        train: ``None``: load a local checkpoint, else a published one, else train;
            ``True``: never download (train here; a local checkpoint still loads or resumes);
            ``False``: never train (raise when no trained model is found).
        data: the experiment's protocol data when already loaded (must match).
        device: ``None``: CUDA when available, else the CPU.
        progress: progress bars (default: on, except when ``CI`` is set).

    Returns:
        :class:`Run` -- ``.record`` as saved (``experiment`` and ``experiment_digest`` in it),
        ``.model``, ``.loss``, ``.history``.
    """
    data = _check_data(experiment, data)
    _warn_if_too_short(experiment.bits, len(data.dataset.classes))
    if experiment.method in FITTED_METHODS:
        return _run_fitted(experiment, data, device, progress)
    warn_if_slow(experiment.regime, experiment.backbone, experiment.epochs, device)
    _require_checkpoint(experiment, train)
    if experiment.regime in ("frozen", "finetune-last"):
        return _run_cached(experiment, data, train, device, progress)
    return _run_images(experiment, data, train, device, progress)


def saved_or_run(experiment: Experiment, train: bool = False, **run_kwargs: Any) -> dict:
    """The saved results of ``experiment`` -- when they are complete and were made by this very
    experiment (same digest) -- else :func:`run` it; ``train=True`` always runs it.

    A notebook reads its validation sweeps this way: their results and codes are committed, so
    a student sees the comparison without retraining every candidate, and ``TRAIN_SWEEPS =
    True`` retrains them (a checkpoint still loads; delete it to train from scratch).

    Returns:
        the results record, with ``json_path`` and ``codes_path``.
    """
    path = experiment.json_path()
    if not train and result_is_complete(path):
        record = read_result(path)
        if record.get("experiment_digest") == experiment.digest():
            codes = path.parent / "codes" / f"{path.stem}.npz"
            return {**record, "json_path": str(path), "codes_path": str(codes)}
    return run(experiment, **run_kwargs).record


def _warn_if_too_short(bits: int, n_classes: int) -> None:
    """Warn when ``bits``-bit codes cannot give every class a code of its own."""
    if 2 ** bits < n_classes:
        import warnings

        warnings.warn(f"{bits}-bit codes have only {2 ** bits} values for {n_classes} classes: "
                      f"at least {math.ceil(math.log2(n_classes))} bits are needed to give "
                      "each class its own code, so classes must share codes and mAP stays low.",
                      stacklevel=3)


def _identity(experiment: Experiment) -> dict[str, Any]:
    return {"experiment": experiment.to_dict(), "experiment_digest": experiment.digest()}


def _run_images(e: Experiment, data: ProtocolData, train: bool | None, device,
                progress: bool | None) -> Run:
    """A network trained on the images: from scratch, or a whole pretrained backbone."""
    spec = TRAINED_METHODS[e.method]
    n_classes = len(data.dataset.classes)
    seed_everything(e.seed)
    source = getattr(e.settings, "finetune_from", None)
    if source is not None:  # start from another trained model (trained or loaded first)
        origin = Experiment.from_dict(source)
        same = origin.protocol == e.protocol and origin.profile == e.profile
        trained = run(origin, train, data=data if same else None, device=device,
                      progress=progress)
        seed_everything(e.seed)
        model = spec.finetune(trained.model.cpu(), e.bits, e.settings, e.recipe)
        info = {"finetuned_from": trained.record["json_path"]}
    elif e.regime == "scratch":
        model = spec.network(e.bits, n_classes, e.settings, e.recipe, e.backbone, None)
        info = {}
    else:  # finetune: the whole pretrained backbone, its inputs resized on the device
        size = REGIME_INPUT_SIZE[e.profile]
        net, dim = pretrained_backbone(e.backbone)
        model = spec.network(e.bits, n_classes, e.settings, e.recipe,
                             nn.Sequential(backbone_input(e.backbone, size), net), dim)
        info = {"input_size": size}
    loss = spec.loss(e.bits, n_classes, e.settings, e.seed, e.recipe)
    history = train_model(model, loss, data, e.recipe, name=checkpoint_name(e), seed=e.seed,
                          device=device, extra_params=list(loss.parameters()),
                          progress=progress, download=_download(train))
    record = save_model_results(model, e.result_name(), e.bits, data, history, recipe=e.recipe,
                                paper_map=e.paper_map(), seed=e.seed,
                                threshold=getattr(loss, "threshold", spec.threshold),
                                regime=e.regime, backbone=e.backbone, loss=repr(loss),
                                **info, **_identity(e))
    return Run(e, record, model, loss, history)


def _run_cached(e: Experiment, data: ProtocolData, train: bool | None, device,
                progress: bool | None) -> Run:
    """``frozen`` / ``finetune-last``: the method's head (and for ``finetune-last`` the last
    stage of the backbone) trained on cached activations with the method's loss."""
    spec = TRAINED_METHODS[e.method]
    cut = "pooled" if e.regime == "frozen" else "last-stage"
    size = REGIME_INPUT_SIZE[e.profile]
    feats = pretrained_features(data, e.backbone, cut, device, progress)
    if cut == "pooled":
        tail, dim = nn.Identity(), feats["train"].shape[1]
    else:
        _, tail, dim = split_pretrained(e.backbone, cut, size)
    n_classes = len(data.dataset.classes)
    seed_everything(e.seed)
    model = spec.network(e.bits, n_classes, e.settings, e.recipe, tail, dim)
    loss = spec.loss(e.bits, n_classes, e.settings, e.seed, e.recipe)
    device = select_device(device)
    loader = ActivationLoader(feats["train"], data.part_labels("train"),
                              mirrored=feats["train_mirrored"], batch_size=e.recipe.batch_size,
                              drop_last=len(feats["train"]) > e.recipe.batch_size, seed=e.seed,
                              device=device)
    history = train_model(model, loss, data, e.recipe, name=checkpoint_name(e), seed=e.seed,
                          device=device, extra_params=list(loss.parameters()),
                          progress=progress, loader=loader, download=_download(train))
    start = time.perf_counter()
    threshold = getattr(loss, "threshold", spec.threshold)
    q, db = (encode(model, feats["query"], threshold=threshold),
             encode(model, feats["database"], threshold=threshold))
    record = save_results(e.result_name(), e.bits, data.protocol, q, db, data.split,
                          data.labels, regime=e.regime, backbone=e.backbone,
                          train_seconds=history.train_seconds,
                          encode_seconds=time.perf_counter() - start, epochs=history.epochs,
                          profile=e.profile, device=str(device), precision=history.precision,
                          seed=e.seed, paper_map=None, recipe=dataclasses.asdict(e.recipe),
                          loss=repr(loss), input_size=size, cut=cut,
                          activation_seconds=feats["seconds"], **_identity(e))
    return Run(e, record, model, loss, history)


#: Pool3 features per classifier digest, computed once per process.
_POOL3: dict[str, tuple[dict, dict]] = {}


def _pool3_features(experiment: Experiment, data: ProtocolData, device) -> tuple[dict, dict]:
    """L2-normalized Pool3 features of ``data``'s train/query/database images from the CNNBH
    classifier ``experiment`` (trained or loaded by :func:`run`), once per process."""
    key = f"{experiment.digest()}-{id(data.dataset)}"
    if key in _POOL3:
        return _POOL3[key]
    classifier = run(experiment, data=data, device=device, progress=False)
    feats = {part: backbone_features(classifier.model, data.images(part), normalize=True).numpy()
             for part in ("train", "query", "database")}
    info = {"features": f"L2-normalized Pool3 (1,024-D) of the {FEATURE_BITS}-bit CNNBH "
                        f"classifier ({classifier.history.epochs} epochs)",
            "feature_train_seconds": classifier.history.train_seconds,
            "feature_experiment_digest": experiment.digest()}
    _POOL3[key] = feats, info
    return feats, info


def _features(e: Experiment, data: ProtocolData, device, progress) -> tuple[dict, dict]:
    if e.regime == "frozen":
        feats = pretrained_features(data, e.backbone, "pooled", device, progress)
        size = REGIME_INPUT_SIZE[e.profile]
        return feats, {"features": f"L2-normalized pooled features of {e.backbone} ({size} px)",
                       "activation_seconds": feats["seconds"]}
    return _pool3_features(e.feature_experiment(), data, device)


def _run_fitted(e: Experiment, data: ProtocolData, device, progress) -> Run:
    """LSH / ITQ / KSH fitted on the training images' features, then encoding the queries and
    the database."""
    from threadpoolctl import threadpool_limits

    spec = FITTED_METHODS[e.method]
    feats, info = _features(e, data, device, progress)
    hasher = spec.make(e.bits, e.seed)
    start = time.perf_counter()
    with threadpool_limits(1):  # many small products: one BLAS thread is faster
        hasher.fit(feats["train"], data.part_labels("train") if spec.supervised else None)
        fitted = time.perf_counter()
        q, db = hasher.encode(feats["query"]), hasher.encode(feats["database"])
    record = save_results(e.result_name(), e.bits, data.protocol, q, db, data.split,
                          data.labels, train_seconds=fitted - start,
                          encode_seconds=time.perf_counter() - fitted, epochs=None,
                          profile=e.profile, device="cpu", seed=e.seed, paper_map=None,
                          hasher=repr(hasher), regime=e.regime, backbone=e.backbone,
                          **info, **_identity(e))
    return Run(e, record, hasher)


# --------------------------------------------------------------------------- staleness


def headline_experiment(record: dict) -> Experiment | None:
    """The experiment today's code would run for a headline result -- one named by its
    method, seed and budget alone (``dpah``, ``dpah_seed1``, ``dpah_ep100``) -- or ``None`` for a
    result of a notebook's own variant (a sweep, an ablation)."""
    stored = record.get("experiment")
    if not stored or stored.get("method") not in METHODS:
        return None
    budgets = [None]
    if stored["method"] in TRAINED_METHODS and stored.get("epochs") is not None:
        budgets.append(stored["epochs"])
    for epochs in budgets:  # the method's budget today, or the stored one (an "_ep" result)
        current = Experiment(stored["method"], stored["bits"], stored["protocol"],
                             stored["regime"], stored["backbone"], stored["profile"],
                             stored["seed"], epochs)
        if current.result_name() == stored.get("label"):
            return current
    return None


def _changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {a!r} -> {b!r}")
    return out


def stale_results(root: str | Path | None = None, tol: float = 1e-9) -> list[tuple[Path, str]]:
    """Every committed results JSON that is stale or wrong, with why.

    * a file without ``experiment`` (written before results carried their experiment);
    * an ``experiment_digest`` that its own ``experiment`` does not give (edited by hand, or
      written by other code);
    * a headline result whose experiment is not the one today's code runs for it (a setting,
      budget or recipe changed since: retrain it with ``reproduce --stale``);
    * a metric its codes no longer give.

    Args:
        root: the results folder (default: the committed ``results/``).
    """
    from .profiles import project_root
    from .results import evaluate_codes

    root = Path(root) if root is not None else project_root() / "results"
    problems: list[tuple[Path, str]] = []
    for path in sorted(root.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            problems.append((path, f"unreadable ({err}): delete it or re-run its experiment"))
            continue
        stored = record.get("experiment")
        if not stored:
            problems.append((path, "no experiment recorded: re-run it through run()"))
            continue
        try:
            experiment = Experiment.from_dict(stored)
        except (TypeError, ValueError) as err:
            problems.append((path, f"its experiment does not load ({err})"))
            continue
        if experiment.digest() != record.get("experiment_digest"):
            problems.append((path, f"experiment_digest {record.get('experiment_digest')} but its "
                                   f"experiment gives {experiment.digest()}"))
            continue
        current = headline_experiment(record)
        if current is not None and current.digest() != experiment.digest():
            what = _changes(stored, current.to_dict())
            problems.append((path, "stale: today's code runs it with " + "; ".join(what)))
            continue
        codes = path.parent / "codes" / f"{path.stem}.npz"
        if not codes.is_file():
            problems.append((path, f"no codes file {codes.name} beside it"))
            continue
        z = load_codes(codes)
        got = evaluate_codes(z["query_codes"], z["db_codes"], z["query_labels"], z["db_labels"])
        wrong = [f"{k} stored {record.get(k)}, codes give {v}" for k, v in got.items()
                 if record.get(k) is not None and abs(record[k] - v) > tol]
        if wrong:
            problems.append((path, "; ".join(wrong)))
    return problems


def experiments_for(methods: Iterable[str], bits: Iterable[int], **common: Any) -> list[Experiment]:
    """One experiment per (method, bits), with the same ``common`` fields."""
    return [Experiment(m, b, **common) for m in methods for b in bits]
