"""Fixed binary class targets and OrthoHash's analysis helpers.

OrthoHash (Hoe et al., NeurIPS 2021) gives every class ``c`` a fixed target code
``o_c in {-1, +1}^K`` and trains the network to point its continuous code ``v``
towards the target of its class (:class:`hashlib_edu.losses.OrthoHashLoss`).
This module builds the targets and the quantities the paper's supplementary uses
to analyse them.

Target generators (all deterministic given ``seed``, via private generators;
none touches the global random state):

* :func:`bernoulli_targets` - every bit ``+1`` with probability 0.5;
* :func:`hadamard_targets` - rows of a Hadamard matrix (pairwise Hamming distance
  exactly ``K/2``) when ``2K >= C``; Bernoulli otherwise;
* :func:`maxhd_targets` - the supplementary's Algorithm 3: greedy rejection sampling
  with a slowly shrinking minimum-distance threshold;
* :func:`make_targets` - any of the three by name.

Return-type conventions
-----------------------
* Targets and class hash centers: ``(C, K)`` **torch float32** tensors with values
  ``+-1`` (ready to be used by a loss, ``.numpy()`` for numpy work).
* Scalar summaries (:func:`min_hamming_distance`, :func:`orthogonality_error`,
  :func:`expected_hamming_distance`): Python ``int`` / ``float``.
* Per-row quantities (:func:`quantization_error`, :func:`quantization_error_identity`):
  ``(n,)`` torch float tensors.
* Every helper accepts numpy arrays or torch tensors; binary inputs may be
  ``{-1, +1}`` or ``{0, 1}``. Real values are binarized with ``sign(0) = +1``
  (the course convention of :mod:`hashlib_edu.codes`).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from hashlib_edu.codes import as_numpy, sign, to_pm1
from hashlib_edu.labels import to_multi_hot

__all__ = [
    "TARGET_NAMES",
    "bernoulli_targets",
    "hadamard_matrix",
    "hadamard_targets",
    "maxhd_targets",
    "make_targets",
    "min_hamming_distance",
    "class_hash_centers",
    "orthogonality_error",
    "quantization_error",
    "quantization_error_identity",
    "expected_hamming_distance",
]

TARGET_NAMES = ("bernoulli", "hadamard", "maxhd")


def _check_sizes(n_classes: int, n_bits: int) -> tuple[int, int]:
    if int(n_classes) < 1 or int(n_bits) < 1:
        raise ValueError(
            f"n_classes and n_bits must be positive integers; got n_classes={n_classes}, "
            f"n_bits={n_bits}."
        )
    return int(n_classes), int(n_bits)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


# --------------------------------------------------------------------------- Bernoulli


def bernoulli_targets(n_classes: int, n_bits: int, seed: int = 0) -> torch.Tensor:
    """Random targets: each bit is ``+1`` or ``-1`` with probability 1/2 (Algorithm 1's ``o``).

    Two independent such codes differ in ``K/2`` bits on average (see
    :func:`expected_hamming_distance` with ``p = 0.5``), but nothing stops two
    classes from drawing close (or, for small ``K``, identical) targets.

    Returns:
        ``(n_classes, n_bits)`` float32 tensor of ``+-1``.
    """
    n_classes, n_bits = _check_sizes(n_classes, n_bits)
    prob = torch.full((n_classes, n_bits), 0.5)
    return torch.bernoulli(prob, generator=_generator(seed)) * 2.0 - 1.0


# --------------------------------------------------------------------------- Hadamard


def _is_prime(q: int) -> bool:
    if q < 2:
        return False
    return all(q % d for d in range(2, math.isqrt(q) + 1))


def _jacobsthal(q: int) -> np.ndarray:
    """``Q[i, j] = chi(j - i)`` with ``chi`` the quadratic character mod the prime ``q``."""
    chi = -np.ones(q, dtype=np.int64)
    chi[0] = 0
    chi[(np.arange(1, q) ** 2) % q] = 1
    idx = np.arange(q)
    return chi[(idx[None, :] - idx[:, None]) % q]


def _paley_1(q: int) -> np.ndarray:
    """Paley construction I: Hadamard matrix of order ``q + 1`` for a prime ``q = 3 (mod 4)``."""
    s = np.zeros((q + 1, q + 1), dtype=np.int64)
    s[0, 1:] = 1
    s[1:, 0] = -1
    s[1:, 1:] = _jacobsthal(q)
    return s + np.eye(q + 1, dtype=np.int64)


def _paley_2(q: int) -> np.ndarray:
    """Paley construction II: Hadamard matrix of order ``2(q + 1)`` for a prime ``q = 1 (mod 4)``."""
    s = np.zeros((q + 1, q + 1), dtype=np.int64)
    s[0, 1:] = 1
    s[1:, 0] = 1
    s[1:, 1:] = _jacobsthal(q)
    return np.kron(s, np.array([[1, -1], [-1, -1]])) + np.kron(
        np.eye(q + 1, dtype=np.int64), np.array([[1, 1], [1, -1]])
    )


def _base_hadamard(order: int) -> np.ndarray | None:
    if order == 1:
        return np.ones((1, 1), dtype=np.int64)
    if order == 2:
        return np.array([[1, 1], [1, -1]], dtype=np.int64)
    if order % 4:
        return None
    if _is_prime(order - 1) and (order - 1) % 4 == 3:
        return _paley_1(order - 1)
    half = order // 2
    if _is_prime(half - 1) and (half - 1) % 4 == 1:
        return _paley_2(half - 1)
    return None


def hadamard_matrix(order: int) -> torch.Tensor | None:
    """A ``(order, order)`` Hadamard matrix ``H`` (entries ``+-1``, ``H H^T = order * I``), or ``None``.

    Built as ``Sylvester(2^a) (x) P`` (Kronecker product) where ``P`` is ``[1]``,
    ``[[1, 1], [1, -1]]``, or a Paley matrix (construction I: order ``q + 1`` for a
    prime ``q = 3 mod 4``, e.g. 12, 20, 24, 44, 48; construction II: order ``2(q + 1)``
    for a prime ``q = 1 mod 4``, e.g. 12, 28, 36, 60). This covers every power of two
    and all the code lengths used in the course (12, 16, 24, 32, 36, 48, 64, 128, ...).
    Orders for which none of these constructions applies (all orders that are not 1, 2
    or a multiple of 4, where no Hadamard matrix exists, and a few multiples of 4 such
    as 52 or 92) give ``None``.

    Returns:
        float32 tensor, or ``None`` when no construction is available.
    """
    order = int(order)
    if order < 1:
        raise ValueError(f"order must be positive; got {order}.")
    power = 1
    while order % power == 0:
        base = _base_hadamard(order // power)
        if base is not None:
            h = base
            sylvester = np.array([[1, 1], [1, -1]], dtype=np.int64)
            while h.shape[0] < order:
                h = np.kron(sylvester, h)
            # every construction above is proven, but a cheap check keeps it honest
            # (float64 BLAS: exact for these small integers, and far faster than int64)
            hf = h.astype(np.float64)
            if not np.array_equal(hf @ hf.T, order * np.eye(order)):
                raise RuntimeError(f"Hadamard construction of order {order} failed its check.")
            return torch.from_numpy(h).float()
        power *= 2
    return None


def hadamard_targets(n_classes: int, n_bits: int, seed: int = 0) -> torch.Tensor:
    """Targets from the rows of a ``K x K`` Hadamard matrix ``H`` (CSQ's recipe, OrthoHash D.3).

    * ``C <= K``: ``C`` distinct rows of ``H``, chosen at random with ``seed``; any two
      are orthogonal, i.e. exactly ``K/2`` bits apart.
    * ``K < C <= 2K``: all ``K`` rows of ``H`` plus ``C - K`` random rows of ``-H``. A
      row and its negation are ``K`` bits apart, every other pair ``K/2``, so the
      minimum distance is still ``K/2`` (the best possible on average), though those
      antipodal pairs are not orthogonal.
    * ``C > 2K``: the paper falls back to Bernoulli targets; so do we (silently, as
      in the paper).
    * ``K`` for which :func:`hadamard_matrix` has no construction (``K`` not 1, 2 or
      a multiple of 4, or one of the rare uncovered multiples of 4 such as 52): we
      fall back to Bernoulli targets too and emit a ``UserWarning`` saying so. Use a
      power of two if you need exact orthogonality.

    The seed only decides which rows are used and which class gets which row.

    Returns:
        ``(n_classes, n_bits)`` float32 tensor of ``+-1``.
    """
    n_classes, n_bits = _check_sizes(n_classes, n_bits)
    if 2 * n_bits < n_classes:
        return bernoulli_targets(n_classes, n_bits, seed)
    h = hadamard_matrix(n_bits)
    if h is None:
        warnings.warn(
            f"No Hadamard matrix construction for K={n_bits} bits; using Bernoulli targets "
            "instead. Choose K as a power of two (or 12, 24, 36, 48, ...) for Hadamard targets.",
            UserWarning,
            stacklevel=2,
        )
        return bernoulli_targets(n_classes, n_bits, seed)
    g = _generator(seed)
    if n_classes <= n_bits:
        rows = h[torch.randperm(n_bits, generator=g)[:n_classes]]
    else:
        extra = -h[torch.randperm(n_bits, generator=g)[: n_classes - n_bits]]
        rows = torch.cat([h, extra])
    return rows[torch.randperm(n_classes, generator=g)].contiguous()


# --------------------------------------------------------------------------- MaxHD


def maxhd_targets(
    n_classes: int,
    n_bits: int,
    seed: int = 0,
    max_tries: int = 10000,
    init_dist: float = 0.61,
    min_dist: float = 0.2,
    reduce_dist: float = 0.01,
) -> torch.Tensor:
    """Targets with a large minimum Hamming distance (OrthoHash supplementary, Algorithm 3).

    Targets are accepted one class at a time. A candidate ``c ~ Bernoulli(0.5)^K`` is
    accepted if its *normalized* Hamming distance ``D(c, o_j) / K`` to every target
    accepted so far is ``>= currdist``; otherwise it is rejected and a failure counter
    goes up. The counter is shared by all classes and only reset when it reaches
    ``max_tries``: then ``currdist`` is lowered by ``reduce_dist`` (starting from
    ``init_dist``). Finally the rows are shuffled. For speed, candidates are drawn
    in small batches as packed 64-bit words from a private ``numpy`` generator
    (distances by XOR + popcount); this keeps the algorithm's sequential semantics
    exactly (each candidate is judged against the threshold in force at its turn),
    only the random stream differs from the paper's ``torch.bernoulli`` calls.

    Args:
        n_classes: ``C``.
        n_bits: ``K``.
        seed: seed of the private generator (same seed -> same targets).
        max_tries: rejections allowed before the threshold is lowered (paper: 10000).
        init_dist: starting normalized distance threshold (paper: 0.61).
        min_dist: give up below this threshold (paper: 0.2).
        reduce_dist: threshold step (paper: 0.01).

    Returns:
        ``(n_classes, n_bits)`` float32 tensor of ``+-1``.

    Raises:
        ValueError: when the threshold would drop below ``min_dist`` (too many classes
            for ``K`` bits, e.g. ``C = 100`` at ``K = 4``, where only 16 codes exist).
    """
    n_classes, n_bits = _check_sizes(n_classes, n_bits)
    if max_tries < 1 or reduce_dist <= 0:
        raise ValueError("max_tries must be >= 1 and reduce_dist > 0.")
    rng = np.random.default_rng(int(seed))
    # codes are packed 64 bits to a word: distance = popcount(a XOR b), cheap even for K = 2048
    words = (n_bits + 63) // 64
    tail = n_bits - 64 * (words - 1)
    last_mask = np.uint64((1 << tail) - 1)
    packed = np.zeros((n_classes, words), dtype=np.uint64)
    n_done, failures, n_reductions = 0, 0, 0
    threshold = float(init_dist) * n_bits  # in bits
    block = 8
    while n_done < n_classes:
        cap = max(1, 2_000_000 // max(1, n_done * words))  # bounds the (size, n_done, words) XOR
        size = min(block, max_tries - failures, cap)
        cand = rng.integers(0, np.iinfo(np.uint64).max, size=(size, words), dtype=np.uint64,
                            endpoint=True)
        cand[:, -1] &= last_mask
        if n_done == 0:
            ok = np.ones(size, dtype=bool)
        else:
            dist = np.bitwise_count(cand[:, None, :] ^ packed[None, :n_done]).sum(axis=-1)
            ok = (dist >= threshold - 1e-9).all(axis=1)  # (size,) all distances large enough
        if ok.any():
            first = int(np.argmax(ok))
            failures += first
            packed[n_done] = cand[first]
            n_done += 1
            block = 8
            continue
        failures += size
        block = min(2 * block, 4096)
        if failures >= max_tries:
            failures = 0
            n_reductions += 1
            currdist = float(init_dist) - n_reductions * float(reduce_dist)
            threshold = currdist * n_bits
            if currdist < min_dist - 1e-9:
                raise ValueError(
                    f"maxhd_targets: could not place {n_classes} targets of {n_bits} bits with "
                    f"normalized minimum distance >= min_dist={min_dist} (placed {n_done}). "
                    "Use more bits, fewer classes, or a lower min_dist."
                )
    shifts = np.arange(64, dtype=np.uint64)
    bits = ((packed[:, :, None] >> shifts) & np.uint64(1)).reshape(n_classes, 64 * words)
    targets = torch.from_numpy(bits[:, :n_bits].astype(np.float32) * 2.0 - 1.0)
    return targets[torch.from_numpy(rng.permutation(n_classes))].contiguous()


def make_targets(name: str, n_classes: int, n_bits: int, seed: int = 0) -> torch.Tensor:
    """Targets by generator name: ``"bernoulli"``, ``"hadamard"`` or ``"maxhd"`` (paper defaults).

    Returns:
        ``(n_classes, n_bits)`` float32 tensor of ``+-1``.
    """
    makers = {
        "bernoulli": bernoulli_targets,
        "hadamard": hadamard_targets,
        "maxhd": maxhd_targets,
    }
    key = str(name).lower()
    if key not in makers:
        raise ValueError(f"unknown target generator {name!r}; choose one of {TARGET_NAMES}.")
    return makers[key](n_classes, n_bits, seed=seed)


# --------------------------------------------------------------------------- analysis


def min_hamming_distance(targets: Any, block_rows: int = 2048) -> int:
    """Smallest Hamming distance between two different rows (classes) of ``targets``.

    Args:
        targets: ``(C, K)`` binary codes, ``{-1, +1}`` or ``{0, 1}``, numpy or torch; ``C >= 2``.
        block_rows: rows compared at a time (bounds the memory for large ``C``).

    Returns:
        ``int`` in ``0..K`` (0 when two classes share a target).
    """
    codes = to_pm1(targets).astype(np.int64)
    n, k = codes.shape
    if n < 2:
        raise ValueError("min_hamming_distance needs at least two rows (classes).")
    best = k
    for start in range(0, n, block_rows):
        dots = codes[start : start + block_rows] @ codes.T  # (b, n)
        rows = np.arange(start, min(start + block_rows, n))
        dots[rows - start, rows] = -k  # ignore each row's distance to itself
        best = min(best, int((k - dots.max()) // 2))
    return best


def _as_float_tensor(x: Any) -> torch.Tensor:
    if torch.is_tensor(x):
        return x.detach().float()
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def class_hash_centers(codes: Any, labels: Any, n_classes: int) -> torch.Tensor:
    """Per-class hash centers (OrthoHash supplementary, Algorithm 2).

    ``B = sign(V)``; ``H[c] = sign(mean of B over the items labelled c)``, i.e. a
    per-bit majority vote. Ties (a bit whose mean is exactly 0) and zeros in ``V``
    become ``+1`` (course convention ``sign(0) = +1``; ``torch.sign`` in the paper's
    pseudo-code would leave a 0 there). With multi-hot labels an item votes for
    every class it carries.

    Args:
        codes: ``(n, K)`` continuous codes or ``+-1``/``{0, 1}`` codes (numpy or torch).
            Bits given as ``{0, 1}`` must be converted first with
            :func:`hashlib_edu.codes.to_pm1` (0 would otherwise count as ``+1``).
        labels: ``(n,)`` class ids or ``(n, C)`` multi-hot.
        n_classes: ``C``.

    Returns:
        ``(C, K)`` float32 tensor of ``+-1``.

    Raises:
        ValueError: if a class has no item (its center is undefined).
    """
    b = torch.from_numpy(sign(codes).astype(np.float32))
    if b.ndim != 2:
        raise ValueError(f"codes must be (n, K); got shape {tuple(b.shape)}.")
    y = to_multi_hot(labels, n_classes, n_items=b.shape[0]).cpu()
    counts = y.sum(dim=0)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"class_hash_centers: classes {empty[:10]} have no items; no center.")
    mean = (y.T @ b) / counts[:, None]
    return torch.where(mean >= 0, 1.0, -1.0)


def orthogonality_error(centers: Any, normalize: bool = True) -> float:
    """Orthogonality ``||H H^T - I||_F`` of class centers or targets (Algorithm 2).

    With ``normalize=True`` (default) each row is first scaled to unit norm (``h / sqrt(K)``
    for ``+-1`` rows), so ``H H^T`` holds the pairwise cosines, its diagonal is 1, and the
    error is ``sqrt(sum_{i != j} cos^2(h_i, h_j))`` - zero exactly when all centers are
    pairwise orthogonal (``K/2`` bits apart). The paper's pseudo-code applies the norm to
    the raw ``+-1`` matrix; that version (``normalize=False``) adds the constant diagonal
    ``K - 1`` to every entry ``(i, i)`` and is kept only for comparison.

    Args:
        centers: ``(C, K)`` real or ``+-1`` rows (numpy or torch). ``{0, 1}`` rows must be
            converted with :func:`hashlib_edu.codes.to_pm1` first.

    Returns:
        Frobenius norm as a Python float.
    """
    h = _as_float_tensor(centers).double()
    if h.ndim != 2:
        raise ValueError(f"centers must be (C, K); got shape {tuple(h.shape)}.")
    if normalize:
        norms = h.norm(dim=1, keepdim=True)
        if bool((norms == 0).any()):
            raise ValueError("orthogonality_error: a center is all zeros; it has no direction.")
        h = h / norms
    gram = h @ h.T - torch.eye(h.shape[0], dtype=h.dtype)
    return float(gram.norm())


def _signs(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, 1.0, -1.0).to(v.dtype)


def quantization_error(v: Any) -> torch.Tensor:
    """Quantization error after rescaling: ``||sqrt(K) v/||v|| - sign(v)||^2`` per row.

    ``v`` is first rescaled to the norm ``sqrt(K)`` of a ``+-1`` code (retrieval only
    depends on directions), then compared with its own binarization ``b = sign(v)``.

    Args:
        v: ``(n, K)`` continuous codes, no all-zero row (numpy or torch).

    Returns:
        ``(n,)`` float tensor, in ``[0, 2K(1 - 1/sqrt(K))]``: 0 when ``v`` is already a
        multiple of a ``+-1`` vector.
    """
    v = _as_float_tensor(v)
    k = v.shape[-1]
    v_hat = math.sqrt(k) * v / v.norm(dim=-1, keepdim=True)
    return (v_hat - _signs(v)).pow(2).sum(dim=-1)


def quantization_error_identity(v: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sides of OrthoHash's identity (supplementary, Eq. 3).

    For ``b = sign(v)`` (``||b|| = sqrt(K)``) and ``v_hat = sqrt(K) v / ||v||``:

        ||v_hat - b||^2 = ||v_hat||^2 + ||b||^2 - 2 ||v_hat|| ||b|| cos(v, b)
                        = K + K - 2K cos(v, b) = 2K (1 - cos(v, b)),

    so maximizing the cosine between ``v`` and its binary code is the same as
    minimizing the (scale-free) quantization error.

    Args:
        v: ``(n, K)`` continuous codes.

    Returns:
        ``(direct, via_cosine)``: ``(n,)`` tensors with ``||v_hat - b||^2`` and
        ``2K(1 - cos(v, b))``; equal up to rounding.
    """
    v = _as_float_tensor(v)
    k = v.shape[-1]
    cos = torch.nn.functional.cosine_similarity(v, _signs(v), dim=-1)
    return quantization_error(v), 2.0 * k * (1.0 - cos)


def expected_hamming_distance(n_bits: int, p: Any = 0.5) -> Any:
    """``E[D] = 2K p (1 - p)``: expected Hamming distance of two independent random codes.

    Each bit is ``+1`` with probability ``p`` independently; two bits differ with
    probability ``p(1-p) + (1-p)p = 2p(1-p)``, and the ``K`` bits add up. Maximal
    (``K/2``) at ``p = 0.5``.

    Args:
        n_bits: ``K``.
        p: probability of ``+1``, a float or an array of floats in ``[0, 1]``.

    Returns:
        ``float`` for a float ``p``, numpy array for an array ``p``.
    """
    arr = np.asarray(as_numpy(p), dtype=np.float64)
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError(f"p must lie in [0, 1]; got {p}.")
    out = 2.0 * int(n_bits) * arr * (1.0 - arr)
    return float(out) if out.ndim == 0 else out
