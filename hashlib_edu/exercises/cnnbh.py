"""Checkers for notebook 03 (CNNBH: the knob model, one training step)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import count_parameters
from ..methods.cnnbh import CNNBHNet
from .checking import (
    call_student,
    close,
    not_implemented,
    report,
)

__all__ = ["check_knob_model", "check_training_step"]

_KNOB_MODEL_TODO = "the knob model (its __init__, forward and embed)"
_TRAINING_STEP_TODO = "one training step (zero_grad, forward, loss, backward, step)"


# --------------------------------------------------------------------------- CNNBH


def check_knob_model(model_class: Callable[..., Any], n_bits: int = 48) -> bool:
    """Check a student's CNNBH knob model (notebook 03) against ``methods.cnnbh.CNNBHNet``.

    ``model_class(n_bits)`` must build the paper's CIFAR-10 architecture without
    BatchNorm: 125,562 trainable parameters at ``k = 48``, ``forward`` giving ``(n, 10)``
    logits for ``(n, 3, 32, 32)`` images and ``embed`` giving the ``(n, k)`` knob.
    """
    reference = CNNBHNet(n_bits, batchnorm=False)
    try:
        model = model_class(n_bits)
        model.eval()
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            logits, knob = model(x), model.embed(x)
    except NotImplementedError:  # also nn.Module's own, for a class without forward
        return report(False, 3, "", not_implemented(_KNOB_MODEL_TODO))
    except Exception as exc:  # report, do not crash the student's notebook
        print(f"Building or running your model raised {type(exc).__name__}: {exc}")
        return False
    problems = []
    n_params, n_ref = count_parameters(model), count_parameters(reference)
    if n_params != n_ref:
        hint = ("the paper has no BatchNorm" if n_params - n_ref == 512 else
                "cuda-convnet pooling rounds up: nn.MaxPool2d(3, 2, ceil_mode=True) gives "
                "32 -> 16 -> 8 -> 4")
        problems.append(f"{n_params:,} parameters, expected {n_ref:,} (hint: {hint})")
    if tuple(logits.shape) != (2, 10):
        problems.append(f"forward gave shape {tuple(logits.shape)}, expected (2, 10)")
    if tuple(knob.shape) != (2, n_bits):
        problems.append(f"embed gave shape {tuple(knob.shape)}, expected (2, {n_bits})")
    ok = not problems
    return report(ok, 3, "hashlib_edu.methods.cnnbh.CNNBHNet", "; ".join(problems))

# --------------------------------------------------------------------------- training step (03)

_TRAINING_BATCH = 8


def _training_model() -> nn.Module:
    """A tiny seeded float64 MLP on flattened ``3x8x8`` images (no dropout, no BatchNorm)."""
    g = torch.Generator().manual_seed(2015)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 10))
    model = model.to(torch.float64)
    with torch.no_grad():  # a private generator: the global RNG is left alone
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.2)
    return model


def _training_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _training_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(2016)
    return [(torch.randn(_TRAINING_BATCH, 3, 8, 8, generator=g, dtype=torch.float64),
             torch.randint(0, 10, (_TRAINING_BATCH,), generator=g)) for _ in range(2)]


def _reference_training_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                             optimizer: torch.optim.Optimizer, loss_fn: Callable) -> None:
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()


def _step_without_zero_grad(model, images, labels, optimizer, loss_fn) -> None:
    loss_fn(model(images), labels).backward()
    optimizer.step()


def _step_with_summed_loss(model, images, labels, optimizer, loss_fn) -> None:
    optimizer.zero_grad()
    F.cross_entropy(model(images), labels, reduction="sum").backward()
    optimizer.step()


def _parameters_after(step_fn: Callable, n_steps: int) -> list[torch.Tensor]:
    """The parameters after ``n_steps`` calls of ``step_fn`` from the checker's start."""
    model = _training_model()
    optimizer, loss_fn = _training_optimizer(model), nn.CrossEntropyLoss()
    for images, labels in _training_batches()[:n_steps]:
        step_fn(model, images, labels, optimizer, loss_fn)
    return [p.detach().clone() for p in model.parameters()]


def _all_close(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))


def _training_hint(after: list[torch.Tensor], before: list[torch.Tensor], n_step: int,
                   steps_seen: list[bool]) -> str:
    """Guess the mistake from the parameters and the optimizer's ``step()`` calls."""
    if all(torch.equal(x, y) for x, y in zip(after, before, strict=True)):
        if not steps_seen:
            return ("the parameters did not change: optimizer.step() seems to be missing "
                    "(backward() only computes the gradients; step() applies them).")
        if not any(steps_seen):
            return ("the parameters did not change, and optimizer.step() ran while there were "
                    "no gradients: step() seems to come before loss.backward(); the order is "
                    "zero_grad(), forward, loss, backward(), step().")
        return "the parameters did not change; did your step update the model it was given?"
    if not steps_seen:
        return ("the parameters changed, but the optimizer you were given was never stepped: "
                "use it (a new optimizer each step would lose its momentum).")
    mistakes = [
        (_step_without_zero_grad,
         "optimizer.zero_grad() seems to be missing: the gradients of the previous step were "
         "added to this one's (step 1 matched, step 2 did not). Call it before backward()."),
        (_step_with_summed_loss,
         f"the update is {_TRAINING_BATCH} times too large (the batch size): that is a summed "
         "loss; use loss_fn(model(images), labels), the mean over the batch."),
    ]
    return next((h for fn, h in mistakes if _all_close(after, _parameters_after(fn, n_step))),
                "compare with: optimizer.zero_grad(); loss = loss_fn(model(images), labels); "
                "loss.backward(); optimizer.step().")


def check_training_step(student_fn: Callable[..., Any]) -> bool:
    """Check a student's training step (notebook 03) against a plain PyTorch step.

    The student's function is called as ``student_fn(model, images, labels, optimizer,
    loss_fn)`` and must do one optimization step in place (its return value is ignored):
    ``optimizer.zero_grad()``, ``loss = loss_fn(model(images), labels)``,
    ``loss.backward()``, ``optimizer.step()``. Here ``model`` is a small seeded float64
    MLP (``Flatten``, ``Linear(192, 16)``, ``ReLU``, ``Linear(16, 10)``), ``images`` an
    ``(8, 3, 8, 8)`` float64 batch, ``labels`` ``(8,)`` int64 class ids, ``optimizer``
    SGD (``lr=0.1``, ``momentum=0.9``) and ``loss_fn`` ``nn.CrossEntropyLoss()``.

    Two consecutive steps (two cases: a missing ``zero_grad`` only shows on the second)
    run with the student's function and with the reference on a deep copy of the model and
    its own optimizer; all parameters are compared after each step (``rtol=1e-4``,
    ``atol=1e-6``).

    Returns:
        ``True`` if both steps match, else ``False`` (a message says which and why).
    """
    model = _training_model()
    optimizer, loss_fn = _training_optimizer(model), nn.CrossEntropyLoss()
    ref_model = copy.deepcopy(model)
    ref_optimizer = _training_optimizer(ref_model)
    steps_seen: list[bool] = []  # one entry per optimizer.step(): were there gradients?

    def record(opt: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        steps_seen.append(any(p.grad is not None and bool(p.grad.any())
                              for group in opt.param_groups for p in group["params"]))

    optimizer.register_step_pre_hook(record)
    batches = _training_batches()
    names = [name for name, _p in model.named_parameters()]
    for n_step, (images, labels) in enumerate(batches, start=1):
        case = f"step {n_step} of {len(batches)}"
        before = [p.detach().clone() for p in model.parameters()]
        steps_seen.clear()
        _out, error = call_student(student_fn, (model, images.clone(), labels.clone(), optimizer,
                                         loss_fn), case, _TRAINING_STEP_TODO)
        if error:
            return report(False, len(batches), "", error)
        _reference_training_step(ref_model, images, labels, ref_optimizer, loss_fn)
        after = [p.detach().to(torch.float64).clone() for p in model.parameters()]
        expected = [p.detach().clone() for p in ref_model.parameters()]
        if _all_close(after, expected):
            continue
        hint = _training_hint(after, before, n_step, list(steps_seen))
        worst = max(range(len(after)), key=lambda i: float((after[i] - expected[i]).abs().max())
                    if after[i].shape == expected[i].shape else float("inf"))
        return report(False, len(batches), "", f"{case}: the parameters differ from the "
                       f"reference step (most in {names[worst]!r}). Hint: {hint}")
    return report(True, len(batches), "a reference step (zero_grad, loss_fn(model(images), "
                   "labels), backward, step)", "")
