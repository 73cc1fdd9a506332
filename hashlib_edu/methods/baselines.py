"""Classic (non-deep) hashing baselines: LSH, PCA-ITQ, CCA-ITQ and KSH.

These are the rows the deep-hashing papers compare against (CNNBH Table 1,
DSH supplementary Table 4). Every class follows the scikit-learn estimator
conventions:

* ``fit(X, y=None)`` learns from ``X: (n, d) float`` and returns ``self``;
* ``transform(X)`` gives the real-valued projections ``(n, n_bits)`` *before*
  binarization; ``encode(X)`` gives ``(n, n_bits)`` int8 codes in ``{-1, +1}``
  (``encode = sign(transform)``, with ``sign(0) = +1`` from
  :func:`hashlib_edu.codes.sign`); ``fit_encode`` / ``fit_transform`` do both;
* constructor arguments are stored unchanged (so ``get_params``/``clone``
  work) and everything learned ends with an underscore (``mean_``,
  ``rotation_`` ...);
* ``random_state`` is an ``int`` (reproducible), ``None`` (fresh entropy) or a
  ``numpy.random.Generator``.

Methods
-------
``LSH``
    Random Gaussian hyperplanes through the data mean (Charikar 2002's
    sign-random-projection LSH). Two vectors at angle ``theta`` agree on a bit
    with probability ``1 - theta / pi``.
``PCAITQ``
    PCA to ``n_bits`` dimensions, then *iterative quantization* (Gong &
    Lazebnik, CVPR 2011): a rotation ``R`` minimizing ``||B - V R||_F^2`` over
    codes ``B`` and orthogonal ``R``.
``CCAITQ``
    The supervised variant of the same paper: CCA between ``X`` and the one-hot
    labels replaces PCA, then the same ITQ rotation.
``KSH``
    Kernel-based supervised hashing (Liu, Wang, Ji, Jiang & Chang, CVPR 2012):
    bits ``sign(a_k . k(x))`` on RBF kernel features to ``n_anchors`` anchors,
    fitted greedily, bit by bit, so that code inner products match the
    pairwise label similarities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ..codes import as_numpy, quantization_error, sign

__all__ = [
    "LSH",
    "PCAITQ",
    "CCAITQ",
    "KSH",
    "NotFittedError",
    "itq_rotation",
    "quantization_error",  # defined in hashlib_edu.codes; ITQ's objective
    "random_rotation",
]

RandomState = int | np.random.Generator | None


# ----------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------


def _check_n_bits(n_bits: Any) -> int:
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)):
        raise TypeError(f"n_bits must be a positive integer; got {n_bits!r}.")
    if n_bits <= 0:
        raise ValueError(f"n_bits must be a positive integer; got n_bits={n_bits}.")
    return int(n_bits)


def _check_n_iter(n_iter: Any) -> int:
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer; got {n_iter!r}.")
    return int(n_iter)


def _check_X(
    X: Any, n_features: int | None = None, who: str = "", dtype: Any = np.float64
) -> np.ndarray:
    """``X`` as a finite ``(n, d)`` float array (torch tensors accepted).

    ``dtype=None`` keeps float32 input as float32 (no full-size copy; ``transform``
    works in float64 chunk by chunk), anything else is converted to float64.
    """
    arr = np.asarray(as_numpy(X))
    if dtype is not None or arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64, copy=False)
    if arr.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array (n_samples, n_features); got shape {arr.shape}. "
            "Flatten images first, e.g. hashlib_edu.features.pixel_features(images)."
        )
    if arr.shape[0] == 0:
        raise ValueError("X has no samples (shape[0] == 0).")
    if not np.all(np.isfinite(arr)):
        raise ValueError("X contains NaN or infinite values.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"X has {arr.shape[1]} features, but {who} was fitted with {n_features} features."
        )
    return arr


def _labels_to_indicator(y: Any, n_samples: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels ``(n,)`` -> one-hot ``(n, C)`` float64 (and the classes); ``(n, C)`` indicator kept."""
    arr = np.asarray(as_numpy(y))
    if arr.shape[0] != n_samples:
        raise ValueError(f"y has {arr.shape[0]} rows but X has {n_samples} samples.")
    if arr.ndim == 1:
        classes, inverse = np.unique(arr, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y must contain at least 2 classes; got only {classes.tolist()}.")
        onehot = np.zeros((n_samples, classes.size))
        onehot[np.arange(n_samples), inverse] = 1.0
        return onehot, classes
    if arr.ndim == 2:  # multi-label indicator matrix (e.g. NUS-WIDE)
        ind = arr.astype(np.float64)
        if not np.all(np.isfinite(ind)):
            raise ValueError("y contains NaN or infinite values.")
        return ind, None
    raise ValueError(f"y must be labels (n,) or an indicator matrix (n, C); got shape {arr.shape}.")


def _chunked(X: np.ndarray, fn: Any, chunk: int = 8192) -> np.ndarray:
    """``fn`` applied to float64 row blocks of ``X: (n, d)``, results stacked (bounded memory)."""
    return np.concatenate(
        [fn(X[i : i + chunk].astype(np.float64, copy=False)) for i in range(0, X.shape[0], chunk)]
    )


# ----------------------------------------------------------------------------
# ITQ: one implementation shared by PCA-ITQ and CCA-ITQ
# ----------------------------------------------------------------------------


def random_rotation(k: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed random orthogonal ``(k, k)`` matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)  # sign fix makes the distribution uniform


def itq_rotation(
    V: np.ndarray, n_iter: int = 50, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Iterative quantization (Gong & Lazebnik 2011): rotate ``V`` onto the hypercube corners.

    Minimizes ``Q(B, R) = ||B - V R||_F^2`` over codes ``B in {-1, +1}^(n, k)`` and
    orthogonal ``R`` by alternating two *exact* minimizations, starting from a
    random rotation ``R_0``:

    1. fix ``R``, ``B = sign(V R)`` (element-wise optimal);
    2. fix ``B``, ``R = U W^T`` where ``V^T B = U S W^T`` (orthogonal
       Procrustes: ``Q = ||B||^2 + ||V||^2 - 2 tr(R^T V^T B)`` and the trace is
       maximized by ``U W^T``).

    Recorded error. ``errors[t] = ||sign(V R_t) - V R_t||_F^2`` is the error of
    the rotation after ``t`` Procrustes steps, with its best codes. It is
    non-increasing, because with ``B_t = sign(V R_{t-1})``::

        errors[t] = Q(sign(V R_t), R_t) <= Q(B_t, R_t) <= Q(B_t, R_{t-1}) = errors[t-1]

    (first inequality: step 1 is optimal; second: step 2 is optimal). Both
    sides of each inequality are computed from the same ``V @ R`` product, so
    the recorded floats obey it exactly; in the one place rounding could break
    it (a Procrustes step that changes ``R`` by ~1e-16 once ``B`` has
    converged), a step that does not lower ``Q`` is rejected and ``R`` kept.

    The rotation is invariant to scaling ``V`` (both steps are), but the
    recorded errors are not: they are in the squared units of ``V``; divide by
    ``n * k`` for a per-entry value.

    Args:
        V: ``(n, k)`` float centered, projected data (``k`` = number of bits).
        n_iter: number of alternations (Procrustes steps); 50 as in the paper.
        rng: random generator for ``R_0`` (a fresh one if ``None``).

    Returns:
        ``(R, errors)``: ``R: (k, k)`` orthogonal and ``errors: (n_iter + 1,)`` float,
        ``errors[0]`` being the error of the random initial rotation.
    """
    V = np.asarray(V, dtype=np.float64)
    if V.ndim != 2:
        raise ValueError(f"V must be 2-D (n, k); got shape {V.shape}.")
    n_iter = _check_n_iter(n_iter)
    rng = np.random.default_rng() if rng is None else rng
    k = V.shape[1]
    R = random_rotation(k, rng)
    VR = V @ R
    B = sign(VR).astype(np.float64)
    errors = [float(np.sum((B - VR) ** 2))]
    for _ in range(n_iter):
        U, _s, Wt = np.linalg.svd(V.T @ B)
        R_new = U @ Wt
        VR_new = V @ R_new
        if float(np.sum((B - VR_new) ** 2)) <= errors[-1]:
            R, VR = R_new, VR_new
        B = sign(VR).astype(np.float64)
        errors.append(float(np.sum((B - VR) ** 2)))
    return R, np.asarray(errors)


def _pca(Xc: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` principal directions of centered ``Xc: (n, d)``.

    Returns ``(components: (d, k), variances: (k,))`` by decreasing variance; each
    direction's sign is fixed so its largest-magnitude entry is positive
    (deterministic across LAPACK builds).
    """
    n, d = Xc.shape
    if d <= n:
        cov = Xc.T @ Xc / max(n - 1, 1)
        w, v = scipy.linalg.eigh(cov, subset_by_index=[d - k, d - 1])
        w, v = w[::-1], v[:, ::-1]
    else:
        _u, s, vt = np.linalg.svd(Xc, full_matrices=False)
        w, v = s[:k] ** 2 / max(n - 1, 1), vt[:k].T
    flip = np.sign(v[np.argmax(np.abs(v), axis=0), np.arange(k)])
    return v * np.where(flip == 0, 1.0, flip), np.maximum(w, 0.0)


# ----------------------------------------------------------------------------
# estimators
# ----------------------------------------------------------------------------


class _BinaryHasher(BaseEstimator):
    """Shared ``transform`` / ``encode`` / ``fit_encode`` for linear hashers.

    Subclasses set ``mean_: (d,)``, ``n_features_in_`` and implement
    ``_projection_matrix() -> (d, n_bits)``.
    """

    _fitted_attr = "mean_"

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attr):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using 'encode' or 'transform'."
            )

    def _projection_matrix(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X: Any) -> np.ndarray:
        """Real-valued projections before the sign.

        Args:
            X: ``(n, d)`` float, ``d`` as in ``fit``.

        Returns:
            ``(n, n_bits)`` float64; ``encode(X) == sign(transform(X))``.
        """
        self._check_fitted()
        X = _check_X(X, self.n_features_in_, type(self).__name__, dtype=None)
        P = self._projection_matrix()
        return _chunked(X, lambda x: (x - self.mean_) @ P)

    def encode(self, X: Any) -> np.ndarray:
        """Binary codes.

        Args:
            X: ``(n, d)`` float.

        Returns:
            ``(n, n_bits)`` int8 in ``{-1, +1}`` (``sign(0) = +1``).
        """
        return sign(self.transform(X))

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X, y)`` then ``transform(X)``: ``(n, n_bits)`` float64."""
        return self.fit(X, y).transform(X)

    def fit_encode(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X, y)`` then ``encode(X)``: ``(n, n_bits)`` int8 in ``{-1, +1}``."""
        return self.fit(X, y).encode(X)


class LSH(_BinaryHasher):
    """Locality-sensitive hashing with random hyperplanes (sign random projections).

    Bit ``j`` of ``x`` is ``sign(w_j . (x - mean))`` with ``w_j ~ N(0, I_d)``. For
    two vectors whose (centered) directions form an angle ``theta``, a random
    hyperplane separates them with probability ``theta / pi``, so each bit
    collides with probability ``1 - theta / pi`` and the expected Hamming
    distance is ``n_bits * theta / pi``. No data are used except the mean.

    Args:
        n_bits: number of bits ``k`` (any positive number, may exceed ``d``).
        random_state: ``int`` / ``Generator`` / ``None`` for the hyperplanes.
        center: subtract the training mean (hyperplanes through the data's
            center); ``False`` gives hyperplanes through the origin.

    Attributes:
        mean_: ``(d,)`` training mean (zeros if ``center=False``).
        projections_: ``(d, n_bits)`` Gaussian hyperplane normals.
        n_features_in_: ``d``.
    """

    def __init__(self, n_bits: int, random_state: RandomState = None, center: bool = True):
        self.n_bits = n_bits
        self.random_state = random_state
        self.center = center

    def fit(self, X: Any, y: Any = None) -> LSH:
        """Draw the hyperplanes. ``X: (n, d)`` float; ``y`` is ignored."""
        k = _check_n_bits(self.n_bits)
        X = _check_X(X)
        rng = np.random.default_rng(self.random_state)
        d = X.shape[1]
        self.mean_ = X.mean(axis=0) if self.center else np.zeros(d)
        self.projections_ = rng.standard_normal((d, k))
        self.n_features_in_ = d
        return self

    def _projection_matrix(self) -> np.ndarray:
        return self.projections_


class PCAITQ(_BinaryHasher):
    """PCA followed by iterative quantization (Gong & Lazebnik, CVPR 2011).

    ``V = (X - mean) W`` with ``W: (d, n_bits)`` the top principal directions, then
    :func:`itq_rotation` finds ``R`` so that ``sign(V R)`` loses as little as
    possible; codes are ``sign((x - mean) W R)``.

    Args:
        n_bits: number of bits ``k``; ``k <= min(n_samples, d)``.
        n_iter: ITQ alternations (50 in the paper).
        random_state: ``int`` / ``Generator`` / ``None`` for the initial rotation.

    Attributes:
        mean_: ``(d,)``; components_: ``(d, k)`` principal directions;
        explained_variance_: ``(k,)``; rotation_: ``(k, k)``;
        quantization_errors_: ``(n_iter + 1,)`` ``||sign(VR) - VR||_F^2`` for the
        initial rotation and after each ITQ iteration (non-increasing);
        n_features_in_: ``d``.
    """

    def __init__(self, n_bits: int, n_iter: int = 50, random_state: RandomState = None):
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> PCAITQ:
        """Learn PCA and the ITQ rotation. ``X: (n, d)`` float; ``y`` is ignored."""
        k = _check_n_bits(self.n_bits)
        n_iter = _check_n_iter(self.n_iter)
        X = _check_X(X)
        n, d = X.shape
        if k > d:
            raise ValueError(
                f"PCAITQ: n_bits={k} > n_features={d}; PCA cannot give more directions than "
                "the data have dimensions (use LSH, or richer features)."
            )
        if k > n:
            raise ValueError(f"PCAITQ: n_bits={k} > n_samples={n}; fit on more samples.")
        rng = np.random.default_rng(self.random_state)
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        self.components_, self.explained_variance_ = _pca(Xc, k)
        self.rotation_, self.quantization_errors_ = itq_rotation(Xc @ self.components_, n_iter, rng)
        self.n_features_in_ = d
        return self

    def _projection_matrix(self) -> np.ndarray:
        return self.components_ @ self.rotation_


class CCAITQ(_BinaryHasher):
    """Supervised ITQ: CCA between features and labels, then the ITQ rotation.

    CCA (regularized, computed directly). With centered ``X`` and label
    indicators ``Y`` (one-hot for single-label ``y``)::

        Cxx = X^T X / n + reg * tr(X^T X / n) / d * I      (d, d)
        Cyy = Y^T Y / n + reg * tr(Y^T Y / n) / C * I      (C, C)
        Cxy = X^T Y / n

    With Cholesky factors ``Cxx = Lx Lx^T``, ``Cyy = Ly Ly^T``, the SVD
    ``Lx^-1 Cxy Ly^-T = U S V^T`` gives the canonical directions
    ``Wx = Lx^-T U`` (so ``Wx^T Cxx Wx = I``) and the canonical correlations
    ``S`` (sorted, decreasing). The ridge (relative to the average variance,
    so it does not depend on the feature scale) keeps ``Cxx`` invertible when
    ``d`` is large or features are collinear (raw pixels).

    How many bits carry label information. The centered one-hot matrix has
    rank ``C - 1`` (its rows sum to 0), so at most ``C - 1`` canonical
    correlations are non-zero: 9 for CIFAR-10. For ``n_bits > C - 1`` the
    remaining directions are the rest of a ``Cxx``-orthonormal basis from the
    same SVD, with correlation 0 (up to rounding): they carry *no* label
    information. Gong & Lazebnik's reference code multiplies each CCA direction
    by ``r``, its canonical correlation (the square root of the generalized
    eigenvalue), before ITQ; ``scale=True`` (default) does the same. The
    uninformative directions then get zero weight, and the ``n_bits`` codes
    become ``n_bits`` ITQ-chosen hyperplanes through the ``(C - 1)``-dimensional
    canonical subspace (more bits = finer cells of that subspace, not new
    information). ``scale=False`` keeps the unit-variance directions, so bits
    beyond ``C - 1`` mix in label-free directions.

    Args:
        n_bits: number of bits ``k``; ``k <= d``.
        n_iter: ITQ alternations (50 in the paper).
        random_state: ``int`` / ``Generator`` / ``None`` for the initial rotation.
        reg: ridge added to both covariances, relative to their mean variance
            (Gong's code adds an absolute ``1e-4 * I`` to the covariances of its
            normalized features).
        scale: multiply the canonical directions by their correlations.

    Attributes:
        mean_: ``(d,)``; components_: ``(d, k)`` (scaled) canonical directions;
        correlations_: ``(k,)`` canonical correlations (0 beyond the rank of the
        labels); n_informative_: how many are non-zero (``C - 1`` for
        single-label data, at most ``k``); classes_: sorted labels (``None`` for
        an indicator ``y``); rotation_: ``(k, k)``; quantization_errors_:
        ``(n_iter + 1,)`` non-increasing; n_features_in_: ``d``.
    """

    def __init__(
        self,
        n_bits: int,
        n_iter: int = 50,
        random_state: RandomState = None,
        reg: float = 1e-4,
        scale: bool = True,
    ):
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.random_state = random_state
        self.reg = reg
        self.scale = scale

    def fit(self, X: Any, y: Any = None) -> CCAITQ:
        """Learn CCA and the ITQ rotation.

        Args:
            X: ``(n, d)`` float.
            y: ``(n,)`` class labels, or ``(n, C)`` 0/1 multi-label indicators (required).
        """
        if y is None:
            raise ValueError(
                "CCAITQ is supervised: call fit(X, y) with labels y of shape (n,) "
                "(or a (n, C) indicator matrix). For unsupervised codes use PCAITQ."
            )
        k = _check_n_bits(self.n_bits)
        n_iter = _check_n_iter(self.n_iter)
        if not float(self.reg) > 0:
            raise ValueError(f"reg must be > 0 (the ridge keeps CCA well-posed); got {self.reg!r}.")
        X = _check_X(X)
        n, d = X.shape
        if k > d:
            raise ValueError(
                f"CCAITQ: n_bits={k} > n_features={d}; CCA cannot give more directions than "
                "the data have dimensions."
            )
        Y, self.classes_ = _labels_to_indicator(y, n)
        rng = np.random.default_rng(self.random_state)
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        wx, corr = _cca_directions(Xc, Y - Y.mean(axis=0), k, float(self.reg))
        self.correlations_ = corr
        self.n_informative_ = int(np.sum(corr > 1e-8 * max(corr[0], 1e-300)))
        self.components_ = wx * corr if self.scale else wx
        self.rotation_, self.quantization_errors_ = itq_rotation(Xc @ self.components_, n_iter, rng)
        self.n_features_in_ = d
        return self

    def _projection_matrix(self) -> np.ndarray:
        return self.components_ @ self.rotation_


def _cca_directions(
    Xc: np.ndarray, Yc: np.ndarray, k: int, reg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` regularized canonical directions of ``X`` w.r.t. ``Y``.

    Args:
        Xc: ``(n, d)`` centered features; Yc: ``(n, C)`` centered label indicators.
        k: number of directions (``<= d``); reg: relative ridge.

    Returns:
        ``(Wx: (d, k), correlations: (k,))``, ``Wx^T Cxx Wx = I``, correlations
        decreasing, 0 beyond ``min(d, C)`` and (up to rounding) beyond the rank of ``Yc``.
    """
    n, d = Xc.shape
    c = Yc.shape[1]
    cxx = Xc.T @ Xc / n
    cyy = Yc.T @ Yc / n
    cxx[np.diag_indices(d)] += reg * max(np.trace(cxx) / d, 1e-12)
    cyy[np.diag_indices(c)] += reg * max(np.trace(cyy) / c, 1e-12)
    lx = np.linalg.cholesky(cxx)
    ly = np.linalg.cholesky(cyy)
    cxy = Xc.T @ Yc / n
    # M = Lx^-1 Cxy Ly^-T
    m = scipy.linalg.solve_triangular(lx, cxy, lower=True)
    m = scipy.linalg.solve_triangular(ly, m.T, lower=True).T
    u, s, _vt = np.linalg.svd(m, full_matrices=k > min(d, c))
    corr = np.zeros(k)
    corr[: min(k, s.size)] = s[:k]
    wx = scipy.linalg.solve_triangular(lx.T, u[:, :k], lower=False)
    return wx, corr


# RMS of Kbar a at the spectral start: tanh(3 / 2) = 0.9, so the smoothed objective starts
# close to the binary one (RMS 1 left the ascent worse than the start for ~half of the bits).
_KSH_START_RMS = 3.0


class KSH(_BinaryHasher):
    """Kernel-based supervised hashing (Liu et al., CVPR 2012), greedy bit-wise.

    Model. ``m = n_anchors`` training samples are drawn as anchors; each input
    becomes the centered kernel vector ``kbar(x) = k(x) - mu: (m,)`` with the
    Gaussian kernel ``k_j(x) = exp(-||x - anchor_j||^2 / (2 s))``, ``s`` the mean
    squared training-to-anchor distance, and ``mu`` the
    training mean of ``k``. Bit ``t`` is ``sign(a_t . kbar(x))``.

    Objective. With ``S_ij = +1`` for same-label pairs and ``-1`` otherwise, KSH
    minimizes ``||H H^T - r S||_F^2`` over the ``(n, r)`` training codes ``H``. Bits
    are learned greedily: with residual ``R_t = r S - sum_{u<t} h_u h_u^T``, bit
    ``t`` maximizes ``h^T R_t h`` for ``h = sign(Kbar a)``:

    1. spectral start: the top generalized eigenvector of
       ``(Kbar^T R_t Kbar) a = lambda (Kbar^T Kbar) a``, scaled so that
       ``mean((Kbar a)^2) = 9`` (``tanh`` below then starts close to ``sign``);
    2. smoothing: replace ``sign`` by ``tanh(x / 2)`` and maximize
       ``tanh(Kbar a / 2)^T R_t tanh(Kbar a / 2)`` by gradient ascent with an
       Armijo backtracking line search (the paper uses Nesterov's accelerated
       gradient; this is plain gradient ascent, up to ``n_iter`` steps);
    3. keep whichever of the two ``a`` has the larger *binary* objective
       ``h^T R_t h``.

    ``S`` is never formed: for single-label data ``S = 2 Y Y^T - 1 1^T`` (``Y``
    one-hot), so ``R_t b`` costs ``O(n (C + r))`` and the fit is linear in the
    number of labelled samples (all of them can be used: under 10 s for 5,000
    samples, 300 anchors and 48 bits on one core).

    Args:
        n_bits: number of bits ``r``.
        n_anchors: number of anchors ``m`` (300 in the paper); at most ``n``.
        n_iter: maximum gradient steps per bit.
        tol: stop a bit's optimization when the relative gain of a step is below ``tol``.
        random_state: ``int`` / ``Generator`` / ``None`` for the anchor draw.

    Attributes:
        anchors_: ``(m, d)``; bandwidth_: ``s``; kernel_mean_: ``(m,)`` = ``mu``;
        coefficients_: ``(m, n_bits)`` the ``a_t``; classes_: sorted labels;
        bit_objectives_: ``(n_bits,)`` ``h_t^T R_t h_t`` of each chosen bit;
        spectral_kept_: ``(n_bits,)`` bool, True where step 3 kept the spectral start;
        n_features_in_: ``d``.
    """

    _fitted_attr = "coefficients_"

    def __init__(
        self,
        n_bits: int,
        n_anchors: int = 300,
        n_iter: int = 100,
        tol: float = 1e-5,
        random_state: RandomState = None,
    ):
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.n_iter = n_iter
        self.tol = tol
        self.random_state = random_state

    def _kernel(self, X: np.ndarray) -> np.ndarray:
        """Uncentered kernel ``(n, m)`` of ``X: (n, d)`` against the anchors."""
        return np.exp(-_sq_distances(X, self.anchors_) / (2.0 * self.bandwidth_))

    def fit(self, X: Any, y: Any = None) -> KSH:
        """Learn the anchors and the ``n_bits`` kernel hash functions.

        Args:
            X: ``(n, d)`` float labelled training samples.
            y: ``(n,)`` class labels (required; single-label).
        """
        if y is None:
            raise ValueError("KSH is supervised: call fit(X, y) with labels y of shape (n,).")
        r = _check_n_bits(self.n_bits)
        n_iter = _check_n_iter(self.n_iter)
        X = _check_X(X)
        n, d = X.shape
        if np.asarray(as_numpy(y)).ndim != 1:
            raise ValueError("KSH needs single-label y of shape (n,) (pairwise S is 'same label').")
        Y, self.classes_ = _labels_to_indicator(y, n)
        m = int(self.n_anchors)
        if not 1 <= m <= n:
            raise ValueError(f"n_anchors must be in [1, n_samples={n}]; got {self.n_anchors!r}.")
        rng = np.random.default_rng(self.random_state)
        self.anchors_ = X[np.sort(rng.choice(n, size=m, replace=False))]
        self.bandwidth_ = float(max(np.mean(_sq_distances(X, self.anchors_)), 1e-12))
        K = self._kernel(X)
        self.kernel_mean_ = K.mean(axis=0)
        K -= self.kernel_mean_

        def residual_times(b: np.ndarray, H: np.ndarray) -> np.ndarray:
            """``R b`` with ``R = r S - H H^T``, ``S = 2 Y Y^T - 1 1^T``; ``b: (n,)``."""
            return r * (2.0 * Y @ (Y.T @ b) - b.sum()) - H @ (H.T @ b)

        gram = K.T @ K
        gram[np.diag_indices(m)] += 1e-6 * max(np.trace(gram) / m, 1e-12)
        KY = K.T @ Y  # (m, C)
        Ksum = K.sum(axis=0)  # (m,)
        A = r * (2.0 * KY @ KY.T - np.outer(Ksum, Ksum))  # Kbar^T (r S) Kbar
        H = np.zeros((n, 0))
        coefs, objectives, kept = [], [], []
        for _ in range(r):
            _w, v = scipy.linalg.eigh(A, gram, subset_by_index=[m - 1, m - 1])
            a0 = (
                v[:, 0] * _KSH_START_RMS * np.sqrt(n / max(float(v[:, 0] @ gram @ v[:, 0]), 1e-300))
            )
            a1 = _ksh_ascent(K, lambda b, H=H: residual_times(b, H), a0, n_iter, float(self.tol))
            h0, h1 = sign(K @ a0).astype(np.float64), sign(K @ a1).astype(np.float64)
            o0, o1 = h0 @ residual_times(h0, H), h1 @ residual_times(h1, H)
            a, h, o = (a0, h0, o0) if o0 > o1 else (a1, h1, o1)
            coefs.append(a)
            objectives.append(float(o))
            kept.append(bool(o0 > o1))
            H = np.column_stack([H, h])
            kh = K.T @ h
            A -= np.outer(kh, kh)
        self.coefficients_ = np.column_stack(coefs)
        self.bit_objectives_ = np.asarray(objectives)
        self.spectral_kept_ = np.asarray(kept)
        self.n_features_in_ = d
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Real-valued ``kbar(x) . a_t``: ``X: (n, d)`` -> ``(n, n_bits)`` float64."""
        self._check_fitted()
        X = _check_X(X, self.n_features_in_, type(self).__name__, dtype=None)
        return _chunked(X, lambda x: (self._kernel(x) - self.kernel_mean_) @ self.coefficients_)


def _sq_distances(X: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, m)`` between rows of ``X: (n, d)`` and ``A: (m, d)``."""
    sq = np.sum(X**2, axis=1)[:, None] + np.sum(A**2, axis=1)[None, :] - 2.0 * X @ A.T
    return np.maximum(sq, 0.0)


def _ksh_ascent(
    K: np.ndarray, residual_times: Any, a0: np.ndarray, n_iter: int, tol: float
) -> np.ndarray:
    """Maximize ``f(a) = b^T R b``, ``b = tanh(K a / 2)``, by gradient ascent + Armijo line search.

    Args:
        K: ``(n, m)`` centered kernel features; residual_times: ``b -> R b``;
        a0: ``(m,)`` start; n_iter: maximum steps; tol: relative-gain stop.

    Returns:
        ``(m,)`` the final ``a`` (``f`` never decreases along the way).
    """

    def value(a: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        b = np.tanh(0.5 * (K @ a))
        Rb = residual_times(b)
        return float(b @ Rb), b, Rb

    a = a0
    f, b, Rb = value(a)
    step = None
    for _ in range(n_iter):
        g = K.T @ (Rb * (1.0 - b * b))  # gradient of f (R symmetric)
        gg = float(g @ g)
        if gg == 0.0:
            break
        if step is None:  # first step moves a by 10% of its norm
            step = 0.1 * float(np.linalg.norm(a)) / np.sqrt(gg)
        while True:
            a_new = a + step * g
            f_new, b_new, Rb_new = value(a_new)
            if f_new >= f + 1e-4 * step * gg:
                break
            step *= 0.5
            if step * np.sqrt(gg) < 1e-12 * max(float(np.linalg.norm(a)), 1.0):
                return a
        gain = (f_new - f) / max(abs(f), 1e-300)
        a, f, b, Rb = a_new, f_new, b_new, Rb_new
        step *= 2.0
        if gain < tol:
            break
    return a
