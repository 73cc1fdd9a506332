"""Interactive retrieval explorer (ipywidgets) over the saved codes of every method.

    from hashlib_edu.explorer import RetrievalExplorer
    RetrievalExplorer(load_cifar10()).widget()          # in JupyterLab or Colab

Pick a method and bit length (any ``results/<protocol>/codes/<method>-<bits>.npz``), a query
(by position, or at random, optionally of one class), and top-k or a Hamming radius: the query
and its results appear as an image grid, wrong classes framed red, with the distance under each
image and the precision of the list in the title. The drawing is
:func:`hashlib_edu.plots.plot_retrieval_grid` on :func:`hashlib_edu.index.retrieve`; this
module only wires widgets to them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .data import ImageDataset
from .index import Retrieval, retrieve
from .plots import plot_retrieval_grid
from .results import codes_path, load_codes

__all__ = ["saved_code_files", "RetrievalExplorer"]


def saved_code_files(protocol: str = "cifar10-1k", profile: str | None = None,
                     root: str | Path | None = None) -> dict[str, Path]:
    """``{"<method>-<bits>": path}`` of every saved codes file of ``protocol``, sorted by name."""
    return {p.stem: p for p in sorted(codes_path(protocol, profile=profile, root=root).glob("*.npz"))}


class RetrievalExplorer:
    """Browse the retrieval results of saved codes.

    Args:
        dataset: the images the codes index (``load_cifar10()``; the npz files store indices
            into it).
        protocol: which results folder to read.
        profile, root: where the results live (default: this profile's ``results/``).
    """

    def __init__(self, dataset: ImageDataset, protocol: str = "cifar10-1k",
                 profile: str | None = None, root: str | Path | None = None) -> None:
        self.dataset = dataset
        self.files = saved_code_files(protocol, profile, root)
        if not self.files:
            raise FileNotFoundError(
                f"no saved codes for {protocol!r} (looked in "
                f"{codes_path(protocol, profile=profile, root=root)}); run a "
                "method notebook or `python -m hashlib_edu.reproduce` first.")
        self._cache: dict[str, dict] = {}

    def codes(self, name: str) -> dict:
        """The loaded npz of ``name`` (e.g. ``"dsh-48"``), cached."""
        if name not in self.files:
            raise KeyError(f"no codes named {name!r}; available: {', '.join(self.files)}.")
        if name not in self._cache:
            z = load_codes(self.files[name])
            if z["db_idx"].max(initial=-1) >= len(self.dataset.images):
                raise ValueError(f"{name} indexes images beyond this dataset's "
                                 f"{len(self.dataset.images)}: pass the dataset it was made from.")
            self._cache[name] = z
        return self._cache[name]

    def query(self, name: str, query: int, *, top_k: int | None = 10,
              radius: int | None = None) -> Retrieval:
        """:func:`retrieve` on the saved codes ``name``."""
        z = self.codes(name)
        return retrieve(z["query_codes"], z["db_codes"], query, top_k=top_k, radius=radius,
                        query_labels=z["query_labels"], db_labels=z["db_labels"],
                        max_results=30)

    def show(self, name: str, query: int, *, top_k: int | None = 10,
             radius: int | None = None) -> plt.Figure:
        """Draw one query and its results (the figure the widget shows)."""
        z = self.codes(name)
        result = self.query(name, query, top_k=top_k, radius=radius)
        images = self.dataset.images
        single = z["query_labels"].ndim == 1  # multi-hot labels: frames only, no class names
        return plot_retrieval_grid(images[z["query_idx"][query]], images, result,
                                   class_names=self.dataset.classes if single else None,
                                   query_label=int(z["query_labels"][query]) if single else None,
                                   db_labels=z["db_labels"] if single else None,
                                   db_index=z["db_idx"], title=f"{name}, query {query}")

    def widget(self, seed: int = 0):
        """The interactive explorer (an ``ipywidgets.VBox``; display it or leave it last in a cell)."""
        import ipywidgets as w
        from IPython.display import display

        rng = np.random.default_rng(seed)
        names = list(self.files)
        default = next((n for n in names if n.endswith("-48")), names[0])
        method = w.Dropdown(options=names, value=default, description="codes")
        first = self.codes(default)
        query = w.BoundedIntText(value=0, min=0, max=len(first["query_labels"]) - 1,
                                 description="query #")
        classes = w.Dropdown(options=[("any class", -1)] + [(c, i) for i, c in
                                                           enumerate(self.dataset.classes)],
                             value=-1, description="random of")
        pick = w.Button(description="random query", icon="random")
        mode = w.ToggleButtons(options=["top-k", "radius"], value="top-k", description="list")
        k = w.IntSlider(value=10, min=1, max=30, description="k")
        radius = w.IntSlider(value=2, min=0, max=16, description="radius")
        out = w.Output()

        def render(*_):
            z = self.codes(method.value)
            query.max = len(z["query_labels"]) - 1
            radius.max = int(z["n_bits"])
            with out:
                out.clear_output(wait=True)
                if mode.value == "top-k":
                    fig = self.show(method.value, query.value, top_k=k.value)
                else:
                    fig = self.show(method.value, query.value, radius=radius.value)
                display(fig)
                plt.close(fig)

        def random_query(_):
            labels = self.codes(method.value)["query_labels"]
            if classes.value < 0:
                pool = np.arange(len(labels))
            elif labels.ndim == 2:  # multi-hot: queries that carry the class
                pool = np.flatnonzero(labels[:, classes.value] > 0)
            else:
                pool = np.flatnonzero(labels == classes.value)
            if len(pool) == 0:
                return
            query.value = int(rng.choice(pool))

        pick.on_click(random_query)
        for control in (method, query, mode, k, radius):
            control.observe(render, names="value")
        render()
        return w.VBox([w.HBox([method, query]), w.HBox([classes, pick]),
                       w.HBox([mode, k, radius]), out])
