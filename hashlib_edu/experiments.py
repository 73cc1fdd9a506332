"""Experiment plumbing shared by the method notebooks: protocol data per profile,
one training recipe (optimizer + schedule + checkpoint), and run bookkeeping.

A notebook shows the loss and the model; this module hides the rest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .data import ImageDataset, load_cifar10, split
from .profiles import checkpoints_dir, get_profile
from .training import BatchLoader, History, fit, select_device

__all__ = ["ProtocolData", "load_protocol", "Recipe", "train_model", "run_name"]

#: Sizes of the tiny ``smoke`` subsets (CI runs notebooks in seconds).
SMOKE_SIZES = {"query": 100, "train": 500, "database": 2000}


@dataclass
class ProtocolData:
    """One protocol's split of an in-memory dataset.

    Attributes:
        dataset: all images and labels (``dataset.images (N, 32, 32, 3)`` uint8).
        protocol: protocol name, e.g. ``"cifar10-1k"``.
        query_idx, train_idx, db_idx: int64 indices into ``dataset``.
        profile: the profile these indices were made for (``smoke`` subsamples).
    """

    dataset: ImageDataset
    protocol: str
    query_idx: np.ndarray
    train_idx: np.ndarray
    db_idx: np.ndarray
    profile: str
    seed: int = 0

    @property
    def labels(self) -> np.ndarray:
        return self.dataset.labels

    def images(self, part: str) -> np.ndarray:
        """uint8 images of ``"query"``, ``"train"`` or ``"database"``."""
        return self.dataset.images[self._idx(part)]

    def part_labels(self, part: str) -> np.ndarray:
        return self.dataset.labels[self._idx(part)]

    def _idx(self, part: str) -> np.ndarray:
        parts = {"query": self.query_idx, "train": self.train_idx, "database": self.db_idx}
        if part not in parts:
            raise ValueError(f"part must be one of {sorted(parts)}; got {part!r}.")
        return parts[part]

    @property
    def split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.query_idx, self.train_idx, self.db_idx

    def sizes(self) -> dict[str, int]:
        return {"query": len(self.query_idx), "train": len(self.train_idx),
                "database": len(self.db_idx)}


def _subsample(idx: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Class-balanced subsample of ``n`` indices (sorted)."""
    if len(idx) <= n:
        return idx
    classes = np.unique(labels[idx])
    per = max(n // len(classes), 1)
    picked = [rng.permutation(idx[labels[idx] == c])[:per] for c in classes]
    return np.sort(np.concatenate(picked))


def load_protocol(protocol: str = "cifar10-1k", profile: str | None = None, seed: int = 0,
                  dataset: ImageDataset | None = None, root=None) -> ProtocolData:
    """CIFAR-10 (or ``dataset``) split by ``protocol``; under ``smoke``, small class-balanced
    subsets (100 queries, 500 training, 2,000 database images) so CI runs in seconds."""
    profile = get_profile(profile)
    ds = dataset if dataset is not None else load_cifar10(root)
    q, t, db = split(ds.labels, protocol, seed=seed, n_train=ds.n_train)
    if profile == "smoke":
        rng = np.random.default_rng(seed)
        q = _subsample(q, ds.labels, SMOKE_SIZES["query"], rng)
        t = _subsample(t, ds.labels, SMOKE_SIZES["train"], rng)
        db = np.union1d(t, _subsample(np.setdiff1d(db, t), ds.labels,
                                      SMOKE_SIZES["database"] - len(t), rng))
        if protocol == "cifar10-dsh":
            db = t.copy()
    return ProtocolData(ds, protocol, q, t, db, profile, seed)


@dataclass
class Recipe:
    """How to train: optimizer, schedule, batch, augmentation.

    Defaults are the course's "modern" recipe for small CPU budgets: AdamW with a
    one-cycle learning rate, batch 128, pad-and-crop + flip augmentation.
    """

    epochs: int = 60
    lr: float = 3e-3
    weight_decay: float = 5e-4
    batch_size: int = 128
    optimizer: str = "adamw"  # "adamw" | "sgd" | "adam"
    schedule: str = "onecycle"  # "onecycle" | "cosine" | "constant"
    augment: bool = True
    momentum: float = 0.9
    extra: dict = field(default_factory=dict)

    def key(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True, default=str)


def _optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    """``params``: parameters or parameter groups (a group's own ``weight_decay`` wins)."""
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay)
    raise ValueError(f"Unknown optimizer {recipe.optimizer!r}: use 'adamw', 'adam' or 'sgd'.")


def _parameter_groups(model: nn.Module, recipe: Recipe) -> list[dict]:
    """One group, or two when ``recipe.extra["backbone_lr_mult"]`` is set and the model has a
    ``backbone``: the backbone at ``lr * backbone_lr_mult`` (fine-tuning a pretrained network),
    the rest at ``lr``."""
    mult = recipe.extra.get("backbone_lr_mult")
    if mult is None:
        return [{"params": list(model.parameters())}]
    if not hasattr(model, "backbone"):
        raise ValueError("recipe.extra['backbone_lr_mult'] needs a model with a .backbone.")
    backbone = list(model.backbone.parameters())
    ids = {id(p) for p in backbone}
    return [{"params": backbone, "lr": recipe.lr * float(mult)},
            {"params": [p for p in model.parameters() if id(p) not in ids]}]


def _scheduler(opt, recipe: Recipe, steps_per_epoch: int):
    total = max(recipe.epochs * steps_per_epoch, 1)
    if recipe.schedule == "onecycle":  # each parameter group peaks at its own learning rate
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=[group["lr"] for group in opt.param_groups], total_steps=total)
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if recipe.schedule == "constant":
        return None
    raise ValueError(f"Unknown schedule {recipe.schedule!r}: use 'onecycle', 'cosine' or 'constant'.")


def run_name(method: str, bits: int, data: ProtocolData, recipe: Recipe, seed: int,
             tag: str = "") -> str:
    """A stable checkpoint name: method, bits, protocol, seed and a hash of the recipe."""
    digest = hashlib.sha1((recipe.key() + tag + data.profile).encode()).hexdigest()[:8]
    return f"{data.protocol}-{method}-{bits}-seed{seed}-{digest}"


def train_model(model: nn.Module, loss_fn, data: ProtocolData, recipe: Recipe, *,
                name: str, seed: int = 0, device=None, extra_params=(),
                progress: bool | None = None) -> History:
    """Train ``model`` on ``data``'s training images with ``recipe``.

    Checkpoints go to ``checkpoints/<name>.pt`` (a temporary folder under ``smoke``);
    a finished checkpoint is loaded instead of training again, and an interrupted
    one resumes. ``history.train_seconds`` is the training time actually spent
    (summed over resumed parts), not the time to load.

    Args:
        extra_params: parameters outside the model to optimize (e.g. DPAH anchors), with the
            recipe's learning rate but **no weight decay**: they are positions, not weights,
            and decay would pull them toward 0 (for DPAH: every anchor toward the zero code).
    """
    device = select_device(device)
    torch.manual_seed(seed)
    loader = BatchLoader(data.images("train"), data.part_labels("train"),
                         batch_size=recipe.batch_size, shuffle=True, augment=recipe.augment,
                         drop_last=len(data.train_idx) > recipe.batch_size, seed=seed,
                         device=device)
    params = _parameter_groups(model, recipe)
    extra_params = list(extra_params)
    if extra_params:
        params.append({"params": extra_params, "weight_decay": 0.0})
    opt = _optimizer(params, recipe)
    sched = _scheduler(opt, recipe, len(loader))
    ckpt = checkpoints_dir(data.profile) / f"{name}.pt"
    return fit(model, loss_fn, loader, recipe.epochs, opt, sched, device=device,
               checkpoint=ckpt, progress=progress, desc=name)
