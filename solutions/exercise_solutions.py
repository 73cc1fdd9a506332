"""The instructor's reference solutions to the notebooks' exercises.

They are kept here, out of the notebooks, so that students write their own; each one is
written independently of the package's implementation (plain ``torch``), with the signature
the matching checker in :mod:`hashlib_edu.exercises` calls, and ``tests/test_exercises.py``
checks that every checker accepts it:

* ``dsh_loss``: ``check_dsh_loss`` (notebook 04, DSH);
* ``knob_model`` (the class ``KnobModel``): ``check_knob_model`` (notebook 03, CNNBH);
* ``dpah_bound``: ``check_dpah_bound`` (notebook 05, DPAH);
* ``relaxed_hamming_distance``: ``check_relaxed_hamming_distance`` (notebook 05, DPAH);
* ``orthohash_loss``: ``check_orthohash_loss`` (notebook 06, OrthoHash);
* ``itq_rotation_step``: ``check_itq_rotation_step`` (notebook 02, ITQ);
* ``training_step``: ``check_training_step`` (notebook 03, one plain training step);
* ``dsh_regularizer``: ``check_dsh_regularizer`` (notebook 04, DSH);
* ``maxhd_targets``: ``check_maxhd_targets`` (notebook 06, OrthoHash's Algorithm 3);
* ``lsh_codes``: ``check_lsh_codes`` (notebook 02, LSH).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["dsh_loss", "KnobModel", "knob_model", "dpah_bound", "relaxed_hamming_distance",
           "orthohash_loss", "itq_rotation_step", "training_step", "dsh_regularizer",
           "maxhd_targets", "lsh_codes"]


def dsh_loss(outputs: torch.Tensor, labels: torch.Tensor, alpha: float,
             margin: float) -> torch.Tensor:
    """DSH: mean over the unordered pairs ``i < j`` of

    ``1/2 (1 - y) ||b_i - b_j||^2 + 1/2 y max(m - ||b_i - b_j||^2, 0)
    + alpha (|| |b_i| - 1 ||_1 + || |b_j| - 1 ||_1)``, with ``y = 0`` for a similar pair.
    """
    n = outputs.shape[0]
    diff = outputs[:, None, :] - outputs[None, :, :]
    d2 = (diff * diff).sum(dim=2)  # (n, n) squared Euclidean distances
    similar = labels[:, None] == labels[None, :]
    contrastive = torch.where(similar, 0.5 * d2, 0.5 * torch.clamp(margin - d2, min=0.0))
    reg = (outputs.abs() - 1.0).abs().sum(dim=1)  # (n,)
    per_pair = contrastive + alpha * (reg[:, None] + reg[None, :])
    i, j = torch.triu_indices(n, n, offset=1)
    return per_pair[i, j].mean()


class KnobModel(nn.Module):
    """CNNBH's CIFAR-10 network without BatchNorm (Guo & Li, Table 1), with the knob layer.

    ``32C3P1-32C1P0-MP3S2-D0.5-32C3P1-32C3P1-MP3S2-D0.5-64C3P1-64C3P1-MP3S2-D0.5``, ReLU
    after each convolution, ceil-mode pooling (32 -> 16 -> 8 -> 4), then the linear knob
    ``H_k``, dropout and the 10-way classifier: 125,562 parameters at ``k = 48``.
    """

    def __init__(self, n_bits: int = 48, n_classes: int = 10, dropout: float = 0.5) -> None:
        super().__init__()

        def conv(c_in: int, c_out: int, size: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, size, padding=size // 2), nn.ReLU()]

        def pool() -> list[nn.Module]:
            return [nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True), nn.Dropout(0.5)]

        self.features = nn.Sequential(
            *conv(3, 32, 3), *conv(32, 32, 1), *pool(),
            *conv(32, 32, 3), *conv(32, 32, 3), *pool(),
            *conv(32, 64, 3), *conv(64, 64, 3), *pool(),
        )
        self.knob = nn.Linear(64 * 4 * 4, n_bits)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(n_bits, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 3, 32, 32) -> (n, k)`` knob activations (codes are their signs)."""
        return self.knob(self.features(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 3, 32, 32) -> (n, n_classes)`` logits."""
        return self.classifier(self.dropout(self.embed(x)))


#: The solution ``check_knob_model`` takes: the class itself (it calls ``knob_model(n_bits)``).
knob_model = KnobModel


def dpah_bound(d_own: torch.Tensor, d_neg: torch.Tensor, alpha: float) -> torch.Tensor:
    """DPAH's inter-class bound per sample, numerically stable:

    ``-log(e^{-a} / (e^{-a} + sum_j e^{-d_j})) = logsumexp([-a, -d_1, ..., -d_M]) + a``
    with ``a = (1 + alpha) d_own``.
    """
    a = (1.0 + alpha) * d_own
    logits = torch.cat([-a.unsqueeze(1), -d_neg], dim=1)  # (n, 1 + M)
    return torch.logsumexp(logits, dim=1) + a


def relaxed_hamming_distance(b: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``(n, K)`` codes and ``(C, K)`` positions -> ``(n, C)`` distances ``(K - b . theta) / 2``."""
    k = b.shape[1]
    return (k - b @ theta.T) / 2.0


def orthohash_loss(v: torch.Tensor, y: torch.Tensor, targets: torch.Tensor, scale: float,
                   margin: float) -> torch.Tensor:
    """OrthoCos: mean cross-entropy of ``scale * (cos(v_i, t_c) - margin * [c == y_i])``."""
    v_unit = v / v.norm(dim=1, keepdim=True)
    t_unit = targets / targets.norm(dim=1, keepdim=True)
    cos = v_unit @ t_unit.T  # (n, C)
    true_class = F.one_hot(y, num_classes=targets.shape[0]).to(cos.dtype)
    logits = scale * (cos - margin * true_class)
    return -logits.log_softmax(dim=1).gather(1, y.unsqueeze(1)).mean()


def itq_rotation_step(V: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """ITQ's Procrustes step: the orthogonal ``(c, c)`` ``R`` minimizing ``||B - V R||_F``.

    ``||B - V R||^2 = ||B||^2 + ||V||^2 - 2 tr(R^T V^T B)``; with ``V^T B = U S Z^T`` the
    trace is largest for ``R = U Z^T`` (numpy's SVD, like torch's, returns ``Z^T``).
    """
    u, _s, zt = np.linalg.svd(np.asarray(V.T @ B, dtype=np.float64))
    return torch.from_numpy(u @ zt)


def training_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                  optimizer: torch.optim.Optimizer, loss_fn) -> torch.Tensor:
    """One optimization step in place; returns the (detached) loss before the step."""
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.detach()


def dsh_regularizer(outputs: torch.Tensor) -> torch.Tensor:
    """``(n, k) -> (n,)``: ``|| |b_i| - 1 ||_1``, the L1 distance of ``|b_i|`` to all-ones."""
    return torch.sum(torch.abs(torch.abs(outputs) - 1.0), dim=1)


def maxhd_targets(n_classes: int, n_bits: int, seed: int, max_tries: int = 10000,
                  init_dist: float = 0.61, reduce_dist: float = 0.01,
                  min_dist: float = 0.2) -> torch.Tensor:
    """OrthoHash's Algorithm 3: ``(C, K)`` targets of ``+-1`` with a large minimum distance.

    Bernoulli(0.5) candidates are accepted one class at a time if their normalized Hamming
    distance to every accepted target is ``>= currdist``; after ``max_tries`` rejections
    (one counter for all classes) ``currdist`` drops by ``reduce_dist``; the rows are
    shuffled at the end. Candidates are drawn in blocks, but judged one by one in order, so
    a block only saves Python overhead: the candidates after an accepted one are discarded.
    """
    rng = np.random.default_rng(seed)
    targets = np.zeros((n_classes, n_bits), dtype=np.int64)
    n_done, failures, n_lowered = 0, 0, 0
    currdist = init_dist
    while n_done < n_classes:
        size = min(256, max_tries - failures)
        candidates = rng.integers(0, 2, size=(size, n_bits)) * 2 - 1
        if n_done == 0:
            accepted = np.ones(size, dtype=bool)
        else:
            hamming = (n_bits - candidates @ targets[:n_done].T) / 2  # (size, n_done)
            accepted = np.all(hamming / n_bits >= currdist - 1e-9, axis=1)
        if accepted.any():
            first = int(np.argmax(accepted))
            failures += first  # the rejected candidates before it
            targets[n_done] = candidates[first]
            n_done += 1
        else:
            failures += size
        if failures >= max_tries:
            failures, n_lowered = 0, n_lowered + 1
            currdist = init_dist - n_lowered * reduce_dist
            if currdist < min_dist - 1e-9:
                raise ValueError(f"cannot place {n_classes} targets of {n_bits} bits")
    return torch.from_numpy(targets[rng.permutation(n_classes)].astype(np.float32))


def lsh_codes(x: torch.Tensor, mean: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
    """LSH: ``(n, k)`` codes ``sign((x - mean) @ projections)`` in ``{-1, +1}``, ``sign(0) = +1``."""
    projected = (x - mean) @ projections
    return torch.where(projected >= 0, 1.0, -1.0)

