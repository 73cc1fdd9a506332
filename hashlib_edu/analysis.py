"""Analysis helpers for trained hashing models: how far apart codes of the same and of
different classes are, and batch-norm statistics recomputed on new images.

* :func:`intra_inter_distances` - Hamming distances of all pairs of a (sub)sample of
  codes, split into same-class (intra) and different-class (inter) pairs
  (OrthoHash supplementary, Fig. 3);
* :func:`separability` - ``E[D_inter] - E[D_intra]``, the number Fig. 3 annotates;
* :func:`recompute_bn_statistics` - a copy of a model whose BatchNorm running mean and
  variance are re-estimated on given images (OrthoHash supplementary D.5, "domain
  shifting"; AdaBN when applied to every BN layer).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from .codes import as_numpy, check_binary
from .losses import similarity_matrix
from .metrics import hamming_distance
from .training import prepare

__all__ = ["intra_inter_distances", "separability", "bn_layers", "recompute_bn_statistics"]


# --------------------------------------------------------------------------- distances


def intra_inter_distances(
    codes: Any, labels: Any, max_items: int | None = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hamming distances of every unordered pair ``i < j`` of (a random subsample of) items,
    split by whether the two items are similar.

    Two items are *similar* (an intra-class pair) when they share a label, as everywhere in
    the course (:func:`hashlib_edu.losses.similarity_matrix`). With ``n`` items there are
    ``n (n - 1) / 2`` pairs; the ``(n, n)`` distance matrix is built at once with
    :func:`hashlib_edu.metrics.hamming_distance`, so keep ``max_items`` in the low
    thousands (2,000 items: 2.0 M pairs, a 16 MB matrix).

    Args:
        codes: ``(N, K)`` binary codes in ``{-1, +1}`` or ``{0, 1}`` (numpy or torch).
        labels: ``(N,)`` class ids or ``(N, C)`` multi-hot.
        max_items: use a random subsample of this many items (without replacement, chosen
            with ``seed``) when ``N`` is larger; ``None`` uses every item.
        seed: seed of the subsample.

    Returns:
        ``(intra, inter)``: 1-D int32 arrays of the distances of the similar and of the
        dissimilar pairs (in row-major order of the pairs ``i < j`` of the subsample).
    """
    codes, _ = check_binary(codes, "codes")
    labels = as_numpy(labels)
    n = len(codes)
    if len(labels) != n:
        raise ValueError(f"{n} codes but {len(labels)} labels; pass one label per code.")
    if n < 2:
        raise ValueError("intra_inter_distances needs at least 2 items.")
    if max_items is not None:
        if int(max_items) < 2:
            raise ValueError(f"max_items must be >= 2 (or None); got {max_items}.")
        if n > int(max_items):
            idx = np.sort(np.random.default_rng(seed).choice(n, int(max_items), replace=False))
            codes, labels = codes[idx], labels[idx]
            n = len(idx)
    dist = hamming_distance(codes, codes)  # (n, n) int32
    same = similarity_matrix(np.asarray(labels)).cpu().numpy()  # (n, n) bool
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    return dist[upper & same], dist[upper & ~same]


def separability(intra: Any, inter: Any) -> float:
    """``E[D_inter] - E[D_intra]``: mean inter-class minus mean intra-class Hamming distance
    (the arrow of the OrthoHash supplementary's Fig. 3). Larger is better."""
    intra, inter = np.asarray(intra, dtype=np.float64), np.asarray(inter, dtype=np.float64)
    if intra.size == 0 or inter.size == 0:
        raise ValueError("separability needs at least one intra-class and one inter-class pair.")
    return float(inter.mean() - intra.mean())


# --------------------------------------------------------------------------- batch norm


def bn_layers(model: nn.Module, which: str = "latent") -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` that :func:`recompute_bn_statistics` would touch.

    Args:
        which: ``"latent"`` - only ``model.latent_bn`` (the "+BN" layer on the codes of a
            :class:`hashlib_edu.backbones.BackboneWithCodeLayer`); ``"all"`` - every BatchNorm layer.
    """
    if which == "latent":
        layer = getattr(model, "latent_bn", None)
        if not isinstance(layer, nn.modules.batchnorm._BatchNorm):
            raise ValueError(
                "the model has no BatchNorm layer on its codes (model.latent_bn); build it with "
                "latent_bn=True, or pass layers='all' to recompute the backbone's BN layers."
            )
        return [layer]
    if which == "all":
        layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not layers:
            raise ValueError("the model has no BatchNorm layer.")
        return layers
    raise ValueError(f"layers must be 'latent' or 'all'; got {which!r}.")


@torch.no_grad()
def recompute_bn_statistics(model: nn.Module, images: Any, batch_size: int = 500,
                            layers: str = "latent", reset_affine: bool = False) -> nn.Module:
    r"""A **copy** of ``model`` whose BatchNorm running statistics are re-estimated on ``images``.

    The fix of the OrthoHash supplementary (D.5, Table 6): at test time a BN layer computes
    ``\gamma (\hat v - \mu) / \sqrt{\sigma + \epsilon} + \beta`` with the running mean
    ``\mu`` and variance ``\sigma`` collected on the *training* images. When the database
    comes from another distribution, ``\mu`` is off and ``sign`` flips bits; re-estimating
    ``\mu, \sigma`` on the database puts every bit's threshold back at the database mean.
    Only ``\mu`` (and ``\beta/\gamma``) moves the signs; ``\sigma`` only rescales.

    How: the selected BN layers are reset (``reset_running_stats``) and put in training
    mode, **everything else stays in eval mode** (dropout off, other BN layers frozen), and
    the images are passed through once without gradients. Each batch updates the running
    averages with momentum ``b / (images seen so far)``, so the running mean is exactly
    the mean over all images and the running variance the size-weighted mean of the
    per-batch (unbiased) variances - equal to the overall variance up to the spread of the
    batch means, negligible for batches of hundreds. (A last batch of a single image is
    skipped: one value has no variance.)

    Args:
        model: a trained model with ``embed`` or ``forward`` on normalized ``(n, 3, h, w)``
            batches; it is **not** modified (deep-copied first).
        images: ``(n, h, w, 3)`` uint8 images (numpy or torch), e.g. the database;
            normalized with :func:`hashlib_edu.training.prepare` (no augmentation).
        batch_size: images per forward pass (>= 2: train-mode BN needs two values).
        layers: ``"latent"`` (default) re-estimates only the BN layer on the codes - the
            paper's fix, which leaves the features the hash layer was trained on
            unchanged; ``"all"`` re-estimates every BN layer at once (AdaBN, Li et al.
            2018): each layer then normalizes with statistics of the new images, which also
            shifts the inputs of the layers after it.
        reset_affine: also set ``\gamma = 1, \beta = 0`` in the selected layers (the paper's
            full fix; with it, bit ``k`` is ``+1`` exactly when ``\hat v_k`` is above its
            mean over ``images``).

    Returns:
        The new model, in eval mode, on the same device as ``model``.
    """
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (BN statistics of one item); got {batch_size}.")
    images = torch.as_tensor(np.asarray(images)) if not torch.is_tensor(images) else images
    if len(images) < 2:
        raise ValueError("recompute_bn_statistics needs at least 2 images.")
    new = copy.deepcopy(model)
    new.eval()
    selected = bn_layers(new, layers)
    momenta = [bn.momentum for bn in selected]
    for bn in selected:
        bn.reset_running_stats()
        if reset_affine and bn.affine:
            bn.weight.fill_(1.0)
            bn.bias.fill_(0.0)
        bn.train()
    try:
        device = next(new.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    call = new.embed if hasattr(new, "embed") else new
    seen = 0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        if len(batch) < 2:  # a last single image: one value has no variance
            break
        seen += len(batch)
        for bn in selected:
            bn.momentum = len(batch) / seen  # cumulative, weighted by batch size
        call(prepare(batch, device=device))
    for bn, momentum in zip(selected, momenta, strict=True):
        bn.momentum = momentum
    new.eval()
    return new
