"""Figures the notebooks share: metric vs bits, PR and P@N curves, histograms, image grids.

Every function draws on a new (or given) matplotlib axis and, with ``save=``, writes the
figure under ``figures/`` (a temporary folder under the ``smoke`` profile).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .index import Retrieval
from .profiles import figure_path

__all__ = ["save_figure", "new_axes", "finish_axes", "plot_metric_vs_bits", "plot_pr_curves", "plot_precision_at_n",
           "plot_histograms", "plot_image_grid", "plot_retrieval_grid"]


def save_figure(fig: plt.Figure, name: str | None, profile: str | None = None) -> Path | None:
    """Save ``fig`` as ``figures/<name>`` (stable name, 120 dpi) and return the path."""
    if not name:
        return None
    path = figure_path(name, profile)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def new_axes(ax=None, figsize=(5, 3.6)):
    """``(figure, axes)``: ``ax`` and its figure, or a new figure of ``figsize`` when ``ax`` is
    ``None`` (how every plot here starts)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    return ax.figure, ax


def finish_axes(fig, ax, xlabel: str, ylabel: str, title: str, save: str | None, grid: bool = True):
    """Labels, title, grid, legend, and the optional save: the common end of every plot."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if grid:
        ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, save)
    return ax


def plot_metric_vs_bits(series: Mapping[str, Mapping[int, float]], ylabel: str = "mAP",
                        paper: Mapping[str, Mapping[int, float]] | None = None, title: str = "",
                        ax=None, save: str | None = None):
    """Lines of a metric against code length; ``paper`` series dashed and labelled "(paper)".

    Args:
        series: ``{label: {bits: value}}`` measured here.
        paper: ``{label: {bits: value}}`` numbers quoted from a paper.
    """
    fig, ax = new_axes(ax)
    for i, (label, values) in enumerate(series.items()):
        bits = sorted(values)
        ax.plot(bits, [values[b] for b in bits], "o-", color=f"C{i}", label=f"{label} (ours)")
        if paper and label in paper:
            pb = sorted(paper[label])
            ax.plot(pb, [paper[label][b] for b in pb], "s--", color=f"C{i}", alpha=0.6,
                    label=f"{label} (paper)")
    for j, (label, values) in enumerate((paper or {}).items()):
        if label not in series:
            pb = sorted(values)
            ax.plot(pb, [values[b] for b in pb], "s--", color=f"C{len(series) + j}", alpha=0.6,
                    label=f"{label} (paper)")
    return finish_axes(fig, ax, "bits", ylabel, title, save)


def plot_pr_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "",
                   ax=None, save: str | None = None):
    """Precision-recall curves, ``{label: (precision, recall)}`` (one point per Hamming radius)."""
    fig, ax = new_axes(ax)
    for label, (precision, recall) in curves.items():
        ax.plot(recall, precision, ".-", label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    return finish_axes(fig, ax, "recall", "precision", title, save)


def plot_precision_at_n(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
                        title: str = "", ax=None, save: str | None = None):
    """Precision of the top N against N, ``{label: (ns, precisions)}``."""
    fig, ax = new_axes(ax)
    for label, (ns, precision) in curves.items():
        ax.plot(ns, precision, "-", label=label)
    ax.set_ylim(0, 1)
    return finish_axes(fig, ax, "number of retrieved images N", "precision@N", title, save)


def plot_histograms(values: Mapping[str, np.ndarray], bins: int | Sequence[float] = 60,
                    xlabel: str = "", title: str = "", density: bool = True, ax=None,
                    save: str | None = None):
    """Overlaid normalized histograms, ``{label: values}``."""
    fig, ax = new_axes(ax)
    for label, v in values.items():
        ax.hist(np.ravel(v), bins=bins, density=density, alpha=0.5, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if density else "count")
    ax.set_title(title)
    ax.legend(fontsize=8)
    save_figure(fig, save)
    return ax


def plot_image_grid(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 10,
                    frame_colors: Sequence[str | None] | None = None, size: float = 1.1,
                    save: str | None = None) -> plt.Figure:
    """A grid of ``(n, h, w, 3)`` uint8 images with optional titles and coloured frames."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.15))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(images[i])
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
        color = frame_colors[i] if frame_colors is not None else None
        for spine in ax.spines.values():
            spine.set_visible(color is not None)
            if color is not None:
                spine.set_edgecolor(color)
                spine.set_linewidth(3)
    fig.tight_layout()
    save_figure(fig, save)
    return fig


def plot_retrieval_grid(query_image: np.ndarray, db_images: np.ndarray, result: Retrieval,
                        class_names: Sequence[str] | None = None, query_label: int | None = None,
                        db_labels: np.ndarray | None = None, title: str = "",
                        db_index: np.ndarray | None = None,
                        save: str | None = None) -> plt.Figure:
    """One query and its result list in a row: the query first (blue frame), then the
    results with their Hamming distance underneath, **wrong** results framed red and right
    ones green; the title gives the precision of the list.

    Args:
        query_image: ``(h, w, 3)`` uint8.
        db_images: ``(nd, h, w, 3)`` uint8, the database images (indexed by
            ``result.indices``), or every image of a dataset together with ``db_index``.
        result: from :func:`hashlib_edu.index.retrieve` (with labels, for the frames).
        class_names: names for the class ids in the titles (single-label data).
        query_label, db_labels: class ids, to print each image's class (``db_labels`` per
            database position, like ``result.indices``).
        db_index: position in ``db_images`` of each database item (e.g. a codes file's
            ``db_idx`` into the whole dataset), so the database need not be copied.
    """
    rows = result.indices if db_index is None else np.asarray(db_index)[result.indices]
    images = np.concatenate([np.asarray(query_image)[None], np.asarray(db_images)[rows]])

    def name(label) -> str:
        if label is None:
            return ""
        label = int(label)
        return class_names[label] if class_names is not None else str(label)

    titles = [f"query\n{name(query_label)}"]
    colors: list[str | None] = ["tab:blue"]
    for rank, (i, dist) in enumerate(zip(result.indices, result.distances, strict=True)):
        label = name(db_labels[i]) if db_labels is not None else ""
        titles.append(f"{label}\nd={int(dist)}")
        if result.relevant is None:
            colors.append(None)
        else:
            colors.append("tab:green" if result.relevant[rank] else "red")
    fig = plot_image_grid(images, titles, ncols=len(images), frame_colors=colors)
    what = (f"top {result.k_or_radius}" if result.mode == "top_k"
            else f"radius {result.k_or_radius}: {result.n_within} within")
    precision = "n/a" if result.precision is None else f"{result.precision:.0%}"
    # above the image titles: a fixed gap in inches, whatever the figure's height
    fig.suptitle(f"{title + ' - ' if title else ''}{what}, precision {precision}", fontsize=9,
                 y=1 + 0.3 / fig.get_figheight())
    save_figure(fig, save)
    return fig
