"""One command that trains and evaluates every method on one protocol and one backbone.

    python -m hashlib_edu.reproduce [--methods lsh itq cnnbh dsh dpah orthohash]
        [--bits 12 24 32 48] [--protocol cifar10-1k] [--profile quick] [--seed 0]
        [--epochs N]

Every method uses the course's shared small backbone (the CNNBH convolutional stack,
:class:`hashlib_edu.backbones.SmallBackbone`) trained from scratch on a CPU-sized budget.
:data:`METHODS` is the one registry of what each method trains and with which settings:

* ``lsh``, ``itq``: LSH / PCA-ITQ on the L2-normalized Pool3 features of the 48-bit CNNBH
  classifier (the backbone trained as a classifier; notebook 02's "CNN features");
* ``cnnbh``: the CNNBH classifier, codes = signs of the knob (notebook 03's recipe: SGD,
  one-cycle, 60 epochs in ``quick``);
* ``dsh``: on ``cifar10-dsh`` DSH's own CIFAR network with ``DSHLoss(k, alpha=0.01)``, as
  notebook 04; on ``cifar10-1k`` the backbone + a code layer (the equal-backbone comparison) with
  :func:`~hashlib_edu.training.code_layer_recipe` (AdamW, one-cycle, 50 epochs in ``quick``);
* ``dpah``: :func:`~hashlib_edu.methods.dpah.dpah_loss` (positions started at 0.9 x the rows
  of a Hadamard matrix, s = 2/sqrt(k), alpha = 0.5) and
* ``orthohash``: :func:`~hashlib_edu.methods.orthohash.orthohash_loss` (OrthoCos, Hadamard
  targets, m = 0.3, s = sqrt(k)), both with BN on the latent, as notebooks 05 and 06, and
  CNNBH's SGD recipe without label smoothing (60 epochs in ``quick``).

On ``cifar10-dsh`` (50,000 training images) the class-target methods train for 30 epochs under
``quick`` (:data:`PROTOCOL_EPOCHS`). For each (method, bits) the results writer stores ``results/<protocol>/<method>-<bits>.json``
and the codes (``<method>_seed<seed>`` for ``--seed`` other than 0, ``<method>_ep<epochs>`` for
an ``--epochs`` budget other than the profile's, so the committed results stay as they are).
A trained model is a checkpoint in ``checkpoints/`` (named by method, bits,
recipe and loss): a finished one is loaded, an interrupted one resumes, so re-running the
command after an interruption picks up where it stopped. The notebooks use the same
functions, so a model trained by a notebook is reused here and vice versa.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from .activations import ActivationLoader, cached_activations
from .backbones import (
    PRETRAINED_BACKBONES,
    BackboneWithCodeLayer,
    backbone_input,
    pretrained_backbone,
    split_pretrained,
)
from .data import ProtocolData, load_protocol
from .methods.baselines import KSH, LSH, PCAITQ
from .methods.cnnbh import CNNBH_EPOCHS, CNNBHNet, cnnbh_recipe, train_cnnbh
from .methods.dpah import DPAH_EPOCHS, dpah_loss, dpah_recipe
from .methods.dsh import DSH_EPOCHS, DSHLoss, dsh_recipe, train_dsh
from .methods.orthohash import ORTHOHASH_EPOCHS, orthohash_loss, orthohash_recipe
from .metrics import positive_int
from .profiles import PROFILES, get_profile, use_profile
from .report import COMPARISON_BITS
from .results import REGIMES, codes_path, results_folder, save_model_results, save_results
from .training import (
    CODE_LAYER_EPOCHS,
    History,
    Recipe,
    backbone_features,
    cached_recipe,
    code_layer_recipe,
    embed,
    encode,
    finetune_recipe,
    progress_enabled,
    run_name,
    seed_everything,
    select_device,
    state_digest,
    train_model,
    train_with_code_layer,
)

__all__ = ["METHODS", "DEFAULT_METHODS", "MethodSpec", "TRAINED_METHODS", "PROTOCOL_EPOCHS",
           "schedule", "REGIME_EPOCHS", "REGIME_INPUT_SIZE", "pretrained_features", "DEFAULT_BITS", "PAPER_MAP",
           "FEATURE_BITS", "classifier_features", "result_name", "run_method",
           "train_and_save", "reproduce", "main"]

DEFAULT_BITS = COMPARISON_BITS  # notebook 07 and the README figures show these
#: Paper mAP@all on ``cifar10-1k`` where a paper reports that protocol (CNNBH Table 1, with
#: its own backbone; DPAH appendix Table 1, with a pretrained backbone). DSH and OrthoHash
#: report no number for this protocol.
PAPER_MAP = {
    "cnnbh": {12: 0.532, 24: 0.564, 32: 0.610, 48: 0.617},
    "dpah": {12: 0.810, 24: 0.825, 32: 0.838, 48: 0.845},
}
#: The CNNBH classifier whose Pool3 features LSH and ITQ hash.
FEATURE_BITS = 48


def classifier_features(data: ProtocolData, seed: int = 0, device=None,
                        progress: bool | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """L2-normalized Pool3 features ``(n, 1024)`` of the train/query/database images from the
    ``FEATURE_BITS``-bit CNNBH classifier (trained or loaded), and a description dict."""
    recipe = cnnbh_recipe(schedule("cnnbh", data.protocol, data.profile))
    model, history = train_cnnbh(data, FEATURE_BITS, recipe, seed=seed, device=device,
                                 progress=progress)
    feats = {part: backbone_features(model, data.images(part), normalize=True).numpy()
             for part in ("train", "query", "database")}
    info = {"features": f"L2-normalized Pool3 (1,024-D) of the {FEATURE_BITS}-bit CNNBH "
                        f"classifier ({history.epochs} epochs)",
            "feature_train_seconds": history.train_seconds}
    return feats, info


def _paper(method: str, bits: int, protocol: str) -> float | None:
    return PAPER_MAP.get(method, {}).get(bits) if protocol == "cifar10-1k" else None


@dataclass(frozen=True)
class Job:
    """One (method, bits) run: what :attr:`MethodSpec.run` gets."""

    data: ProtocolData
    bits: int
    name: str  # the results name (see result_name)
    seed: int
    epochs: int | None  # None: the profile's schedule
    device: object
    progress: bool | None
    paper_map: float | None
    features: tuple[dict, dict] | None  # fitted methods: (features, info); cached regimes too
    regime: str = "scratch"
    backbone: str = "small"


@dataclass(frozen=True)
class MethodSpec:
    """A method of :data:`METHODS`: ``epochs`` per profile (``None``: fitted, not trained),
    ``run(job) -> record`` for the scratch regime (trains or loads, then saves through the
    results writer), and for a trained method what the pretrained regimes put on a backbone:
    ``make_head(bits, backbone, feature_dim, n_classes)`` (the method's network on that
    backbone) and ``make_loss(bits, n_classes, seed)`` (the same loss class as end to end)."""

    epochs: Mapping[str, int] | None
    run: Callable[[Job], dict]
    make_head: Callable[[int, nn.Module, int, int], nn.Module] | None = None
    make_loss: Callable[[int, int, int], nn.Module] | None = None


def _fitted(make_hasher: Callable[[int, int], object],
            supervised: bool = False) -> Callable[[Job], dict]:
    def run(job: Job) -> dict:
        from threadpoolctl import threadpool_limits

        data = job.data
        feats, info = job.features or classifier_features(data, job.seed, job.device,
                                                          job.progress)
        hasher = make_hasher(job.bits, job.seed)
        start = time.perf_counter()
        with threadpool_limits(1):  # many small products: one BLAS thread is faster
            if supervised:
                hasher.fit(feats["train"], data.part_labels("train"))
            else:
                hasher.fit(feats["train"])
            fitted = time.perf_counter()
            q, db = hasher.encode(feats["query"]), hasher.encode(feats["database"])
        return save_results(job.name, job.bits, data.protocol, q, db, data.split, data.labels,
                            train_seconds=fitted - start,
                            encode_seconds=time.perf_counter() - fitted, epochs=None,
                            profile=data.profile, device="cpu", seed=job.seed,
                            paper_map=job.paper_map, hasher=repr(hasher),
                            regime=job.regime, backbone=job.backbone, **info)
    return run


def _run_cnnbh(job: Job) -> dict:
    recipe = cnnbh_recipe(job.epochs or schedule("cnnbh", job.data.protocol, job.data.profile))
    model, history = train_cnnbh(job.data, job.bits, recipe, seed=job.seed, device=job.device,
                                 progress=job.progress)
    return save_model_results(model, job.name, job.bits, job.data, history, recipe=recipe,
                              paper_map=job.paper_map, seed=job.seed)


def _code_layer(method: str, make_recipe: Callable[[int], Recipe],
                make_loss: Callable[[int, int, int], nn.Module],
                latent_bn: bool) -> Callable[[Job], dict]:
    """``run`` for a method that trains the small backbone + a code layer with its loss."""
    def run(job: Job) -> dict:
        recipe = make_recipe(job.epochs or schedule(method, job.data.protocol, job.data.profile))
        loss_fn = make_loss(job.bits, len(job.data.dataset.classes), job.seed)
        return train_and_save(job.data, job.bits, loss_fn, recipe, method=method,
                              name=job.name, latent_bn=latent_bn, seed=job.seed,
                              device=job.device, progress=job.progress,
                              paper_map=job.paper_map,
                              network="SmallBackbone + linear hash layer")[2]
    return run


def _run_dsh(job: Job) -> dict:
    """DSH: on its own protocol (``cifar10-dsh``) DSH's own CIFAR network, as notebook 04 (the
    same checkpoint); elsewhere the small backbone + a code layer (the equal-backbone
    comparison)."""
    if job.data.protocol != "cifar10-dsh":
        return _code_layer("dsh", code_layer_recipe, _dsh_loss, latent_bn=False)(job)
    recipe = dsh_recipe(job.epochs or DSH_EPOCHS["cifar10-dsh"][job.data.profile])
    loss_fn = _dsh_loss(job.bits, len(job.data.dataset.classes), job.seed)
    model, history = train_dsh(job.data, job.bits, loss_fn, recipe, seed=job.seed,
                               device=job.device, progress=job.progress)
    return save_model_results(model, job.name, job.bits, job.data, history, recipe=recipe,
                              paper_map=job.paper_map, seed=job.seed, loss=repr(loss_fn),
                              network="DSHNet + BN")  # backbone: DSHNet.backbone_name


def _code_layer_head(latent_bn: bool) -> Callable[[int, nn.Module, int, int], nn.Module]:
    return lambda bits, backbone, dim, n_classes: BackboneWithCodeLayer(
        bits, latent_bn=latent_bn, backbone=backbone, feature_dim=dim)


def _dsh_loss(bits: int, n_classes: int, seed: int) -> nn.Module:
    return DSHLoss(bits, alpha=0.01)


def _dpah_loss(bits: int, n_classes: int, seed: int) -> nn.Module:
    return dpah_loss(bits, n_classes, seed=seed)


def _orthohash_loss(bits: int, n_classes: int, seed: int) -> nn.Module:
    return orthohash_loss(bits, n_classes, seed=seed)


#: The one registry of the course's methods as ``reproduce`` runs them.
METHODS: dict[str, MethodSpec] = {
    "lsh": MethodSpec(None, _fitted(lambda bits, seed: LSH(bits, random_state=seed))),
    "itq": MethodSpec(None, _fitted(lambda bits, seed: PCAITQ(bits, n_iter=50,
                                                               random_state=seed))),
    "ksh": MethodSpec(None, _fitted(lambda bits, seed: KSH(bits, random_state=seed),
                                    supervised=True)),
    "cnnbh": MethodSpec(
        CNNBH_EPOCHS, _run_cnnbh,
        make_head=lambda bits, backbone, dim, n_classes: CNNBHNet(
            bits, n_classes, backbone=backbone, feature_dim=dim),
        make_loss=lambda bits, n_classes, seed: nn.CrossEntropyLoss(label_smoothing=0.1)),
    "dsh": MethodSpec(CODE_LAYER_EPOCHS, _run_dsh, make_head=_code_layer_head(False),
                      make_loss=_dsh_loss),
    "dpah": MethodSpec(DPAH_EPOCHS,
                       _code_layer("dpah", dpah_recipe, _dpah_loss, latent_bn=True),
                       make_head=_code_layer_head(True), make_loss=_dpah_loss),
    "orthohash": MethodSpec(ORTHOHASH_EPOCHS,
                            _code_layer("orthohash", orthohash_recipe, _orthohash_loss,
                                        latent_bn=True),
                            make_head=_code_layer_head(True), make_loss=_orthohash_loss),
}
#: What ``reproduce`` runs when no methods are named (KSH is opt-in: it is slow to fit).
DEFAULT_METHODS = ("lsh", "itq", "cnnbh", "dsh", "dpah", "orthohash")
#: The methods that are trained (and so take an ``epochs`` override), with their epochs per
#: profile; LSH and ITQ are fitted.
TRAINED_METHODS = {name: spec.epochs for name, spec in METHODS.items() if spec.epochs}


#: Budgets that differ by protocol: ``cifar10-dsh`` trains on 50,000 images (ten times
#: ``cifar10-1k``'s 5,000), so under ``quick`` the class-target methods get 30 epochs there
#: (about 55 s an epoch on a 2-core CPU) instead of 60.
PROTOCOL_EPOCHS = {"cifar10-dsh": {"quick": {"cnnbh": 30, "dpah": 30, "orthohash": 30}}}


def schedule(method: str, protocol: str, profile: str) -> int | None:
    """The epochs ``method`` trains for on ``protocol`` under ``profile`` (``None``: fitted)."""
    override = PROTOCOL_EPOCHS.get(protocol, {}).get(profile, {}).get(method)
    if method == "dsh" and protocol == "cifar10-dsh":  # DSH's own network (see _run_dsh)
        override = DSH_EPOCHS["cifar10-dsh"].get(profile)
    return override or TRAINED_METHODS.get(method, {}).get(profile)


def _budget(method: str, data: ProtocolData, epochs: int | None) -> int | None:
    """``epochs``, or ``None`` when it is the protocol and profile's own schedule."""
    return None if epochs == schedule(method, data.protocol, data.profile) else epochs


def result_name(method: str, seed: int = 0, epochs: int | None = None) -> str:
    """The name a method's results are saved under: ``method`` for seed 0 and the profile's
    schedule (``epochs=None``; the committed results); ``<method>_ep<epochs>`` for another
    training budget and ``..._seed<seed>`` for another seed, so that neither overwrites them."""
    name = method if epochs is None else f"{method}_ep{int(epochs)}"
    return name if int(seed) == 0 else f"{name}_seed{int(seed)}"


def _check_epochs(methods: Sequence[str], epochs: int | None) -> None:
    if epochs is None:
        return
    positive_int(epochs, "epochs")
    fitted = [m for m in methods if m not in TRAINED_METHODS]
    if fitted:
        raise ValueError(f"epochs applies to the trained methods ({', '.join(TRAINED_METHODS)})"
                         f"; {', '.join(fitted)} are fitted, not trained: leave them out.")


def run_method(method: str, bits: int, data: ProtocolData, seed: int = 0, device=None,
               features: tuple[dict, dict] | dict | None = None,
               progress: bool | None = None, epochs: int | None = None,
               regime: str = "scratch", backbone: str = "small") -> dict:
    """Train (or load) one method at one code length and save its results (under
    :func:`result_name`: ``<method>_seed<seed>`` for a seed other than 0,
    ``<method>_ep<epochs>`` for a training budget other than the profile's); returns the record.

    Args:
        features: for ``lsh``/``itq``, the output of :func:`classifier_features` (computed
            here when ``None``).
        epochs: ``None`` (the profile's schedule) or the number of epochs to train a
            :data:`TRAINED_METHODS` model for, with the same recipe (the one-cycle schedule
            stretched to it); the profile's own number counts as ``None``.
        regime: ``"scratch"`` (the small backbone, or DSH's own network in notebook 04),
            ``"frozen"`` (heads on a pretrained backbone's pooled features; LSH/ITQ/KSH fitted
            on them), ``"finetune-last"`` (the last stage and the head trained on cached
            activations) or ``"finetune"`` (the whole backbone end to end; a GPU's job).
        backbone: ``"small"`` for ``scratch``, else a pretrained backbone
            (``"efficientnet_lite0"`` works offline).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}.")
    positive_int(bits, "bits")
    _check_regime(regime, backbone)
    if regime == "scratch":
        _check_epochs([method], epochs)
        epochs = _budget(method, data, epochs)
    elif epochs is not None:
        positive_int(epochs, "epochs")
        epochs = None if epochs == REGIME_EPOCHS[regime][data.profile] else epochs
    job = Job(data=data, bits=int(bits), name=result_name(method, seed, epochs), seed=seed,
              epochs=epochs, device=device, progress=progress,
              paper_map=_paper(method, bits, data.protocol) if regime == "scratch" else None,
              features=features, regime=regime, backbone=backbone)
    if regime == "scratch":
        return METHODS[method].run(job)
    if regime == "finetune":
        return _run_finetune(job, method)
    return _run_cached(job, method)


def train_and_save(data: ProtocolData, bits: int, loss_fn: nn.Module, recipe: Recipe, *,
                   method: str, name: str | None = None, latent_bn: bool = False,
                   pretrained: str | None = None, seed: int = 0, device=None,
                   progress: bool | None = None, paper_map: float | None = None,
                   **run_info) -> tuple[BackboneWithCodeLayer, History, dict]:
    """Train (or load) ``BackboneWithCodeLayer(bits)`` with ``loss_fn``
    (:func:`~hashlib_edu.training.train_with_code_layer`, checkpoint named by ``method``) and
    save its evaluation through the results writer under ``name`` (default: ``method``).

    The record also stores ``repr(loss_fn)`` as ``loss``, the ``backbone`` (``"small"`` or the
    pretrained network's name) and ``regime`` (``"scratch"``, or ``"finetune"`` for a
    pretrained backbone), ``latent_bn`` when set, and ``run_info``.

    Returns:
        ``(model, history, record)``.
    """
    model, history = train_with_code_layer(data, bits, loss_fn, recipe, method=method,
                                           latent_bn=latent_bn, pretrained=pretrained,
                                           seed=seed, device=device, progress=progress)
    info = {"loss": repr(loss_fn), "backbone": pretrained or "small",
            "regime": "finetune" if pretrained else "scratch",
            **({"latent_bn": True} if latent_bn else {}), **run_info}
    record = save_model_results(model, name or method, bits, data, history, recipe=recipe,
                                paper_map=paper_map, seed=seed, **info)
    return model, history, record



# --------------------------------------------------------------------------- pretrained regimes

#: Epochs per profile of the pretrained regimes: the cached ones (``frozen``,
#: ``finetune-last``) and the whole-backbone ``finetune``.
REGIME_EPOCHS = {"frozen": {"smoke": 1, "quick": 20, "paper": 20},
                 "finetune-last": {"smoke": 1, "quick": 20, "paper": 20},
                 "finetune": {"smoke": 1, "quick": 10, "paper": 100}}
#: Input resolution of the pretrained backbones per profile (``smoke`` keeps CI fast).
REGIME_INPUT_SIZE = {"smoke": 64, "quick": 224, "paper": 224}


def _check_regime(regime: str, backbone: str) -> None:
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}; got {regime!r}.")
    if regime == "scratch":
        if backbone != "small":
            raise ValueError(f"regime 'scratch' trains the small backbone; got backbone "
                             f"{backbone!r}: use --regime frozen, finetune-last or finetune.")
        return
    if backbone not in PRETRAINED_BACKBONES:
        raise ValueError(f"regime {regime!r} needs a pretrained backbone, one of "
                         f"{list(PRETRAINED_BACKBONES)} (offline: efficientnet_lite0); got "
                         f"{backbone!r}.")
    if regime == "finetune-last" and backbone != "efficientnet_lite0":
        raise ValueError("regime 'finetune-last' is defined for efficientnet_lite0 (its last "
                         "stage); use 'frozen' or 'finetune' for other backbones.")


def pretrained_features(data: ProtocolData, backbone: str = "efficientnet_lite0",
                        cut: str = "last-stage", device=None,
                        progress: bool | None = None) -> dict[str, np.ndarray]:
    """Cached activations (:func:`~hashlib_edu.activations.cached_activations`) of ``data``'s
    train/query/database images at ``cut`` (``"pooled"``: L2-normalized pooled features, as the
    baselines hash them; ``"last-stage"``: before EfficientNet-Lite0's last stage), and of the
    mirrored training images (``"train_mirrored"``); ``"seconds"``: the time it took (near 0
    once cached). All 60,000 images are computed once and shared by every protocol, except
    under ``smoke`` (only the images the small split uses)."""
    size = REGIME_INPUT_SIZE[data.profile]
    start = time.perf_counter()
    # EfficientNet-Lite0's pooled features come from the last-stage cache through its (frozen)
    # last stage: one cache serves both regimes, and the expensive part runs once.
    cached_cut = "last-stage" if backbone == "efficientnet_lite0" else cut
    used = np.union1d(np.union1d(data.query_idx, data.train_idx), data.db_idx)
    every = len(used) == len(data.labels)
    acts = cached_activations(data.dataset, backbone, cached_cut, size,
                              indices=None if every else used, device=device,
                              progress=progress)
    mirrored = cached_activations(data.dataset, backbone, cached_cut, size,
                                  indices=data.train_idx, mirror=True, device=device,
                                  progress=progress)
    out = {part: np.asarray(acts[np.searchsorted(used, idx)], dtype=np.float32)
           for part, idx in (("train", data.train_idx), ("query", data.query_idx),
                             ("database", data.db_idx))}
    out["train_mirrored"] = np.asarray(mirrored, dtype=np.float32)
    if cut == "pooled" and cached_cut != "pooled":
        _, tail, _ = split_pretrained(backbone, cached_cut, size)
        tail.to(select_device(device))
        out = {part: embed(tail, x, batch_size=500).numpy() for part, x in out.items()}
    if cut == "pooled":
        for part, x in out.items():
            out[part] = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    out["seconds"] = time.perf_counter() - start
    return out


def _run_cached(job: Job, method: str) -> dict:
    """``frozen`` / ``finetune-last``: the method's head (and for ``finetune-last`` the last
    stage of the backbone) trained on cached activations with the method's loss."""
    spec, data = METHODS[method], job.data
    cut = "pooled" if job.regime == "frozen" else "last-stage"
    size = REGIME_INPUT_SIZE[data.profile]
    feats = job.features or pretrained_features(data, job.backbone, cut, job.device,
                                                job.progress)
    if spec.make_head is None:  # LSH / ITQ / KSH on the frozen pooled features
        if job.regime != "frozen":
            raise ValueError(f"{method} is fitted on features: use it with regime 'frozen'.")
        info = {"features": f"L2-normalized pooled features of {job.backbone} ({size} px)",
                "activation_seconds": feats["seconds"]}
        return spec.run(dataclasses.replace(job, features=(feats, info)))
    if cut == "pooled":
        tail, dim = nn.Identity(), feats["train"].shape[1]
    else:
        _, tail, dim = split_pretrained(job.backbone, cut, size)
    n_classes = len(data.dataset.classes)
    seed_everything(job.seed)
    model = spec.make_head(job.bits, tail, dim, n_classes)
    loss_fn = spec.make_loss(job.bits, n_classes, job.seed)
    recipe = cached_recipe(job.epochs or REGIME_EPOCHS[job.regime][data.profile])
    name = run_name(method, job.bits, data, recipe, job.seed,
                    tag=f"{job.regime}-{job.backbone}-{size}-{loss_fn!r}-{state_digest(loss_fn)}")
    device = select_device(job.device)
    loader = ActivationLoader(feats["train"], data.part_labels("train"),
                              mirrored=feats["train_mirrored"], batch_size=recipe.batch_size,
                              drop_last=len(feats["train"]) > recipe.batch_size, seed=job.seed,
                              device=device)
    history = train_model(model, loss_fn, data, recipe, name=name, seed=job.seed, device=device,
                          extra_params=list(loss_fn.parameters()), progress=job.progress,
                          loader=loader)
    start = time.perf_counter()
    q, db = encode(model, feats["query"]), encode(model, feats["database"])
    return save_results(job.name, job.bits, data.protocol, q, db, data.split, data.labels,
                        regime=job.regime, backbone=job.backbone,
                        train_seconds=history.train_seconds,
                        encode_seconds=time.perf_counter() - start, epochs=history.epochs,
                        profile=data.profile, device=str(device), seed=job.seed,
                        paper_map=job.paper_map, recipe=dict(recipe.__dict__),
                        loss=repr(loss_fn), input_size=size, cut=cut,
                        activation_seconds=feats["seconds"])


def _run_finetune(job: Job, method: str) -> dict:
    """``finetune``: the whole pretrained backbone and the method's head trained end to end on
    the images (resized on the device; mixed precision on a GPU)."""
    spec, data = METHODS[method], job.data
    if spec.make_head is None:
        raise ValueError(f"{method} is fitted on features: use it with regime 'frozen'.")
    size = REGIME_INPUT_SIZE[data.profile]
    net, dim = pretrained_backbone(job.backbone)
    n_classes = len(data.dataset.classes)
    seed_everything(job.seed)
    model = spec.make_head(job.bits, nn.Sequential(backbone_input(job.backbone, size), net), dim,
                           n_classes)
    loss_fn = spec.make_loss(job.bits, n_classes, job.seed)
    recipe = finetune_recipe(job.epochs or REGIME_EPOCHS["finetune"][data.profile])
    name = run_name(method, job.bits, data, recipe, job.seed,
                    tag=f"finetune-{job.backbone}-{size}-{loss_fn!r}-{state_digest(loss_fn)}")
    history = train_model(model, loss_fn, data, recipe, name=name, seed=job.seed,
                          device=job.device, extra_params=list(loss_fn.parameters()),
                          progress=job.progress)
    return save_model_results(model, job.name, job.bits, data, history, recipe=recipe,
                              paper_map=job.paper_map, seed=job.seed, regime="finetune",
                              backbone=job.backbone, loss=repr(loss_fn), input_size=size)


def reproduce(methods: Sequence[str] = DEFAULT_METHODS, bits: Sequence[int] = DEFAULT_BITS,
              protocol: str = "cifar10-1k", profile: str | None = None, seed: int = 0,
              device=None, progress: bool | None = None, data: ProtocolData | None = None,
              skip_existing: bool = False, epochs: int | None = None,
              regime: str = "scratch", backbone: str = "small") -> list[dict]:
    """Run :func:`run_method` for every (method, bits); returns the saved records in order.

    Args:
        skip_existing: leave out the (method, bits) whose results file already exists in this
            profile's ``results/`` (notebook 07 runs only what is missing).
        epochs: ``None`` (each method's schedule in this profile) or a training budget for
            every method (trained methods only); see :func:`run_method`.
        regime, backbone: see :func:`run_method`; each (profile, regime, backbone) writes to
            its own results folder (:func:`~hashlib_edu.results.results_folder`).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}.")
    _check_regime(regime, backbone)
    if regime == "scratch":
        _check_epochs(methods, epochs)
    profile = use_profile(profile)
    device = select_device(device)
    if data is None:
        data = load_protocol(protocol, profile, seed=0)
    from tqdm.auto import tqdm

    show = progress_enabled() if progress is None else progress
    jobs = [(m, b) for m in methods for b in bits
            if not (skip_existing
                    and codes_path(data.protocol,
                                   result_name(m, seed, _budget(m, data, epochs)
                                               if regime == "scratch" else epochs), b,
                                   data.profile, regime=regime, backbone=backbone).is_file())]
    features = None
    if regime in ("frozen", "finetune-last") and jobs:  # one cache read for every method
        features = pretrained_features(data, backbone, "pooled" if regime == "frozen"
                                       else "last-stage", device, progress=show)
    records = []
    bar = tqdm(jobs, desc="reproduce", disable=not show)
    for method, b in bar:
        bar.set_postfix_str(f"{method}-{b}")
        if regime == "scratch" and METHODS[method].epochs is None and features is None:
            features = classifier_features(data, seed, device, progress=show)  # CNN features
        records.append(run_method(method, b, data, seed=seed, device=device,
                                  features=features if regime != "finetune" else None,
                                  progress=show, epochs=epochs, regime=regime,
                                  backbone=backbone))
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashlib_edu.reproduce",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    parser.add_argument("--bits", nargs="+", type=int, default=list(DEFAULT_BITS))
    parser.add_argument("--protocol", default="cifar10-1k",
                        choices=("cifar10-1k", "cifar10-dsh"))
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="smoke | quick | paper (default: $HASHLIB_EDU_PROFILE, else quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="train every method for this many epochs instead of the "
                             "profile's schedule (trained methods only); results are saved "
                             "as <method>_ep<epochs>")
    parser.add_argument("--regime", choices=REGIMES, default="scratch",
                        help="scratch (small backbone) | frozen | finetune-last | finetune "
                             "(pretrained backbone)")
    parser.add_argument("--backbone", default=None,
                        help="small for scratch (default); a pretrained backbone otherwise "
                             f"({', '.join(PRETRAINED_BACKBONES)}; default efficientnet_lite0, "
                             "which works offline)")
    parser.add_argument("--skip-existing", action="store_true",
                        help="leave out every (method, bits) whose results already exist for "
                             "this profile, regime and backbone")
    args = parser.parse_args(argv)
    backbone = args.backbone or ("small" if args.regime == "scratch" else "efficientnet_lite0")
    try:
        _check_regime(args.regime, backbone)
    except ValueError as err:
        parser.error(str(err))
    if any(b < 1 for b in args.bits):
        parser.error("--bits must be positive integers")
    if args.epochs is not None and args.regime == "scratch":
        try:
            _check_epochs(args.methods, args.epochs)
        except ValueError as err:
            parser.error(str(err))
    profile = get_profile(args.profile)
    start = time.perf_counter()
    records = reproduce(args.methods, args.bits, args.protocol, profile, args.seed,
                        epochs=args.epochs, regime=args.regime, backbone=backbone,
                        skip_existing=args.skip_existing)
    width = max([10] + [len(r["method"]) for r in records])
    print(f"{'method':{width}s} {'bits':>4s} {'mAP':>7s} {'P@H<=2':>7s} {'train min':>9s}"
          "   (mAP: tie-aware mAP@all)")
    for r in records:
        train = r.get("train_seconds")
        print(f"{r['method']:{width}s} {r['bits']:4d} {r['map_tie_aware']:7.4f} "
              f"{r['p_at_h2']:7.4f} {'-' if train is None else f'{train / 60:9.1f}'}")
    folder = results_folder(args.protocol, profile, args.regime, backbone)
    print(f"{len(records)} results written to {folder} (profile {profile}) "
          f"in {(time.perf_counter() - start) / 60:.1f} min of wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
