"""Named training recipes shared by several notebooks, so that one trained model (one
checkpoint) serves every notebook that needs it -- e.g. the CNNBH classifier of notebook 03
also provides the "CNN features" of the baselines in notebook 02.
"""

from __future__ import annotations

from torch import nn

from .experiments import ProtocolData, Recipe, run_name, train_model
from .models import CNNBHNet, HashNet
from .training import History, seed_everything

__all__ = ["CNNBH_EPOCHS", "HASHNET_EPOCHS", "cnnbh_recipe", "cnnbh_plain_recipe", "train_cnnbh",
           "hashnet_recipe", "train_hashnet"]

#: Epochs of the CNNBH classifier per profile (the paper: 900).
CNNBH_EPOCHS = {"smoke": 1, "quick": 50, "paper": 900}
#: Dropout after each pooling layer in our modern recipe (the paper: 0.5; with BatchNorm,
#: augmentation and a 50-epoch budget, 0.5 and 0.2 underfit -- see notebook 03).
MODERN_CONV_DROPOUT = 0.0


def cnnbh_recipe(epochs: int) -> Recipe:
    """Our modern recipe: AdamW, one-cycle learning rate, pad-and-crop + flip, batch 128."""
    return Recipe(epochs=epochs, lr=3e-3, weight_decay=5e-4, batch_size=128,
                  optimizer="adamw", schedule="onecycle", augment=True,
                  extra={"label_smoothing": 0.1, "batchnorm": True,
                         "conv_dropout": MODERN_CONV_DROPOUT})


def cnnbh_plain_recipe(epochs: int) -> Recipe:
    """The paper's plain recipe (no BatchNorm, no augmentation, SGD at a constant 0.01)."""
    return Recipe(epochs=epochs, lr=0.01, weight_decay=5e-4, batch_size=128,
                  optimizer="sgd", schedule="constant", augment=False,
                  extra={"label_smoothing": 0.0, "batchnorm": False, "conv_dropout": 0.5})


def train_cnnbh(data: ProtocolData, bits: int, recipe: Recipe, dropout: float | None = None,
                seed: int = 0, device=None, progress: bool | None = None
                ) -> tuple[CNNBHNet, History]:
    """Train (or load the finished checkpoint of) one CNNBH model.

    Args:
        data: protocol data (training images are used).
        bits: knob width ``k``.
        recipe: from :func:`cnnbh_recipe` or :func:`cnnbh_plain_recipe`; its ``extra`` holds
            ``label_smoothing``, ``batchnorm`` and ``conv_dropout``.
        dropout: final dropout ``p`` (``None``: the paper's Table 2 value for ``k``).

    Returns:
        ``(model, history)``; ``history.train_seconds`` is the training time actually spent.
    """
    extra = recipe.extra
    seed_everything(seed)
    model = CNNBHNet(bits, dropout=dropout, batchnorm=extra.get("batchnorm", True),
                     conv_dropout=extra.get("conv_dropout", 0.5))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=extra.get("label_smoothing", 0.0))
    name = run_name("cnnbh", bits, data, recipe, seed, tag=f"p{model.dropout_p}")
    history = train_model(model, loss_fn, data, recipe, name=name, seed=seed, device=device,
                          progress=progress)
    return model, history


def _state_digest(module: nn.Module) -> str:
    """Short digest of a module's parameters and buffers (e.g. OrthoHash targets)."""
    import hashlib

    h = hashlib.sha1()
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:8]


#: Epochs of a hash network on the shared small backbone, per profile (``cifar10-1k``).
HASHNET_EPOCHS = {"smoke": 1, "quick": 50, "paper": 100}


def hashnet_recipe(epochs: int, lr: float = 3e-3) -> Recipe:
    """The modern recipe for the shared small backbone with a hash head (DSH/DPAH/OrthoHash
    comparisons): as :func:`cnnbh_recipe`, without label smoothing (the loss decides)."""
    return Recipe(epochs=epochs, lr=lr, weight_decay=5e-4, batch_size=128,
                  optimizer="adamw", schedule="onecycle", augment=True,
                  extra={"batchnorm": True, "conv_dropout": MODERN_CONV_DROPOUT})


def train_hashnet(data: ProtocolData, bits: int, loss_fn: nn.Module, recipe: Recipe, *,
                  method: str, latent_bn: bool = False, seed: int = 0, device=None,
                  progress: bool | None = None) -> tuple[HashNet, History]:
    """Train (or load) ``HashNet(bits)`` -- the shared small backbone + a linear hash layer --
    with ``loss_fn(outputs, labels)``; a loss with parameters (DPAH anchors) is optimized too.

    The checkpoint name includes ``method``, the recipe, ``repr(loss_fn)`` (its
    hyper-parameters) and a digest of the loss's initial state (targets, anchors), so
    changing a margin, a target seed or custom targets trains a new model.
    """
    extra = recipe.extra
    seed_everything(seed)
    model = HashNet(bits, latent_bn=latent_bn, batchnorm=extra.get("batchnorm", True),
                    conv_dropout=extra.get("conv_dropout", 0.5))
    name = run_name(method, bits, data, recipe, seed,
                    tag=f"{repr(loss_fn)}-bn{latent_bn}-{_state_digest(loss_fn)}")
    history = train_model(model, loss_fn, data, recipe, name=name, seed=seed, device=device,
                          extra_params=list(loss_fn.parameters()), progress=progress)
    return model, history
