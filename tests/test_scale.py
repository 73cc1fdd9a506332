"""hashlib_edu.scale (notebook 08): the augmented-code database and its cache, synthetic codes
with the learned bit statistics, the sharded index; and the exercise checkers of notebook 08
(accept the reference, reject typical mistakes with their hint, "Not yet implemented")."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
import torch

from hashlib_edu import scale
from hashlib_edu.data import load_protocol
from hashlib_edu.exercises.scale import check_probe_count, check_recall_at_k, check_substring_keys
from hashlib_edu.index import HammingIndex, multi_index_probes, recall_at_k, substring_keys
from hashlib_edu.profiles import output_root


@pytest.fixture(scope="module")
def smoke_setup(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data)
    model, info = scale.trained_model(data, bits=16, progress=False)
    return data, model, info


def test_trained_model_and_augmented_database_cache(smoke_setup):
    data, model, info = smoke_setup
    assert info["bits"] == 16 and info["method"] == "cnnbh" and not model.training
    n_db = len(data.db_idx)
    db = scale.augmented_database(model, data, n_codes=2 * n_db + 1, progress=False)
    assert len(db) == 3 * n_db  # whole rounds: the originals, then two augmented views
    assert db.codes.shape == (3 * n_db, 2) and db.codes.dtype == np.uint8
    assert db.view.tolist() == [0] * n_db + [1] * n_db + [2] * n_db
    np.testing.assert_array_equal(db.labels, np.tile(data.part_labels("database"), 3))
    np.testing.assert_array_equal(db.source[:n_db], data.db_idx)
    assert not db.synthetic.any() and db.info["views"] == 3 and db.info["encode_seconds"] > 0
    # view 0 is the images as they are, encoded like the queries
    np.testing.assert_array_equal(db.codes[:n_db], scale.query_codes(model, data, "database"))
    # augmented views keep the codes close
    differ = np.unpackbits(db.codes[:n_db] ^ db.codes[n_db:2 * n_db], axis=1).sum(1)
    assert differ.mean() < 8
    cached = list((output_root("smoke") / "cache" / "scale").glob("codes-*.npz"))
    assert len(cached) == 1
    again = scale.augmented_database(model, data, n_codes=2 * n_db + 1, progress=False)
    np.testing.assert_array_equal(again.codes, db.codes)
    assert again.info == db.info  # loaded: the cost of the first call is kept


def test_augment_is_seeded_and_shaped():
    images = torch.randint(0, 256, (6, 32, 32, 3), dtype=torch.uint8)
    a = scale.augment(images, torch.Generator().manual_seed(1))
    b = scale.augment(images, torch.Generator().manual_seed(1))
    c = scale.augment(images, torch.Generator().manual_seed(2))
    assert a.shape == (6, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    plain = scale.augment(images, torch.Generator(), colour=0.0, padding=0)
    assert plain.shape == a.shape  # only flips left: each image or its mirror


def test_synthetic_codes_match_the_class_bit_statistics():
    rng = np.random.default_rng(0)
    p = np.array([[0.9] * 8 + [0.1] * 8, [0.2] * 16])  # two classes, 16 bits
    labels = rng.integers(0, 2, 20_000)
    bits = (rng.random((20_000, 16)) < p[labels]).astype(np.uint8)
    learned = scale.CodeDatabase(np.packbits(bits, axis=1), labels, np.zeros(20_000, np.int16),
                                 np.arange(20_000), 16)
    syn = scale.synthetic_codes(learned, 30_000, seed=3, chunk=7_000)
    assert len(syn) == 30_000 and syn.synthetic.all() and (syn.source == -1).all()
    drawn = np.unpackbits(syn.codes, axis=1, count=16)
    for c in (0, 1):
        np.testing.assert_allclose(drawn[syn.labels == c].mean(0), p[c], atol=0.02)
    assert abs((syn.labels == 1).mean() - (labels == 1).mean()) < 0.02
    both = learned.concat(syn)
    assert len(both) == 50_000 and both.synthetic.sum() == 30_000
    assert len(both.take(slice(0, 10))) == 10


def test_code_database_round_trip(tmp_path):
    db = scale.CodeDatabase(np.arange(12, dtype=np.uint8).reshape(6, 2), np.arange(6),
                            np.zeros(6, np.int16), np.arange(6), 16, {"encode_seconds": 1.5})
    db.save(tmp_path / "db.npz")
    back = scale.CodeDatabase.load(tmp_path / "db.npz")
    np.testing.assert_array_equal(back.codes, db.codes)
    assert back.bits == 16 and back.info == {"encode_seconds": 1.5}
    assert [p.name for p in tmp_path.iterdir()] == ["db.npz"]  # no temporary file left
    with pytest.raises(ValueError, match="cannot join"):
        db.concat(scale.CodeDatabase(db.codes, db.labels, db.view, db.source, 12))


def test_sharded_index_equals_one_flat_index():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    codes = np.packbits(rng.integers(0, 2, (5000, 48)), axis=1)
    queries = codes[:40]
    flat = HammingIndex(48, backend="faiss")
    flat.add(codes)
    ref_dist, _ = flat.search(queries, 10)
    for n_shards in (1, 3):
        shards = scale.sharded_flat_index(codes, 48, n_shards)
        assert shards.ntotal == 5000
        dist, idx = shards.search(queries, 10)
        np.testing.assert_array_equal(dist, ref_dist)
        assert (idx[:, 0] == np.arange(40)).all()  # ids count across the shards


def test_best_time_and_sizes():
    seconds, out = scale.best_time(lambda: 7, repeat=2)
    assert out == 7 and seconds >= 0
    assert scale.scale_sizes("quick")["learned"] >= 1_000_000
    assert scale.scale_sizes("quick")["total"] == 10_000_000
    assert scale.scale_sizes("smoke")["total"] <= 100_000


# --------------------------------------------------------------------------- exercise checkers


def not_yet(*args):
    raise NotImplementedError


def test_check_substring_keys(capsys):
    assert check_substring_keys(substring_keys)
    assert "Well done" in capsys.readouterr().out

    def reversed_bits(bits, tables):
        return substring_keys(bits[:, ::-1], tables)[:, ::-1]

    def popcounts(bits, tables):
        return np.stack([p.sum(1) for p in np.array_split(bits, tables, axis=1)], 1)

    def transposed(bits, tables):
        return substring_keys(bits, tables).T

    def equal_sizes(bits, tables):
        s = bits.shape[1] // tables
        return substring_keys(bits[:, :s * tables], tables)

    for wrong, hint in [(reversed_bits, "in reverse"), (popcounts, "numbers of ones"),
                        (transposed, "transposed"), (equal_sizes, "one bit more")]:
        assert not check_substring_keys(wrong)
        assert hint in capsys.readouterr().out, wrong.__name__
    assert not check_substring_keys(not_yet)
    assert capsys.readouterr().out.startswith("Not yet implemented: substring_keys")


def test_check_probe_count(capsys):
    assert check_probe_count(multi_index_probes)

    def loop_version(n_bits, tables, radius):
        sizes = [n_bits // tables + (j < n_bits % tables) for j in range(tables)]
        return sum(comb(s, i) for s in sizes for i in range(radius // tables + 1))

    assert check_probe_count(loop_version)
    capsys.readouterr()
    wrong = {
        "not r": lambda b, m, r: m * sum(comb(b // m, i) for i in range(r + 1)),
        "every one of the m tables": lambda b, m, r: sum(comb(b // m, i)
                                                         for i in range(r // m + 1)),
        "round r / m down": lambda b, m, r: m * sum(comb(b // m, i)
                                                    for i in range(-(-r // m) + 1)),
        "not only those at": lambda b, m, r: m * comb(b // m, r // m),
        "whole code": lambda b, m, r: sum(comb(b, i) for i in range(r + 1)),
    }
    for hint, fn in wrong.items():
        assert not check_probe_count(fn)
        assert hint in capsys.readouterr().out, hint
    assert not check_probe_count(not_yet)
    assert "Not yet implemented" in capsys.readouterr().out


def test_check_recall_at_k(capsys):
    assert check_recall_at_k(lambda fi, fd, ei, ed: recall_at_k(fd, ed))
    assert "Well done" in capsys.readouterr().out

    def by_ids(fi, fd, ei, ed):
        return np.mean([np.intersect1d(a[a >= 0], b).size / ei.shape[1]
                        for a, b in zip(fi, ei, strict=True)])

    def strict(fi, fd, ei, ed):
        return ((fd < ed[:, -1:]) & (fi >= 0)).sum(1).mean() / ei.shape[1]

    def per_found(fi, fd, ei, ed):
        return np.mean([((d <= e[-1]) & (i >= 0)).sum() / (i >= 0).sum()
                        for i, d, e in zip(fi, fd, ed, strict=True)])

    for wrong, hint in [(by_ids, "compares indices"), (strict, "use <="),
                        (per_found, "divide by k")]:
        assert not check_recall_at_k(wrong)
        assert hint in capsys.readouterr().out, wrong.__name__
    assert not check_recall_at_k(not_yet)
    assert "Not yet implemented" in capsys.readouterr().out
    assert not check_recall_at_k(lambda *a: "high")
    assert "return one number" in capsys.readouterr().out
