"""Tests for hashlib_edu.methods.baselines: LSH, PCA-ITQ, CCA-ITQ, KSH."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from hashlib_edu.codes import sign
from hashlib_edu.methods.baselines import (
    CCAITQ,
    KSH,
    LSH,
    PCAITQ,
    NotFittedError,
    itq_rotation,
    quantization_error,
    random_rotation,
)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # Tiny matrices: BLAS threads only spin (badly so on a shared 2-core machine).
    with threadpool_limits(1):
        yield


def _clusters(n: int, n_classes: int = 5, d: int = 32, noise: float = 3.0, seed: int = 0):
    """Gaussian class clusters: centres ~ N(0, I_d), samples = centre + noise * N(0, I_d)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, d))
    y = rng.integers(0, n_classes, n)
    return centres[y] + noise * rng.standard_normal((n, d)), y


def _mean_ap(q_codes, q_labels, db_codes, db_labels) -> float:
    """Brute-force mAP of Hamming ranking (ties broken by database order)."""
    k = q_codes.shape[1]
    ham = (k - q_codes.astype(np.int32) @ db_codes.T.astype(np.int32)) // 2
    order = np.argsort(ham, axis=1, kind="stable")
    rel = db_labels[order] == q_labels[:, None]
    precision = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
    return float(np.mean((precision * rel).sum(axis=1) / rel.sum(axis=1)))


ALL = [
    lambda k, rs=0: LSH(k, random_state=rs),
    lambda k, rs=0: PCAITQ(k, n_iter=20, random_state=rs),
    lambda k, rs=0: CCAITQ(k, n_iter=20, random_state=rs),
    lambda k, rs=0: KSH(k, n_anchors=40, n_iter=20, random_state=rs),
]
IDS = ["LSH", "PCAITQ", "CCAITQ", "KSH"]


# ----------------------------------------------------------------------------
# codes
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("make", ALL, ids=IDS)
@pytest.mark.parametrize("n_bits", [1, 12])
def test_codes_shape_dtype_values(make, n_bits):
    X, y = _clusters(200)
    model = make(n_bits).fit(X, y)
    codes = model.encode(X[:50])
    assert codes.shape == (50, n_bits)
    assert codes.dtype == np.int8
    assert set(np.unique(codes)) <= {-1, 1}
    proj = model.transform(X[:50])
    assert proj.shape == (50, n_bits) and proj.dtype == np.float64
    np.testing.assert_array_equal(codes, sign(proj))
    np.testing.assert_array_equal(make(n_bits).fit_encode(X, y), model.encode(X))
    np.testing.assert_allclose(make(n_bits).fit_transform(X, y), model.transform(X))


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_determinism_with_random_state(make):
    X, y = _clusters(200)
    a = make(16, 7).fit(X, y).encode(X)
    b = make(16, 7).fit(X, y).encode(X)
    np.testing.assert_array_equal(a, b)
    clone_codes = clone(make(16, 7)).fit(X, y).encode(X)
    np.testing.assert_array_equal(a, clone_codes)


def test_different_seeds_differ():
    X, _ = _clusters(200)
    assert not np.array_equal(
        LSH(16, random_state=1).fit_encode(X), LSH(16, random_state=2).fit_encode(X)
    )
    r1 = PCAITQ(8, random_state=1).fit(X).quantization_errors_[0]
    r2 = PCAITQ(8, random_state=2).fit(X).quantization_errors_[0]
    assert r1 != r2  # different random initial rotations


def test_sign_zero_is_plus_one():
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    model = LSH(4, random_state=0).fit(X)
    # the mean (0, 0) projects to exactly 0 on every hyperplane -> all +1
    np.testing.assert_array_equal(model.encode(np.zeros((1, 2))), np.ones((1, 4), dtype=np.int8))


# ----------------------------------------------------------------------------
# LSH
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("angle", [0.1, 0.5, 1.0, np.pi / 2, 2.0, 2.8, np.pi])
def test_lsh_collision_rate_is_one_minus_angle_over_pi(angle):
    """Each random hyperplane keeps two vectors at angle theta together w.p. 1 - theta/pi."""
    d, k = 16, 20_000
    rng = np.random.default_rng(123)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    w = rng.standard_normal(d)
    w -= (w @ u) * u
    w /= np.linalg.norm(w)
    v = np.cos(angle) * u + np.sin(angle) * w  # exactly `angle` from u
    pair = np.stack([3.0 * u, 0.5 * v])  # lengths do not matter
    codes = LSH(k, random_state=0, center=False).fit(pair).encode(pair)
    rate = np.mean(codes[0] == codes[1])
    p = 1.0 - angle / np.pi
    se = np.sqrt(p * (1.0 - p) / k)  # binomial standard error over k independent bits
    assert abs(rate - p) <= 4.0 * se + 1e-12


def test_lsh_center_uses_training_mean():
    X, _ = _clusters(100)
    shifted = X + 100.0
    a = LSH(32, random_state=0).fit_encode(X)
    b = LSH(32, random_state=0).fit_encode(shifted)
    np.testing.assert_array_equal(a, b)  # centering makes codes shift-invariant
    model = LSH(32, random_state=0, center=False).fit(shifted)
    np.testing.assert_array_equal(model.mean_, np.zeros(X.shape[1]))


def test_lsh_allows_more_bits_than_features():
    X, _ = _clusters(50, d=4)
    assert LSH(64, random_state=0).fit_encode(X).shape == (50, 64)


# ----------------------------------------------------------------------------
# ITQ
# ----------------------------------------------------------------------------


def test_random_rotation_is_orthogonal():
    R = random_rotation(9, np.random.default_rng(0))
    np.testing.assert_allclose(R.T @ R, np.eye(9), atol=1e-12)


def test_itq_error_non_increasing_and_decreases():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((500, 8)) * np.linspace(3.0, 0.5, 8)
    R, errors = itq_rotation(V, n_iter=50, rng=np.random.default_rng(1))
    assert errors.shape == (51,)
    assert np.all(np.diff(errors) <= 0.0), np.diff(errors).max()
    assert errors[-1] < errors[0]
    np.testing.assert_allclose(R.T @ R, np.eye(8), atol=1e-10)
    assert errors[-1] == pytest.approx(quantization_error(V, R), rel=1e-12)


@pytest.mark.parametrize("cls", [PCAITQ, CCAITQ])
@pytest.mark.parametrize("n_bits", [4, 16, 24])
def test_itq_models_record_monotone_errors(cls, n_bits):
    X, y = _clusters(300, n_classes=6, d=32, seed=n_bits)
    model = cls(n_bits, n_iter=50, random_state=0).fit(X, y)
    errors = model.quantization_errors_
    assert errors.shape == (51,)
    assert np.all(np.diff(errors) <= 0.0)
    assert errors[-1] < errors[0]
    np.testing.assert_allclose(model.rotation_.T @ model.rotation_, np.eye(n_bits), atol=1e-10)
    # the recorded final error is the error of the codes encode() produces on the training set
    V = (X - model.mean_) @ model.components_
    assert errors[-1] == pytest.approx(quantization_error(V, model.rotation_), rel=1e-12)


def test_itq_records_the_codes_quantization_error():
    """The one quantization error of the package: ITQ's recorded final error is
    ``codes.quantization_error(Xc @ components_, rotation_)``, and baselines re-exports it."""
    from hashlib_edu import codes
    from hashlib_edu.methods import baselines

    assert baselines.quantization_error is codes.quantization_error
    X, _ = _clusters(400, n_classes=6, d=24, seed=3)
    model = PCAITQ(12, n_iter=30, random_state=0).fit(X)
    Xc = X - model.mean_
    error = codes.quantization_error(Xc @ model.components_, model.rotation_)
    assert isinstance(error, float)
    assert model.quantization_errors_[-1] == pytest.approx(error, rel=1e-9)
    # the same, row by row, and against the codes the model gives its training data
    rows = codes.quantization_error(Xc @ model.components_, model.rotation_, per_row=True)
    assert rows.shape == (400,) and rows.sum() == pytest.approx(error, rel=1e-12)
    V = Xc @ model.components_ @ model.rotation_
    np.testing.assert_array_equal(sign(V), model.encode(X))
    assert float(((sign(V) - V) ** 2).sum()) == pytest.approx(error, rel=1e-9)


def test_itq_zero_iterations():
    X, _ = _clusters(100)
    model = PCAITQ(8, n_iter=0, random_state=0).fit(X)
    assert model.quantization_errors_.shape == (1,)


def test_pca_components_orthonormal_and_sorted():
    X, _ = _clusters(300, d=20)
    model = PCAITQ(10, random_state=0).fit(X)
    W = model.components_
    np.testing.assert_allclose(W.T @ W, np.eye(10), atol=1e-10)
    assert np.all(np.diff(model.explained_variance_) <= 1e-12)
    top = np.linalg.eigvalsh(np.cov(X, rowvar=False))[::-1][:10]
    np.testing.assert_allclose(model.explained_variance_, top, rtol=1e-8)


def test_pca_wide_data_uses_svd_path():
    X, _ = _clusters(30, d=100)  # n < d
    model = PCAITQ(8, random_state=0).fit(X)
    W = model.components_
    np.testing.assert_allclose(W.T @ W, np.eye(8), atol=1e-10)


# ----------------------------------------------------------------------------
# CCA
# ----------------------------------------------------------------------------


def test_cca_informative_directions_at_most_classes_minus_one():
    X, y = _clusters(400, n_classes=5, d=32)
    model = CCAITQ(12, random_state=0).fit(X, y)
    corr = model.correlations_
    assert model.n_informative_ == 4
    assert np.all(np.diff(corr) <= 1e-12)
    assert np.all(corr[:4] > 0.1) and np.all(corr[4:] < 1e-8)
    np.testing.assert_array_equal(model.classes_, np.arange(5))


def test_cca_directions_are_canonical():
    """The top direction's correlation with its best linear prediction from Y equals corr[0]."""
    X, y = _clusters(400, n_classes=5, d=16)
    model = CCAITQ(3, scale=False, reg=1e-8, random_state=0).fit(X, y)
    Xc = X - model.mean_
    W = model.components_
    np.testing.assert_allclose(W.T @ np.cov(Xc, rowvar=False, bias=True) @ W, np.eye(3), atol=1e-5)
    u = Xc @ W[:, 0]
    Y = np.eye(5)[y]
    fitted = Y @ np.linalg.lstsq(Y, u, rcond=None)[0]
    assert np.corrcoef(u, fitted)[0, 1] == pytest.approx(model.correlations_[0], abs=1e-5)


def test_cca_unscaled_directions_beyond_rank_stay_orthonormal():
    X, y = _clusters(400, n_classes=5, d=16)
    model = CCAITQ(12, scale=False, reg=1e-8, random_state=0).fit(X, y)
    W = model.components_
    cxx = np.cov(X - model.mean_, rowvar=False, bias=True)
    np.testing.assert_allclose(W.T @ cxx @ W, np.eye(12), atol=1e-5)
    assert model.n_informative_ == 4


def test_cca_accepts_indicator_matrix():
    X, y = _clusters(200, n_classes=4)
    a = CCAITQ(3, random_state=0).fit(X, y).encode(X)
    b = CCAITQ(3, random_state=0).fit(X, np.eye(4)[y]).encode(X)
    np.testing.assert_array_equal(a, b)


def test_supervised_beat_lsh_on_labelled_clusters():
    X, y = _clusters(1200, n_classes=5, d=32, noise=3.0, seed=3)
    train, query, db = slice(0, 600), slice(600, 700), slice(700, 1200)
    scores = {}
    for name, model in {
        "LSH": LSH(16, random_state=0),
        "CCAITQ": CCAITQ(16, random_state=0),
        "KSH": KSH(16, n_anchors=100, n_iter=30, random_state=0),
    }.items():
        model.fit(X[train], y[train])
        scores[name] = _mean_ap(model.encode(X[query]), y[query], model.encode(X[db]), y[db])
    assert scores["CCAITQ"] > scores["LSH"] + 0.15, scores
    assert scores["KSH"] > scores["LSH"] + 0.15, scores


# ----------------------------------------------------------------------------
# KSH
# ----------------------------------------------------------------------------


def test_ksh_attributes_and_bit_objectives():
    X, y = _clusters(300, n_classes=4)
    model = KSH(8, n_anchors=50, n_iter=30, random_state=0).fit(X, y)
    assert model.anchors_.shape == (50, 32)
    assert model.coefficients_.shape == (50, 8)
    assert model.bit_objectives_.shape == (8,) and model.spectral_kept_.shape == (8,)
    # the first bit's objective h^T (r S) h is positive: it agrees with the labels
    assert model.bit_objectives_[0] > 0


def test_ksh_needs_single_label_y():
    X, y = _clusters(100)
    with pytest.raises(ValueError, match="supervised"):
        KSH(8).fit(X)
    with pytest.raises(ValueError, match="single-label"):
        KSH(8).fit(X, np.eye(5)[y])
    with pytest.raises(ValueError, match="n_anchors"):
        KSH(8, n_anchors=101).fit(X, y)


# ----------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [LSH, PCAITQ, CCAITQ, KSH])
def test_invalid_n_bits(cls):
    X, y = _clusters(50)
    with pytest.raises(ValueError, match="n_bits"):
        cls(0).fit(X, y)
    with pytest.raises(ValueError, match="n_bits"):
        cls(-3).fit(X, y)
    with pytest.raises(TypeError, match="n_bits"):
        cls(2.5).fit(X, y)


@pytest.mark.parametrize("cls", [PCAITQ, CCAITQ])
def test_too_many_bits_for_features(cls):
    X, y = _clusters(100, d=8)
    with pytest.raises(ValueError, match="n_features=8"):
        cls(9).fit(X, y)


def test_pca_too_many_bits_for_samples():
    X, _ = _clusters(5, d=8)
    with pytest.raises(ValueError, match="n_samples=5"):
        PCAITQ(6).fit(X)


@pytest.mark.parametrize("cls", [LSH, PCAITQ, CCAITQ, KSH])
def test_encode_before_fit(cls):
    X, _ = _clusters(10)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        cls(4).encode(X)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        cls(4).transform(X)


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_wrong_number_of_features(make):
    X, y = _clusters(100, d=32)
    model = make(4).fit(X, y)
    with pytest.raises(ValueError, match="X has 31 features, but .* 32 features"):
        model.encode(X[:, :31])


def test_cca_requires_labels():
    X, y = _clusters(50)
    with pytest.raises(ValueError, match="supervised"):
        CCAITQ(4).fit(X)
    with pytest.raises(ValueError, match="rows"):
        CCAITQ(4).fit(X, y[:-1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        CCAITQ(4).fit(X, np.zeros(50))
    with pytest.raises(ValueError, match="reg"):
        CCAITQ(4, reg=0.0).fit(X, y)


def test_bad_X():
    with pytest.raises(ValueError, match="2-D"):
        LSH(4).fit(np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        LSH(4).fit(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="n_iter"):
        PCAITQ(2, n_iter=-1).fit(np.random.default_rng(0).standard_normal((10, 4)))


def test_float32_input_and_chunked_transform():
    """float32 input is not copied whole to float64; transform runs in 8192-row chunks."""
    X, y = _clusters(9000, d=8)
    model = PCAITQ(4, random_state=0).fit(X[:500], y[:500])
    a = model.transform(X.astype(np.float32))
    b = (X.astype(np.float32).astype(np.float64) - model.mean_) @ model._projection_matrix()
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
