"""Training: image transforms on whole batches, ``BatchLoader``, the ``fit`` loop, ``encode``,
and the checkpointed ``train_model`` that :func:`hashlib_edu.experiment.run` trains through.

The loop is deliberately small so a notebook can show it::

    for x, y in loader:                 # augmented batches, on the device
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()

Everything else here (progress bars, history, checkpoint/resume) is bookkeeping. CPU training
is the bottleneck of the course, so images stay decoded in memory as one uint8 tensor and
augmentation runs on a whole batch at once (pad-and-crop, horizontal flip) instead of
per-image PIL transforms.

A trained model is a checkpoint ``checkpoints/<name>.pt`` named by its experiment
(:func:`hashlib_edu.experiment.checkpoint_name`): a finished one is loaded, an interrupted one
resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .backbones import (
    ImageNetInput,
)
from .codes import sign
from .data import CIFAR10_MEAN, CIFAR10_STD, ProtocolData
from .losses import labels_checked
from .profiles import checkpoints_dir, training_forced
from .recipes import Recipe, make_optimizer, make_scheduler, parameter_groups

__all__ = [
    "to_float",
    "normalize",
    "random_crop_flip",
    "prepare",
    "select_device",
    "mixed_precision_dtype",
    "seed_everything",
    "deterministic_requested",
    "use_deterministic",
    "progress_enabled",
    "amp_requested",
    "encode_batch_size",
    "CheckpointError",
    "read_checkpoint",
    "EpochBatches",
    "BatchLoader",
    "History",
    "fit",
    "embed",
    "backbone_features",
    "encode",
    "state_digest",
    "train_model",
]

# --------------------------------------------------------------------------- transforms


def to_float(images: torch.Tensor) -> torch.Tensor:
    """``(n, h, w, 3)`` uint8 -> ``(n, 3, h, w)`` float32 in ``[0, 1]``."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"expected a uint8 image batch of shape (n, h, w, 3); got {tuple(images.shape)} "
            f"{images.dtype}."
        )
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def normalize(x: torch.Tensor, mean=CIFAR10_MEAN, std=CIFAR10_STD) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` on ``(n, 3, h, w)`` floats."""
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def random_crop_flip(x: torch.Tensor, padding: int = 4, flip: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop after zero padding, and random horizontal flip, for a whole batch.

    Args:
        x: ``(n, c, h, w)`` floats (already normalized: padding is 0 = the mean).
        padding: pixels of zero padding on each side before cropping back to ``h x w``.
        generator: CPU generator for reproducible augmentation.
    """
    n, _, h, w = x.shape
    if padding > 0:
        padded = F.pad(x, (padding, padding, padding, padding))
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h))  # (n, h)
        cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w))  # (n, w)
        idx_r = rows.view(n, 1, h, 1).expand(n, x.shape[1], h, padded.shape[3])
        padded = padded.gather(2, idx_r)
        idx_c = cols.view(n, 1, 1, w).expand(n, x.shape[1], h, w)
        x = padded.gather(3, idx_c)
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(mask.view(n, 1, 1, 1), x.flip(3), x)
    return x


def prepare(images: torch.Tensor, augment: bool = False, generator: torch.Generator | None = None,
            device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 ``(n, h, w, 3)`` -> normalized float ``(n, 3, h, w)`` on ``device``, optionally augmented."""
    if device is not None:
        images = images.to(device, non_blocking=True)
    x = normalize(to_float(images))
    if augment:
        x = random_crop_flip(x, generator=generator)
    return x


# --------------------------------------------------------------------------- the loop

#: A run whose remaining epochs take at least this long prints its own estimate after its
#: first epoch (shorter ones stay quiet, so smoke runs print nothing).
ESTIMATE_AFTER_SECONDS = 30.0


def select_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def mixed_precision_dtype(device: str | torch.device) -> torch.dtype | None:
    """The autocast type mixed-precision training uses on ``device``: ``torch.float16`` on a
    CUDA device, ``torch.bfloat16`` on a CPU with native bfloat16 units (Intel AMX or
    AVX512-BF16: about 1.8x faster training of the small networks here), else ``None`` (float32:
    on other CPUs bfloat16 would be emulated, hence slower)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        native = [getattr(cpu, name, None) for name in
                  ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
        if any(check is not None and check() for check in native):
            return torch.bfloat16
    return None


def amp_requested() -> bool:
    """Mixed precision is on unless the environment sets ``HASHLIB_EDU_AMP=0`` (float32
    everywhere: the times and numbers of a CPU without bfloat16 units)."""
    return os.environ.get("HASHLIB_EDU_AMP", "1").strip().lower() not in ("0", "false", "no")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def deterministic_requested() -> bool:
    """``$HASHLIB_EDU_DETERMINISTIC`` is ``1`` / ``true`` / ``yes`` / ``on``."""
    value = os.environ.get("HASHLIB_EDU_DETERMINISTIC", "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def use_deterministic(enabled: bool = True) -> None:
    """Ask PyTorch for deterministic kernels (``fit`` does when
    ``HASHLIB_EDU_DETERMINISTIC=1``).

    On a CPU the course's training is already deterministic: the same run on the same machine
    gives the same weights. On a GPU, cuDNN picks convolution algorithms by timing them and
    some backward kernels add in a varying order, so two runs differ in the last bits and
    then drift apart; this turns that off (``cudnn.benchmark = False``,
    ``cudnn.deterministic = True``, ``torch.use_deterministic_algorithms``) at some cost in
    speed. Operations without a deterministic version warn instead of failing.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    torch.backends.cudnn.benchmark = not enabled
    torch.backends.cudnn.deterministic = enabled
    torch.use_deterministic_algorithms(enabled, warn_only=True)


def progress_enabled() -> bool:
    """Progress bars for humans; silent when ``CI`` is set (stable notebook outputs)."""
    return not os.environ.get("CI") and not os.environ.get("HASHLIB_EDU_NO_PROGRESS")


class EpochBatches:
    """The batching every loader of the course shares: ``n`` items in batches of
    ``batch_size``, reshuffled every epoch in an order that depends only on ``seed`` and the
    epoch (a resumed run sees the same batches as an uninterrupted one); ``drop_last`` drops a
    last incomplete batch. Subclasses turn each batch of indices into ``(x, y)``; ``fit`` calls
    ``set_epoch(e)`` before each epoch."""

    def __init__(self, n: int, batch_size: int = 128, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0,
                 device: str | torch.device | None = None) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive; got {batch_size}.")
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.seed, self.epoch = seed, 0
        self.device = torch.device(device) if device is not None else torch.device("cpu")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def index_batches(self) -> Iterator[tuple[torch.Tensor, torch.Generator]]:
        """``(indices, generator)`` per batch: the epoch's generator, for augmentation too."""
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=gen) if self.shuffle else torch.arange(self.n)
        for b in range(len(self)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size], gen


class BatchLoader(EpochBatches):
    """Mini-batches from in-memory uint8 images, augmented as whole batches.

    Args:
        images: ``(n, h, w, 3)`` uint8 (numpy or torch).
        labels: ``(n,)`` class ids or ``(n, c)`` multi-hot.
        batch_size: images per batch.
        shuffle: reshuffle every epoch (order depends only on ``seed`` and the epoch,
            so a resumed run sees the same batches as an uninterrupted one).
        augment: random pad-and-crop and horizontal flip.
        drop_last: drop a last incomplete batch (keeps batch statistics stable).
        device: where batches are sent (default: CPU).

    Iterating yields ``(x, y)`` with ``x (b, 3, h, w)`` normalized float32.
    Call ``set_epoch(e)`` before each epoch (``fit`` does).
    """

    def __init__(self, images, labels, batch_size: int = 128, shuffle: bool = True,
                 augment: bool = False, drop_last: bool = False, seed: int = 0,
                 device: str | torch.device | None = None) -> None:
        self.images = torch.as_tensor(np.asarray(images)) if not torch.is_tensor(images) else images
        self.labels = torch.as_tensor(np.asarray(labels)) if not torch.is_tensor(labels) else labels
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels.")
        if len(self.images) == 0:
            raise ValueError("BatchLoader got no images.")
        super().__init__(len(self.images), batch_size, shuffle, drop_last, seed, device)
        self.augment = augment
        if self.device.type == "cuda":  # keep the whole set on the GPU: no per-batch copies
            self.images, self.labels = self.images.to(self.device), self.labels.to(self.device)

    def __iter__(self):
        for idx, gen in self.index_batches():
            idx = idx.to(self.images.device)
            x = prepare(self.images[idx], augment=self.augment, generator=gen, device=self.device)
            yield x, self.labels[idx].to(self.device)


@dataclass
class History:
    """Per-epoch records of a ``fit`` run."""

    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    #: the autocast type of the last epochs trained (``"float32"``: none; a model loaded
    #: from a checkpoint written before this was recorded says ``None``)
    precision: str | None = None

    @property
    def epochs(self) -> int:
        return len(self.loss)

    @property
    def train_seconds(self) -> float:
        return float(sum(self.seconds))


def _plain(value):
    """Numbers and containers as plain Python types (a checkpoint must load with
    ``weights_only=True``: numpy scalars in ``on_epoch_end`` metrics would not)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if torch.is_tensor(value) and value.numel() == 1:
        return value.item()
    return value


def _save_checkpoint(path: Path, model, loss_fn, optimizer, scheduler, history, epoch,
                     epochs: int | None = None) -> None:
    state = {
        "epoch": epoch,
        "epochs": epochs,  # the run's total: finished when epoch == epochs (hashlib_edu.release)
        "model": model.state_dict(),
        "loss_fn": loss_fn.state_dict() if isinstance(loss_fn, nn.Module) else None,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": _plain(asdict(history)),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # an interrupted save never leaves a broken checkpoint



def _check_loader_labels(loader: Iterable, loss_fn) -> bool:
    """Check all of ``loader.labels`` once with ``loss_fn.check_labels``; ``True`` when done
    (a loader without ``labels``, or a loss without the method, is checked batch by batch)."""
    labels, check = getattr(loader, "labels", None), getattr(loss_fn, "check_labels", None)
    if labels is None or check is None:
        return False
    check(labels.cpu() if torch.is_tensor(labels) else labels)
    return True


def _print_estimate(desc: str, first_epoch_seconds: float, remaining_epochs: int,
                    device: torch.device, precision: str | None) -> None:
    """After a run's first epoch: what the rest will take on this machine (the training plan a
    notebook prints before is a guess from the course's reference machines)."""
    rest = first_epoch_seconds * remaining_epochs
    if remaining_epochs > 0 and rest >= ESTIMATE_AFTER_SECONDS:
        print(f"{desc}: first epoch {first_epoch_seconds:.1f} s on {device.type} ({precision}); "
              f"the remaining {remaining_epochs} epochs take about {rest / 60:.1f} min here.",
              flush=True)


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read, or does not fit the model it is loaded into."""


def _bad_checkpoint(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: {what}. Delete that file to train again, or set TRAIN = True in the notebook "
        "(HASHLIB_EDU_TRAIN=1 outside one) to train over it.")


def read_checkpoint(path: str | os.PathLike) -> dict | None:
    """The state saved in checkpoint ``path``, on the CPU, read with ``weights_only=True``
    (tensors and plain types only: a file copied in from elsewhere cannot run code).

    Everything lands on the CPU whatever device trains: ``load_state_dict`` copies weights and
    optimizer state to the model's device, and the random-number states must stay CPU byte
    tensors for ``torch.set_rng_state``.

    Returns ``None`` (after a warning) when the file is unreadable and training is forced
    (``HASHLIB_EDU_TRAIN=1``): the run then trains over it.

    Raises:
        CheckpointError: naming the file and both ways out, when it cannot be read.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
            raise ValueError("not a checkpoint of this course (no 'model' and 'epoch' entries)")
    except Exception as exc:  # truncated, empty, garbage, pickled code, another format
        return _unusable(path, f"cannot be read as a checkpoint ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:200] if str(exc) else exc!r})")
    return state


def _unusable(path: Path, what: str) -> None:
    """Raise :class:`CheckpointError`, or -- when training is forced -- warn and return
    ``None`` so that the run trains over the file."""
    if training_forced():
        import warnings

        warnings.warn(f"{path}: {what}; training over it (HASHLIB_EDU_TRAIN=1).", stacklevel=3)
        return None
    raise _bad_checkpoint(path, what)


def _mismatch(saved: dict, module: nn.Module) -> str | None:
    """How ``saved`` (a state dict) fails to fit ``module``, or ``None`` when it fits."""
    if not isinstance(saved, dict):
        return "its weights are not a state dict"
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(saved)), sorted(set(saved) - set(own))
    if missing or unexpected:
        return (f"its weights have other names (missing {missing[:3]}, unexpected "
                f"{unexpected[:3]}): it was saved from another network")
    for key, value in own.items():
        got = saved[key]
        if not torch.is_tensor(got) or tuple(got.shape) != tuple(value.shape):
            shape = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
            return (f"{key} has shape {shape} where this model has {tuple(value.shape)}: "
                    "it was saved from another network or code length")
    return None


def _restore(path: Path, state: dict, model: nn.Module, loss_fn, optimizer, scheduler,
             epochs: int) -> tuple[History, int]:
    """Load ``state`` (from :func:`read_checkpoint`) into the model, loss, optimizer and
    scheduler and restore the random-number generators; returns ``(history, epoch)``, or a
    fresh ``(History(), 0)`` when the file does not fit and training is forced."""
    problem = _mismatch(state["model"], model)
    if problem is None and isinstance(loss_fn, nn.Module) and state.get("loss_fn") is not None:
        problem = _mismatch(state["loss_fn"], loss_fn)
    if problem is not None:
        _unusable(path, f"does not fit this model: {problem}")
        return History(), 0
    bundled = "optimizer" not in state  # final weights only: nothing to resume
    if bundled and state["epoch"] != epochs:
        raise RuntimeError(
            f"{path} holds a trained model's final weights after {state['epoch']} epochs "
            f"(no optimizer state to resume from), but this run asks for {epochs}: delete "
            "it to train from scratch, or train with download=False / HASHLIB_EDU_TRAIN=1.")
    try:
        model.load_state_dict(state["model"])
        if isinstance(loss_fn, nn.Module) and state.get("loss_fn") is not None:
            loss_fn.load_state_dict(state["loss_fn"])
        if not bundled:
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:  # another model's weights
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
        raise _bad_checkpoint(path, f"does not fit this model ({first})") from None
    if not bundled:
        _restore_rng(state.get("torch_rng"), state.get("cuda_rng"))
    return History(**state["history"]), int(state["epoch"])


def _restore_rng(torch_rng: torch.Tensor | None, cuda_rng: list | None) -> None:
    """Restore the generators saved in a checkpoint. Their states must be CPU byte tensors
    whatever device trains (``torch.set_rng_state`` refuses a tensor on the GPU)."""
    if torch_rng is not None:
        torch.set_rng_state(torch_rng.to("cpu", torch.uint8))
    if cuda_rng is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([r.to("cpu", torch.uint8) for r in cuda_rng])


def fit(model: nn.Module, loss_fn: Callable, loader: Iterable, epochs: int,
        optimizer: torch.optim.Optimizer, scheduler=None, scheduler_step: str = "batch",
        device: str | torch.device | None = None, checkpoint: str | os.PathLike | None = None,
        progress: bool | None = None, on_epoch_end: Callable | None = None,
        desc: str = "train", amp: bool | None = None, channels_last: bool = True) -> History:
    """Train ``model`` for ``epochs`` epochs and return the per-epoch ``History``.

    Args:
        model: maps a batch ``x`` to what ``loss_fn`` takes (logits, relaxed codes...).
        loss_fn: ``loss_fn(model(x), y) -> scalar``; an ``nn.Module`` loss with
            parameters (e.g. DPAH anchors) is moved to the device and checkpointed
            (put its parameters in the optimizer yourself).
        loader: yields ``(x, y)`` batches; a ``BatchLoader`` gets ``set_epoch``.
        optimizer, scheduler: built by the caller; ``scheduler_step`` is ``"batch"``
            (one-cycle) or ``"epoch"``.
        checkpoint: file saved after every epoch; if it exists, training resumes
            from it -- on a CPU the same result as an uninterrupted run; on a GPU only with
            ``HASHLIB_EDU_DETERMINISTIC=1`` (see :func:`use_deterministic`). A file without
            optimizer state (a trained model from :mod:`hashlib_edu.release`) must be
            finished: it is loaded. A file that cannot be read or does not fit the model
            raises :class:`CheckpointError` naming it (see :func:`read_checkpoint`).
        progress: tqdm bars (default: on, except when ``CI`` is set).
        on_epoch_end: ``f(epoch, model) -> dict | None``; a dict is stored in
            ``history.metrics``.
        amp: mixed precision where the hardware has it (:func:`mixed_precision_dtype`):
            float16 autocast with a gradient scaler on a CUDA device, bfloat16 autocast on a
            CPU with native bfloat16 units (AMX or AVX512-BF16); plain float32 elsewhere.
            ``None`` (default): on, unless the environment sets ``HASHLIB_EDU_AMP=0``.
            ``history.precision`` records what was used.
        channels_last: train convolutions in the channels-last memory layout (faster with
            oneDNN on a CPU and with mixed precision on a GPU); the model is handed back in the
            default layout. Same computation, but dropout draws its random mask in memory
            order, so the masks (and the trained weights) differ from a default-layout run.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0; got {epochs}.")
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError("scheduler_step must be 'batch' or 'epoch'.")
    device = select_device(device)
    if deterministic_requested():
        use_deterministic(True)
    model.to(device)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    history, start_epoch = History(), 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.is_file():
        state = read_checkpoint(ckpt)
        if state is not None:
            history, start_epoch = _restore(ckpt, state, model, loss_fn, optimizer, scheduler,
                                            epochs)
    # Channels-last convolutions: about 25-30% faster on a CPU (oneDNN), and faster on a
    # GPU with mixed precision. The same computation in another memory layout (dropout
    # masks aside: they are drawn in memory order).
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    show = progress_enabled() if progress is None else progress
    from tqdm.auto import tqdm

    bar = tqdm(range(start_epoch, epochs), desc=desc, disable=not show, leave=False,
               initial=start_epoch, total=epochs)
    if amp is None:
        amp = amp_requested()
    amp_dtype = mixed_precision_dtype(device) if amp else None
    if epochs > start_epoch:
        history.precision = str(amp_dtype or torch.float32).removeprefix("torch.")
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    # Label values are checked once for the whole loader, not per batch (a per-batch check
    # reads a number back from the GPU and stalls it); the loss is summed on the device.
    labels_ok = _check_loader_labels(loader, loss_fn)
    sum_dtype = torch.float32 if device.type == "mps" else torch.float64
    estimated = False
    try:
        for epoch in bar:
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            model.train()
            t0, count = time.perf_counter(), 0
            total = torch.zeros((), dtype=sum_dtype, device=device)
            with labels_checked() if labels_ok else contextlib.nullcontext():
                for x, y in loader:
                    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                    if x.ndim == 4:
                        x = x.contiguous(memory_format=layout)
                    with torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                                        enabled=amp_dtype is not None):
                        outputs = model(x)
                    loss = loss_fn(outputs.float(), y)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    if scheduler is not None and scheduler_step == "batch":
                        scheduler.step()
                    total += loss.detach().to(sum_dtype) * len(x)
                    count += len(x)
            mean_loss = float(total) / max(count, 1)  # one read from the device an epoch
            if not math.isfinite(mean_loss):
                raise FloatingPointError(
                    f"the loss became {mean_loss} during epoch {epoch}: lower the learning "
                    "rate (the checkpoint keeps the last finite epoch).")
            if scheduler is not None and scheduler_step == "epoch":
                scheduler.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            history.seconds.append(time.perf_counter() - t0)
            history.loss.append(mean_loss)
            history.lr.append(float(optimizer.param_groups[0]["lr"]))
            if not estimated:
                estimated = True
                _print_estimate(desc, history.seconds[-1], epochs - epoch - 1, device,
                                history.precision)
            extra = on_epoch_end(epoch, model) if on_epoch_end is not None else None
            history.metrics.append(extra or {})
            bar.set_postfix(loss=f"{history.loss[-1]:.4f}")
            if ckpt is not None:
                _save_checkpoint(ckpt, model, loss_fn, optimizer, scheduler, history, epoch + 1,
                                 epochs)
    finally:
        bar.close()
        # back to the default layout: a trained model encodes exactly like the same weights
        # loaded from its checkpoint
        model.to(memory_format=torch.contiguous_format)
    return history


def encode_batch_size(model: nn.Module, device: torch.device | str) -> int:
    """Images per forward pass when encoding: 128 on a CPU (small batches stay in the cache),
    1,000 on a GPU for networks that take the 32x32 images as they are, and 256 for a
    pretrained backbone that resizes them (224x224 activations are 49 times larger)."""
    if torch.device(device).type != "cuda":
        return 128
    resizes = any(isinstance(m, ImageNetInput) for m in model.modules())
    return 256 if resizes else 1000


@torch.no_grad()
def embed(model: nn.Module, images, batch_size: int | None = None,
          fn: Callable | None = None) -> torch.Tensor:
    """Real-valued code-layer outputs for uint8 images, in eval mode, on the model's device.

    Args:
        model: a hashing model; ``model.embed(x)`` is used when it exists, else ``model(x)``.
        images: ``(n, h, w, 3)`` uint8 (normalized with :func:`prepare`), or float inputs the
            model takes as they are (e.g. cached backbone activations ``(n, c, h, w)``,
            float16 or float32).
        fn: optional ``fn(model, x)`` to call instead (e.g. pooled features).
        batch_size: images per forward pass; ``None``: :func:`encode_batch_size`.

    On a CUDA device the forward passes run under float16 autocast (half the memory and
    faster) unless ``HASHLIB_EDU_AMP=0``; on a CPU they run in float32.

    Returns:
        ``(n, k)`` float32 tensor on the CPU.
    """
    images = torch.as_tensor(np.asarray(images)) if not torch.is_tensor(images) else images
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    if batch_size is None:
        batch_size = encode_batch_size(model, device)
    autocast = device.type == "cuda" and amp_requested()
    was_training = model.training
    model.eval()
    call = fn or (lambda m, x: m.embed(x) if hasattr(m, "embed") else m(x))
    def inputs(batch: torch.Tensor) -> torch.Tensor:
        if batch.dtype == torch.uint8:
            return prepare(batch, device=device)
        return batch.to(device).float()

    with torch.autocast(device.type, dtype=torch.float16, enabled=autocast):
        out = [call(model, inputs(images[i:i + batch_size])).float().cpu()
               for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def backbone_features(model: nn.Module, images, batch_size: int | None = None,
                      normalize: bool = False) -> torch.Tensor:
    """Features ``(n, d)`` of ``model.backbone`` (for the CNNBH network: the 1,024-D "Pool3"),
    in eval mode, on the CPU; ``normalize=True`` scales each row to unit L2 norm (as the
    baselines of notebook 02 hash them).

    Args:
        model: a network with a ``.backbone`` (``CNNBHNet``, ``BackboneWithCodeLayer``).
        images: ``(n, h, w, 3)`` uint8.
    """
    if not hasattr(model, "backbone"):
        raise ValueError(f"{type(model).__name__} has no .backbone to take features from.")
    feats = embed(model, images, batch_size, fn=lambda m, x: m.backbone(x).flatten(1))
    return F.normalize(feats, dim=1) if normalize else feats


def encode(model: nn.Module, images, batch_size: int | None = None,
           threshold: float = 0.0) -> np.ndarray:
    """Binary codes ``(n, k)`` int8 in ``{-1, +1}``: ``sign(embed(x) - threshold)``, ``sign(0)=+1``.

    ``threshold=0.5`` for sigmoid-relaxed outputs in ``(0, 1)``.
    """
    return sign(embed(model, images, batch_size) - threshold)


# --------------------------------------------------------------------------- checkpointed training


def train_model(model: nn.Module, loss_fn, data: ProtocolData, recipe: Recipe, *,
                name: str, seed: int = 0, device=None, extra_params=(),
                progress: bool | None = None, loader: Iterable | None = None,
                download: bool = True) -> History:
    """Train ``model`` on ``data``'s training images with ``recipe`` (mixed precision where
    the hardware has it, see :func:`fit`; ``recipe.extra["amp"] = False`` turns it off).

    Checkpoints go to ``checkpoints/<name>.pt`` (a temporary folder under ``smoke``);
    a finished checkpoint is loaded instead of training again, and an interrupted
    one resumes. ``history.train_seconds`` is the training time actually spent
    (summed over resumed parts), not the time to load.

    Args:
        extra_params: parameters outside the model to optimize (e.g. DPAH anchors), with the
            recipe's learning rate but **no weight decay**: they are positions, not weights,
            and decay would pull them toward 0 (for DPAH: every anchor toward the zero code).
        loader: the training batches (default: a :class:`BatchLoader` of ``data``'s training
            images, augmented as the recipe says), e.g. cached backbone activations.
        download: when there is no local checkpoint, look for the trained model where
            :func:`hashlib_edu.release.models_url` says (published by ``python -m
            hashlib_edu.release pack``) and load it instead of training; ``False`` (a
            notebook's ``TRAIN = True``) or ``HASHLIB_EDU_TRAIN=1`` always trains.
    """
    device = select_device(device)
    torch.manual_seed(seed)
    loader = loader if loader is not None else BatchLoader(data.images("train"), data.part_labels("train"),
                         batch_size=recipe.batch_size, shuffle=True, augment=recipe.augment,
                         drop_last=len(data.train_idx) > recipe.batch_size, seed=seed,
                         device=device)
    params = parameter_groups(model, recipe)
    extra_params = list(extra_params)
    if extra_params:
        params.append({"params": extra_params, "weight_decay": 0.0})
    opt = make_optimizer(params, recipe)
    sched = make_scheduler(opt, recipe, len(loader))
    amp = recipe.extra.get("amp")
    if "backbone_lr_mult" in recipe.extra:  # fine-tuning a pretrained backbone
        check_finetune_memory(device, recipe.batch_size, amp_requested() if amp is None else amp)
    ckpt = checkpoints_dir(data.profile) / f"{name}.pt"
    if download and not ckpt.is_file():
        from .release import fetch  # here, so `python -m hashlib_edu.release` imports it once

        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        fetch(name, ckpt, profile=data.profile, expected_shapes=shapes)  # verified, or absent
    return fit(model, loss_fn, loader, recipe.epochs, opt, sched, device=device,
               checkpoint=ckpt, progress=progress, desc=name, amp=amp)


#: GPU memory that fine-tuning a pretrained backbone at 224 px needs per image of a batch in
#: float32 (activations kept for the backward pass); mixed precision needs about half.
FINETUNE_FLOAT32_BYTES_PER_IMAGE = 21 * 2**30 / 256


def check_finetune_memory(device: torch.device | str, batch_size: int, amp: bool) -> None:
    """Refuse float32 fine-tuning of a pretrained backbone on a GPU too small for it.

    Raises:
        RuntimeError: on a CUDA device whose memory is below what a float32 batch of
            ``batch_size`` needs (:data:`FINETUNE_FLOAT32_BYTES_PER_IMAGE`), saying why and
            what to do, instead of failing with an out-of-memory error minutes in.
    """
    device = torch.device(device)
    if amp or device.type != "cuda":
        return
    total = torch.cuda.get_device_properties(device).total_memory
    need = FINETUNE_FLOAT32_BYTES_PER_IMAGE * batch_size
    if total < need:
        raise RuntimeError(
            f"Fine-tuning a pretrained backbone in float32 at batch {batch_size} needs about "
            f"{need / 2**30:.0f} GiB of GPU memory; this GPU has {total / 2**30:.0f} GiB. "
            "Turn mixed precision back on (unset HASHLIB_EDU_AMP), which halves it.")


def state_digest(module: nn.Module) -> str:
    """Short digest of a module's parameters and buffers (e.g. OrthoHash targets)."""
    h = hashlib.sha1()
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:8]
