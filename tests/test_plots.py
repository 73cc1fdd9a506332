"""Figures: the retrieval grid frames wrong results red and prints distances."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from hashlib_edu.index import retrieve  # noqa: E402
from hashlib_edu.plots import plot_retrieval_grid  # noqa: E402


def test_retrieval_grid_frames_and_titles():
    q = np.array([[1, 1, 1, 1]], np.int8)
    db = np.array([[1, 1, 1, 1], [1, 1, 1, -1], [-1, -1, 1, 1]], np.int8)
    images = np.zeros((3, 8, 8, 3), np.uint8)
    r = retrieve(q, db, 0, top_k=3, query_labels=np.array([0]), db_labels=np.array([0, 1, 0]))
    fig = plot_retrieval_grid(images[0], images, r, class_names=["cat", "dog"], query_label=0,
                              db_labels=np.array([0, 1, 0]))
    axes = fig.axes
    assert len(axes) == 4
    colors = [matplotlib.colors.to_hex(ax.spines["left"].get_edgecolor()) for ax in axes]
    assert colors[2] == matplotlib.colors.to_hex("red")  # item 1 is a dog: wrong
    assert colors[1] == colors[3] == matplotlib.colors.to_hex("tab:green")
    assert [ax.get_title() for ax in axes[1:]] == ["cat\nd=0", "dog\nd=1", "cat\nd=2"]
    assert "precision 67%" in fig._suptitle.get_text()


def test_retrieval_grid_with_db_index():
    q = np.array([[1, 1]], np.int8)
    db = np.array([[1, 1], [-1, -1]], np.int8)
    images = np.arange(5 * 2 * 2 * 3, dtype=np.uint8).reshape(5, 2, 2, 3)
    r = retrieve(q, db, 0, top_k=2)
    fig = plot_retrieval_grid(images[0], images, r, db_index=np.array([4, 2]))
    shown = [ax.images[0].get_array() for ax in fig.axes[1:]]
    assert np.array_equal(shown[0], images[4]) and np.array_equal(shown[1], images[2])
