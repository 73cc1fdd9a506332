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
* ``dsh``: backbone + code layer trained with ``DSHLoss(k, alpha=0.01)`` (notebook 04 uses
  DSH's own network instead; this is the equal-backbone comparison) with
  :func:`~hashlib_edu.training.code_layer_recipe` (AdamW, one-cycle, 50 epochs in ``quick``);
* ``dpah``: :func:`~hashlib_edu.methods.dpah.dpah_loss` (positions started at 0.9 x the rows
  of a Hadamard matrix, s = 2/sqrt(k), alpha = 0.5) and
* ``orthohash``: :func:`~hashlib_edu.methods.orthohash.orthohash_loss` (OrthoCos, Hadamard
  targets, m = 0.3, s = sqrt(k)), both with BN on the latent, as notebooks 05 and 06, and
  CNNBH's SGD recipe without label smoothing (60 epochs in ``quick``).

For each (method, bits) the results writer stores ``results/<protocol>/<method>-<bits>.json``
and the codes (``<method>_seed<seed>`` for ``--seed`` other than 0, ``<method>_ep<epochs>`` for
an ``--epochs`` budget other than the profile's, so the committed results stay as they are).
A trained model is a checkpoint in ``checkpoints/`` (named by method, bits,
recipe and loss): a finished one is loaded, an interrupted one resumes, so re-running the
command after an interruption picks up where it stopped. The notebooks use the same
functions, so a model trained by a notebook is reused here and vice versa.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from .backbones import BackboneWithCodeLayer
from .data import ProtocolData, load_protocol
from .methods.baselines import LSH, PCAITQ
from .methods.cnnbh import CNNBH_EPOCHS, cnnbh_recipe, train_cnnbh
from .methods.dpah import DPAH_EPOCHS, dpah_loss, dpah_recipe
from .methods.dsh import DSHLoss
from .methods.orthohash import ORTHOHASH_EPOCHS, orthohash_loss, orthohash_recipe
from .metrics import positive_int
from .profiles import PROFILES, get_profile, use_profile
from .report import COMPARISON_BITS
from .results import codes_path, save_model_results, save_results
from .training import (
    CODE_LAYER_EPOCHS,
    History,
    Recipe,
    backbone_features,
    code_layer_recipe,
    progress_enabled,
    select_device,
    train_with_code_layer,
)

__all__ = ["METHODS", "MethodSpec", "TRAINED_METHODS", "DEFAULT_BITS", "PAPER_MAP",
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
    recipe = cnnbh_recipe(CNNBH_EPOCHS[data.profile])
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
    features: tuple[dict, dict] | None  # lsh/itq: classifier_features(...)


@dataclass(frozen=True)
class MethodSpec:
    """A method of :data:`METHODS`: ``epochs`` per profile (``None``: fitted, not trained) and
    ``run(job) -> record`` (trains or loads, then saves through the results writer)."""

    epochs: Mapping[str, int] | None
    run: Callable[[Job], dict]


def _fitted(make_hasher: Callable[[int, int], object]) -> Callable[[Job], dict]:
    def run(job: Job) -> dict:
        from threadpoolctl import threadpool_limits

        data = job.data
        feats, info = job.features or classifier_features(data, job.seed, job.device,
                                                          job.progress)
        hasher = make_hasher(job.bits, job.seed)
        start = time.perf_counter()
        with threadpool_limits(1):  # many small products: one BLAS thread is faster
            hasher.fit(feats["train"])
            fitted = time.perf_counter()
            q, db = hasher.encode(feats["query"]), hasher.encode(feats["database"])
        return save_results(job.name, job.bits, data.protocol, q, db, data.split, data.labels,
                            train_seconds=fitted - start,
                            encode_seconds=time.perf_counter() - fitted, epochs=None,
                            profile=data.profile, device="cpu", seed=job.seed,
                            paper_map=job.paper_map, hasher=repr(hasher), **info)
    return run


def _run_cnnbh(job: Job) -> dict:
    recipe = cnnbh_recipe(job.epochs or CNNBH_EPOCHS[job.data.profile])
    model, history = train_cnnbh(job.data, job.bits, recipe, seed=job.seed, device=job.device,
                                 progress=job.progress)
    return save_model_results(model, job.name, job.bits, job.data, history, recipe=recipe,
                              paper_map=job.paper_map, seed=job.seed)


def _code_layer(method: str, epochs: Mapping[str, int], make_recipe: Callable[[int], Recipe],
                make_loss: Callable[[int, int, int], nn.Module],
                latent_bn: bool) -> Callable[[Job], dict]:
    """``run`` for a method that trains the small backbone + a code layer with its loss."""
    def run(job: Job) -> dict:
        recipe = make_recipe(job.epochs or epochs[job.data.profile])
        loss_fn = make_loss(job.bits, len(job.data.dataset.classes), job.seed)
        return train_and_save(job.data, job.bits, loss_fn, recipe, method=method,
                              name=job.name, latent_bn=latent_bn, seed=job.seed,
                              device=job.device, progress=job.progress,
                              paper_map=job.paper_map,
                              network="SmallBackbone + linear hash layer")[2]
    return run


#: The one registry of the course's methods as ``reproduce`` runs them.
METHODS: dict[str, MethodSpec] = {
    "lsh": MethodSpec(None, _fitted(lambda bits, seed: LSH(bits, random_state=seed))),
    "itq": MethodSpec(None, _fitted(lambda bits, seed: PCAITQ(bits, n_iter=50,
                                                               random_state=seed))),
    "cnnbh": MethodSpec(CNNBH_EPOCHS, _run_cnnbh),
    "dsh": MethodSpec(CODE_LAYER_EPOCHS, _code_layer(
        "dsh", CODE_LAYER_EPOCHS, code_layer_recipe,
        lambda bits, n_classes, seed: DSHLoss(bits, alpha=0.01), latent_bn=False)),
    "dpah": MethodSpec(DPAH_EPOCHS, _code_layer(
        "dpah", DPAH_EPOCHS, dpah_recipe,
        lambda bits, n_classes, seed: dpah_loss(bits, n_classes, seed=seed), latent_bn=True)),
    "orthohash": MethodSpec(ORTHOHASH_EPOCHS, _code_layer(
        "orthohash", ORTHOHASH_EPOCHS, orthohash_recipe,
        lambda bits, n_classes, seed: orthohash_loss(bits, n_classes, seed=seed),
        latent_bn=True)),
}
#: The methods that are trained (and so take an ``epochs`` override), with their epochs per
#: profile; LSH and ITQ are fitted.
TRAINED_METHODS = {name: spec.epochs for name, spec in METHODS.items() if spec.epochs}


def _budget(method: str, profile: str, epochs: int | None) -> int | None:
    """``epochs``, or ``None`` when it is the profile's own schedule for ``method``."""
    return None if epochs == TRAINED_METHODS.get(method, {}).get(profile) else epochs


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
               features: tuple[dict, dict] | None = None,
               progress: bool | None = None, epochs: int | None = None) -> dict:
    """Train (or load) one method at one code length and save its results (under
    :func:`result_name`: ``<method>_seed<seed>`` for a seed other than 0,
    ``<method>_ep<epochs>`` for a training budget other than the profile's); returns the record.

    Args:
        features: for ``lsh``/``itq``, the output of :func:`classifier_features` (computed
            here when ``None``).
        epochs: ``None`` (the profile's schedule) or the number of epochs to train a
            :data:`TRAINED_METHODS` model for, with the same recipe (the one-cycle schedule
            stretched to it); the profile's own number counts as ``None``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}.")
    positive_int(bits, "bits")
    _check_epochs([method], epochs)
    epochs = _budget(method, data.profile, epochs)
    job = Job(data=data, bits=int(bits), name=result_name(method, seed, epochs), seed=seed,
              epochs=epochs, device=device, progress=progress,
              paper_map=_paper(method, bits, data.protocol), features=features)
    return METHODS[method].run(job)


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


def reproduce(methods: Sequence[str] = METHODS, bits: Sequence[int] = DEFAULT_BITS,
              protocol: str = "cifar10-1k", profile: str | None = None, seed: int = 0,
              device=None, progress: bool | None = None, data: ProtocolData | None = None,
              skip_existing: bool = False, epochs: int | None = None) -> list[dict]:
    """Run :func:`run_method` for every (method, bits); returns the saved records in order.

    Args:
        skip_existing: leave out the (method, bits) whose results file already exists in this
            profile's ``results/`` (notebook 07 runs only what is missing).
        epochs: ``None`` (each method's schedule in this profile) or a training budget for
            every method (trained methods only); see :func:`run_method`.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}.")
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
                                   result_name(m, seed, _budget(m, data.profile, epochs)), b,
                                   data.profile).is_file())]
    features = None
    records = []
    bar = tqdm(jobs, desc="reproduce", disable=not show)
    for method, b in bar:
        bar.set_postfix_str(f"{method}-{b}")
        if METHODS[method].epochs is None and features is None:  # fitted on CNN features
            features = classifier_features(data, seed, device, progress=show)
        records.append(run_method(method, b, data, seed=seed, device=device,
                                  features=features, progress=show, epochs=epochs))
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashlib_edu.reproduce",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--bits", nargs="+", type=int, default=list(DEFAULT_BITS))
    parser.add_argument("--protocol", default="cifar10-1k",
                        choices=("cifar10-1k", "cifar10-dsh"))
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="smoke | quick | paper (default: $HASHLIB_EDU_PROFILE, else paper "
                             "on CUDA, quick on CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="train every method for this many epochs instead of the "
                             "profile's schedule (trained methods only); results are saved "
                             "as <method>_ep<epochs>")
    args = parser.parse_args(argv)
    if any(b < 1 for b in args.bits):
        parser.error("--bits must be positive integers")
    if args.epochs is not None:
        try:
            _check_epochs(args.methods, args.epochs)
        except ValueError as err:
            parser.error(str(err))
    profile = get_profile(args.profile)
    start = time.perf_counter()
    records = reproduce(args.methods, args.bits, args.protocol, profile, args.seed,
                        epochs=args.epochs)
    width = max([10] + [len(r["method"]) for r in records])
    print(f"{'method':{width}s} {'bits':>4s} {'mAP':>7s} {'P@H<=2':>7s} {'train min':>9s}")
    for r in records:
        train = r.get("train_seconds")
        print(f"{r['method']:{width}s} {r['bits']:4d} {r['map']:7.4f} {r['p_at_h2']:7.4f} "
              f"{'-' if train is None else f'{train / 60:9.1f}'}")
    print(f"{len(records)} results written to results/{args.protocol}/ (profile {profile}) "
          f"in {(time.perf_counter() - start) / 60:.1f} min of wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
