"""Training recipes: how a network is optimised (optimizer, learning-rate schedule, batch,
augmentation) -- :class:`Recipe` -- and the course's recipes by name.

Methods choose among these in their own modules; :func:`make_optimizer` and
:func:`make_scheduler` turn a recipe into the objects ``fit`` steps.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["Recipe", "make_optimizer", "parameter_groups", "make_scheduler",
           "MODERN_CONV_DROPOUT", "sgd_onecycle_recipe", "code_layer_recipe", "pretrained_recipe",
           "cached_recipe", "finetune_recipe"]


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


def make_optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    """``params``: parameters or parameter groups (a group's own ``weight_decay`` wins)."""
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay)
    raise ValueError(f"Unknown optimizer {recipe.optimizer!r}: use 'adamw', 'adam' or 'sgd'.")


def parameter_groups(model: nn.Module, recipe: Recipe) -> list[dict]:
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


def make_scheduler(opt, recipe: Recipe, steps_per_epoch: int):
    total = max(recipe.epochs * steps_per_epoch, 1)
    if recipe.schedule == "onecycle":  # each parameter group peaks at its own learning rate
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=[group["lr"] for group in opt.param_groups], total_steps=total)
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if recipe.schedule == "constant":
        return None
    raise ValueError(f"Unknown schedule {recipe.schedule!r}: use 'onecycle', 'cosine' or 'constant'.")


#: Dropout after each pooling layer in our modern recipe (the paper: 0.5; with BatchNorm,
#: augmentation and a short budget, 0.5 and 0.2 underfit an AdamW recipe -- see notebook 03).
MODERN_CONV_DROPOUT = 0.0


def sgd_onecycle_recipe(epochs: int, lr: float = 0.1, **extra) -> Recipe:
    """The course's SGD recipe for the small backbone (OrthoHash, DPAH; CNNBH's SGD candidate):
    SGD with momentum 0.9 and weight decay 1e-3, a one-cycle learning rate up to ``lr``, batch
    128, BatchNorm, pad-and-crop + flip; ``extra`` adds to (or replaces) the recipe's
    ``extra`` settings, e.g. ``label_smoothing=0.1``."""
    return Recipe(epochs=epochs, lr=lr, weight_decay=1e-3, batch_size=128,
                  optimizer="sgd", schedule="onecycle", augment=True,
                  extra={"batchnorm": True, "conv_dropout": MODERN_CONV_DROPOUT, **extra})


def code_layer_recipe(epochs: int, lr: float = 3e-3) -> Recipe:
    """The course's AdamW recipe for the shared small backbone with a code layer: AdamW
    (weight decay 5e-4) with a one-cycle learning rate up to ``lr``, batch 128, BatchNorm,
    pad-and-crop + flip. DSH on the shared backbone trains with it; OrthoHash and DPAH train
    with CNNBH's SGD recipe instead (:func:`hashlib_edu.methods.orthohash.orthohash_recipe`). Parameters of a loss (DPAH's anchors) get no weight decay
    (see :func:`hashlib_edu.training.train_model`)."""
    return Recipe(epochs=epochs, lr=lr, weight_decay=5e-4, batch_size=128,
                  optimizer="adamw", schedule="onecycle", augment=True,
                  extra={"batchnorm": True, "conv_dropout": MODERN_CONV_DROPOUT})


def pretrained_recipe(epochs: int, lr: float = 1e-4) -> Recipe:
    """Fine-tuning an ImageNet-pretrained backbone, as the OrthoHash paper: Adam at ``lr``
    (1e-4) with weight decay 5e-4, the backbone at a tenth of it, batch 256, a constant
    learning rate, pad-and-crop + flip on the 32x32 images before they are resized."""
    return Recipe(epochs=epochs, lr=lr, weight_decay=5e-4, batch_size=256,
                  optimizer="adam", schedule="constant", augment=True,
                  extra={"backbone_lr_mult": 0.1})


def cached_recipe(epochs: int, lr: float = 1e-3) -> Recipe:
    """Training a head (and, for ``finetune-last``, the backbone's last stage) on cached
    activations: AdamW (weight decay 5e-4) with a one-cycle learning rate up to ``lr``, batch
    128; the augmentation is the mirror images' cached activations (no crops: the frozen part
    has already seen the image)."""
    return Recipe(epochs=epochs, lr=lr, weight_decay=5e-4, batch_size=128,
                  optimizer="adamw", schedule="onecycle", augment=False,
                  extra={"inputs": "cached activations", "mirror": True})


def finetune_recipe(epochs: int, lr: float = 1e-4) -> Recipe:
    """Fine-tuning a whole pretrained backbone end to end (the ``finetune`` regime, a GPU's
    job): :func:`pretrained_recipe` with mixed precision on the GPU."""
    recipe = pretrained_recipe(epochs, lr)
    return dataclasses.replace(recipe, extra={**recipe.extra, "amp": True})
