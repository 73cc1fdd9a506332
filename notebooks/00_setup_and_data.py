# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Set-up and data
#
# **Papers whose protocols this notebook sets up:**
#
# * `cifar10-1k`: Jinma Guo and Jianmin Li, "CNN Based Hashing for Image Retrieval",
#   arXiv:1509.01354, 2015. <https://arxiv.org/abs/1509.01354>
# * `cifar10-dsh`: Haomiao Liu, Ruiping Wang, Shiguang Shan, Xilin Chen, "Deep Supervised
#   Hashing for Fast Image Retrieval", CVPR 2016.
#   <https://openaccess.thecvf.com/content_cvpr_2016/html/Liu_Deep_Supervised_Hashing_CVPR_2016_paper.html>
#
# This course teaches **learning to hash** for image retrieval: every image becomes a short
# binary code (say 48 bits), and "find similar images" becomes "find codes at a small Hamming
# distance". Notebooks 03–06 each reproduce the key tables and figures of one paper on
# CIFAR-10 and say plainly where our numbers differ from the paper's and why; 00–02 set up the
# data, the metrics and the classic baselines, 07 puts the methods side by side and 08 searches
# a million codes.
#
# This first notebook checks the set-up, explains the **profiles** and loads **CIFAR-10**.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/hashlib-edu/hashlib_edu/blob/main/notebooks/00_setup_and_data.ipynb)

# %%
# Colab only: fetch the course and install it (this cell does nothing elsewhere).
import os
import sys

if "google.colab" in sys.modules:
    COURSE = "/content/hashlib_edu"  # wiped when the runtime ends, trained models included
    # To keep models and results across sessions, uncomment this line (Google Drive):
    # from google.colab import drive; drive.mount("/content/drive"); COURSE = "/content/drive/MyDrive/hashlib_edu"
    # !test -d {COURSE} || git clone -q --depth 1 https://github.com/hashlib-edu/hashlib_edu.git {COURSE}
    # !pip -q install -e {COURSE}
    os.environ["HASHLIB_EDU_ROOT"] = COURSE  # checkpoints/, results/, figures/ and cache/ go here
    sys.path.insert(0, COURSE)
    # %cd {COURSE}/notebooks

# %% tags=["parameters"]
PROFILE = None  # "smoke" | "quick" | "paper"; None: $HASHLIB_EDU_PROFILE, else "quick" ("paper" is opt-in)
SEED = 0

# %% [markdown]
# ## Profiles
#
# | profile | for | what it does |
# |---|---|---|
# | `smoke` | CI | tiny subsets, one epoch: checks that every cell runs, in seconds; writes to a temporary folder |
# | `quick` | a laptop CPU | the real protocols with short, modern training schedules: minutes per notebook |
# | `paper` | a GPU (Colab) | the paper's schedule |
#
# Choose with the environment variable `HASHLIB_EDU_PROFILE`, or set `PROFILE` in the cell above.

# %%
# NBVAL_IGNORE_OUTPUT
import numpy as np
import pandas as pd
import torch

import hashlib_edu
from hashlib_edu.data import CIFAR10_CLASSES, PROTOCOLS, load_cifar10, split
from hashlib_edu.plots import plot_image_grid
from hashlib_edu.profiles import use_profile
from hashlib_edu.training import select_device

PROFILE = use_profile(PROFILE)
print(f"hashlib_edu {hashlib_edu.__version__}, torch {torch.__version__}")
where = "a temporary folder" if PROFILE == "smoke" else "figures/ in the course folder"
print(f"profile: {PROFILE}, device: {select_device()}, figures go to: {where}")

# %% [markdown]
# ## CIFAR-10
#
# 60,000 colour images of 32×32 pixels in 10 classes. `load_cifar10()` looks under
# `$HASHLIB_EDU_DATA` (else `~/.cache/hashlib_edu/data`) for, in order: its own decoded cache,
# torchvision's official `cifar-10-batches-py`, or an image-folder copy (`train/<class>/*.jpg`,
# `test/<class>/*.jpg`); with none of these it downloads the official set (needs internet).
# The first load decodes and caches; later loads take well under two seconds.
#
# All sources give the **same canonical order** (training images first, grouped by class,
# original order within a class; then the test images), so a protocol split is identical
# whichever source you used. The `source` line below says which one this run used: the
# course's offline copy is JPEG, which is lossy, so pixels differ slightly from the official set.

# %%
# NBVAL_IGNORE_OUTPUT
import time

start = time.perf_counter()
cifar = load_cifar10()
print(cifar)
print(f"source: {cifar.source}")
print(f"loaded in {time.perf_counter() - start:.2f} s; images {cifar.images.shape} "
      f"{cifar.images.dtype}, labels {cifar.labels.shape}")
print("channel means:", np.round(cifar.images.reshape(-1, 3).mean(0) / 255, 3))

# %%
# NBVAL_IGNORE_OUTPUT
rng = np.random.default_rng(SEED)
picks = np.concatenate([rng.choice(np.flatnonzero(cifar.labels == c), 8, replace=False)
                        for c in range(10)])
fig = plot_image_grid(cifar.images[picks], ncols=8, size=0.9,
                      titles=[CIFAR10_CLASSES[cifar.labels[i]] if j % 8 == 0 else ""
                              for j, i in enumerate(picks)],
                      save="cifar10_examples.png")

# %% [markdown]
# ## Retrieval protocols
#
# A retrieval experiment needs three sets: **queries** (what we search with), a **database**
# (what we search in) and a **training** set (what the hash function learns from). The papers
# of this course use two protocols:

# %%
for name, description in PROTOCOLS.items():
    print(f"{name}: {description}")

# %%
# NBVAL_IGNORE_OUTPUT
def per_class(idx) -> str:
    """The smallest and largest number of images of one class among ``idx``."""
    counts = np.bincount(cifar.labels[idx], minlength=len(CIFAR10_CLASSES))
    return f"{counts.min()}–{counts.max()}"


rows = []
for name in PROTOCOLS:
    q, t, db = split(cifar.labels, name, seed=SEED)
    rows.append({"protocol": name, "queries": len(q), "training": len(t), "database": len(db),
                 "queries per class (min–max)": per_class(q),
                 "training per class (min–max)": per_class(t),
                 "train ⊂ database": bool(np.isin(t, db).all()),
                 "query ∩ database": int(np.isin(q, db).sum())})
pd.DataFrame(rows).set_index("protocol")

# %% [markdown]
# ## What to notice
#
# * In both protocols the training images are **inside** the database (in `cifar10-dsh` they
#   *are* the database): retrieving them is easy (the network has seen them). The protocols
#   differ in how many queries and training images they have and in how much of the database
#   the network never saw, which is one reason numbers under different protocols are not
#   comparable.
# * The split is a pure function of the labels and the seed: change `SEED` and you get another
#   split; keep it and everyone gets the same one.
#
# ## Exercises
#
# 1. Check that the `cifar10-1k` split of seed 0 has exactly 100 queries of every class.
# 2. How many database images share the class of a given query? What mAP would a random
#    ranking give, roughly? (Notebook 01 answers this.)
