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
# # 06 · OrthoHash: one cosine-margin loss toward orthogonal class targets
#
# **Paper:** Jiun Tian Hoe, Kam Woh Ng, Tianyu Zhang, Chee Seng Chan, Yi-Zhe Song, Tao Xiang,
# "One Loss for All: Deep Hashing with a Single Cosine Similarity based Learning Objective",
# NeurIPS 2021.
# <https://proceedings.neurips.cc/paper/2021/hash/cbcb58ac2e496207586df2854b17995f-Abstract.html>
# (arXiv:2109.14449). Algorithms 1–3, the ablation tables and Figs. 1–3 below are those of its
# supplementary material.
#
# Deep hashing methods usually add up several losses: a pairwise or triplet similarity term, a
# quantization term that pulls outputs toward $\pm 1$, a bit-balance term, sometimes a
# classifier. Each comes with a weight to tune. OrthoHash replaces them all by **one**
# classification loss: give every class $c$ a fixed binary *target* code
# $o_c \in \{-1, +1\}^K$, chosen so that the targets are far apart (nearly orthogonal), and
# train the network with a softmax cross-entropy whose logits are the **cosines** between the
# network's continuous code $v$ and the targets, with a margin. Below we show why that one
# loss also takes care of quantization and of Hamming-distance retrieval, reproduce the
# supplementary's target analysis (Fig. 1) exactly, train OrthoHash on `cifar10-1k` with the
# course's small backbone, and run its ablations (targets, margin, scale, loss, BatchNorm).
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/hashlib-edu/hashlib_edu/blob/main/notebooks/06_orthohash.ipynb)

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
BITS = [16, 32, 48, 64]
EPOCHS = None  # None: the profile's budget in hashlib_edu.methods.orthohash (smoke 1, quick 60, paper 100)
ABLATION_BITS = 32
ABLATION_EPOCHS = None  # None: smoke 1, quick 8, paper 100
BACKBONE = None  # None: "alexnet" (ImageNet-pretrained, needs internet) under paper, else the small one
SEED = 0
TRAIN = False  # True: train every model here; False: load the course's trained models if published

# %%
# NBVAL_IGNORE_OUTPUT

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from sklearn.manifold import TSNE

from hashlib_edu import (
    CIFAR10_CLASSES,
    BackboneWithCodeLayer,
    Experiment,
    choose_backbone,
    codes_path,
    encode,
    evaluate_codes,
    load_codes,
    load_protocol,
    load_results,
    run,
    seed_everything,
    select_device,
    training_plan,
    use_profile,
    use_training,
    validation_protocol,
)
from hashlib_edu.analysis import intra_inter_distances, recompute_bn_statistics, separability
from hashlib_edu.exercises import check_maxhd_targets, check_orthohash_loss
from hashlib_edu.methods.orthohash import (
    ORTHOHASH_SETTINGS,
    OrthoHashLoss,
    bernoulli_targets,
    class_hash_centers,
    expected_hamming_distance,
    make_targets,
    min_hamming_distance,
    orthogonality_error,
    quantization_error_identity,
)
from hashlib_edu.plots import plot_metric_vs_bits, save_figure

PROFILE = use_profile(PROFILE)
choice = choose_backbone(BACKBONE, PROFILE)
BACKBONE, REGIME = choice
EPOCHS = EPOCHS or Experiment("orthohash", 16, profile=PROFILE, **choice.fields).epochs
ABLATION_EPOCHS = ABLATION_EPOCHS or {"smoke": 1, "quick": 8, "paper": 100}[PROFILE]
DEVICE = select_device()
use_training(TRAIN)
N_CLASSES = 10
data = load_protocol("cifar10-1k", PROFILE, seed=SEED)
val_data = validation_protocol(data, seed=SEED)  # the ablations run here, never on the queries
print(f"profile {PROFILE}: headline {EPOCHS} epochs, ablations {ABLATION_EPOCHS} epochs at "
      f"{ABLATION_BITS} bits on the validation split, device {DEVICE}; split sizes "
      f"{data.sizes()}, validation {val_data.sizes()}")
print(choice.describe())
print(f"data source: {data.dataset.source}")

# %% [markdown]
# ## The method
#
# A backbone maps an image to features $f$; a linear *latent* layer gives the continuous code
# $v = W f + c \in \mathbb{R}^K$ (in the "+BN" variant, $v = \operatorname{BN}(W f + c)$); the
# hash code is $b = \operatorname{sign}(v)$. Each class $c$ has a fixed target
# $o_c \in \{-1,+1\}^K$, so $\|o_c\| = \sqrt{K}$ and
#
# $$\cos(v, o_c) = \frac{v^\top o_c}{\|v\|\,\sqrt{K}} .$$
#
# **Logits with a margin.** For an item with label vector $y \in \{0,1\}^C$ and a scale $s$
# (default $\sqrt{K}$) and margin $m$ (default 0.2):
#
# $$z_c = s\,\big(\cos(v, o_c) - m\,y_c\big) \qquad \text{(OrthoCos, a cosine margin as in CosFace)},$$
#
# $$z_c = s\,\cos\big(\theta_c + m\,y_c\big),\quad \theta_c = \arccos \cos(v, o_c)
#   \qquad \text{(OrthoArc, an angular margin as in ArcFace)}.$$
#
# The margin lowers the logit of the true class only, so the cosine to the own target must
# beat every other cosine by $m$ before the loss relaxes: the classes are pulled into tighter
# cones around their targets.
#
# **Loss.** Softmax cross-entropy toward $\tilde y = y / |y|$, $|y| = \sum_c y_c$ (one-hot for
# single-label data; a label-smoothed target for multi-label data, Algorithm 1):
#
# $$L = -\frac{1}{N} \sum_{n=1}^{N} \sum_{c=1}^{C} \tilde y_{nc}
#       \log \frac{e^{z_{nc}}}{\sum_{c'} e^{z_{nc'}}} .$$
#
# ### Why a classification loss toward fixed targets is enough
#
# Three identities, each a line of algebra ($b, o \in \{-1,+1\}^K$, $\hat v = \sqrt{K}\, v/\|v\|$,
# so $\|\hat v\| = \|b\| = \|o\| = \sqrt{K}$):
#
# 1. **Quantization error is a cosine** (supplementary, Eq. 3). With $b = \operatorname{sign}(v)$:
#    $\|\hat v - b\|^2 = \|\hat v\|^2 + \|b\|^2 - 2\,\hat v^\top b = 2K\,(1 - \cos(v, b))$.
#    Retrieval only uses directions, so a high cosine *is* a small quantization error.
# 2. **Hamming distance is a cosine.** If $b$ and $o$ differ in $d$ bits, $b^\top o = (K - d) - d$,
#    hence $d(b, o) = \tfrac{K}{2}\,(1 - \cos(b, o))$.
# 3. **A high cosine to the target fixes the code.** $\|\hat v - o\|^2 = 2K(1 - \cos(v, o))$ as in 1.
#    On every bit where $\operatorname{sign}(v_k) \ne o_k$, $\hat v_k$ and $o_k = \pm 1$ have
#    opposite signs, so $(\hat v_k - o_k)^2 \ge 1$. Summing over those bits:
#
# $$d\big(\operatorname{sign}(v), o\big) \;\le\; \|\hat v - o\|^2 \;=\; 2K\,\big(1 - \cos(v, o)\big).$$
#
# So as the loss pushes $\cos(v, o_y) \to 1$, the code $\operatorname{sign}(v)$ becomes the target
# $o_y$ (not a single wrong bit once $\cos(v, o_y) > 1 - \frac{1}{2K}$), and its quantization
# error vanishes: no separate quantization term is needed. Items of one class then share
# (nearly) one code, items of two classes sit near two targets that are about $K/2$ bits apart,
# and ranking by Hamming distance puts the same class first: no pairwise loss is needed either.
#
# The three statements, checked numerically on random vectors (fixed seed):

# %%
rng = np.random.default_rng(SEED)
K = 64
v = torch.from_numpy(rng.standard_normal((1000, K)))
direct, via_cosine = quantization_error_identity(v)
print(f"1. max |‖v̂ − b‖² − 2K(1 − cos(v, b))| over 1,000 random v: "
      f"{float((direct - via_cosine).abs().max()):.4f}")

o = bernoulli_targets(1, K, seed=SEED)[0].double()
b = torch.where(v >= 0, 1.0, -1.0).double()
d = (b != o).sum(dim=1)
cos_bo = F.cosine_similarity(b, o[None], dim=1)
print(f"2. max |d(b, o) − K(1 − cos(b, o))/2| over the same codes: "
      f"{float((d - K * (1 - cos_bo) / 2).abs().max()):.4f}")

print("3. codes of v = o + noise: cosine, wrong bits, and the bound 2K(1 − cos)")
rows = []
for noise in (0.25, 0.5, 1.0, 2.0):
    vn = o[None] + noise * torch.from_numpy(rng.standard_normal((1000, K)))
    cos_vo = F.cosine_similarity(vn, o[None], dim=1)
    wrong = (torch.where(vn >= 0, 1.0, -1.0) != o).sum(dim=1).double()
    bound = 2 * K * (1 - cos_vo)
    rows.append({"noise σ": noise, "mean cos(v, o)": f"{cos_vo.mean():.3f}",
                 "mean wrong bits": f"{wrong.mean():.2f}", "mean bound": f"{bound.mean():.2f}",
                 "bound holds for all 1,000": bool((wrong <= bound + 1e-9).all())})
print(pd.DataFrame(rows).to_string(index=False))

# %% [markdown]
# ## The few lines that matter
#
# `hashlib_edu.methods.orthohash.OrthoHashLoss` holds the targets (a buffer, never trained) and computes
# the loss; `BackboneWithCodeLayer(k, latent_bn=True)` is the course's shared small backbone (the CNNBH conv
# stack of notebook 03) with a $k$-unit latent layer and BatchNorm on it. Here is one forward
# pass on a tiny batch, and Algorithm 1 of the supplementary written out line by line against
# the package's loss:

# %%
seed_everything(SEED)
loss_fn = OrthoHashLoss(32, N_CLASSES, margin=0.2, scale=None, targets="bernoulli", seed=SEED)
print(loss_fn)
model = BackboneWithCodeLayer(32, latent_bn=True)
x = torch.from_numpy(np.random.default_rng(SEED).standard_normal((8, 3, 32, 32))).float()
y = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
v = model(x)  # continuous codes, (n, K)
loss = loss_fn(v, y)  # training: one classification loss
codes = loss_fn.codes(v)  # retrieval: sign(v)
print("targets:", tuple(loss_fn.targets.shape), "v:", tuple(v.shape), "loss:", tuple(loss.shape),
      "codes:", codes.shape, "values:", sorted(np.unique(codes).tolist()))

# Algorithm 1, literally
v_norm = v / v.norm(p=2, dim=1, keepdim=True)
o_norm = loss_fn.targets / loss_fn.targets.norm(p=2, dim=1, keepdim=True)
cs_logits = v_norm @ o_norm.T  # (n, C) cosines
y_vec = F.one_hot(y, N_CLASSES).float()
margin_logits = loss_fn.scale * (cs_logits - y_vec * loss_fn.margin)
by_hand = -(y_vec * F.log_softmax(margin_logits, dim=1)).sum(dim=1).mean()
print("Algorithm 1 by hand equals OrthoHashLoss:", bool(torch.allclose(by_hand, loss)))

# %% [markdown]
# ## Targets, and why their minimum distance matters
#
# Retrieval ranks by Hamming distance, so two classes whose targets are close are easy to
# confuse: what matters is the **minimum** distance between any two targets. Three generators
# (`hashlib_edu.methods.orthohash`):
#
# * **Bernoulli**: every bit $\pm 1$ with probability $\tfrac12$ (the paper's default). Two such
#   codes differ in $\mathbb{E}[D] = 2K\,p(1-p) = K/2$ bits on average (supplementary, Eqs. 4–6:
#   two bits differ with probability $p(1-p) + (1-p)p$, and the $K$ bits add up) — but the
#   *minimum* over $\binom{C}{2}$ pairs is well below $K/2$, and may be 0 at small $K$.
# * **Hadamard**: rows of a $K \times K$ Hadamard matrix ($HH^\top = K I$), pairwise exactly
#   $K/2$ apart, when $2K \ge C$ (rows of $-H$ fill in for $K < C \le 2K$); Bernoulli otherwise.
# * **MaxHD** (Algorithm 3): greedy rejection sampling; a candidate is accepted only if it is at
#   least $\text{currdist}\cdot K$ bits from every accepted target, and the threshold shrinks by
#   0.01 (from 0.61) after every 10,000 rejections.
#
# First the expectation, formula against simulation (fixed seed):

# %%
rng = np.random.default_rng(SEED)
K, PAIRS = 64, 20_000
rows = []
for p in (0.1, 0.25, 0.5):
    a, b2 = rng.random((PAIRS, K)) < p, rng.random((PAIRS, K)) < p
    rows.append({"p": p, "2Kp(1−p)": f"{expected_hamming_distance(K, p):.2f}",
                 f"simulated, {PAIRS:,} pairs": f"{(a != b2).sum(axis=1).mean():.2f}"})
print(f"K = {K}:")
print(pd.DataFrame(rows).to_string(index=False))

# %% [markdown]
# ### Fig. 1: minimum Hamming distance between any two class targets
#
# Pure computation, deterministic with the seed. MaxHD needs at most a fraction of a second per
# point here (the package packs codes into 64-bit words). A missing MaxHD point means
# Algorithm 3 gives up (its threshold would drop below 0.2): at $K = 4$ there are only 16
# codes for 100 classes.

# %%
KS = [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
min_dist = {}
for C in (10, 100):
    for name in ("bernoulli", "hadamard", "maxhd"):
        for K in KS:
            try:
                min_dist[C, name, K] = min_hamming_distance(make_targets(name, C, K, seed=SEED))
            except ValueError:  # MaxHD: impossible at this (C, K)
                min_dist[C, name, K] = None
table = pd.DataFrame({f"C={C} {name}": [min_dist.get((C, name, K)) for K in KS]
                      for C in (10, 100) for name in ("bernoulli", "hadamard", "maxhd")},
                     index=pd.Index(KS, name="K")).astype("Int64")
table["K/2"] = [K // 2 for K in KS]
print(table.to_string())

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, C in zip(axes, (10, 100), strict=True):
    for name, marker in (("bernoulli", "o"), ("hadamard", "s"), ("maxhd", "^")):
        ks = [K for K in KS if min_dist.get((C, name, K)) is not None]
        # as in the paper: distances 0 and 1 are both drawn at 1 on the log2 axis
        ax.plot(ks, [max(1, min_dist[C, name, K]) for K in ks], marker + "-", label=name)
    ax.plot(KS, [K / 2 for K in KS], "k:", label="K/2")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("bits K")
    ax.set_ylabel("minimum Hamming distance")
    ax.set_title(f"C = {C} classes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "orthohash_min_distance.png")
plt.show()

# %% [markdown]
# Read the table: at $C = 10$, Hadamard reaches the ideal $K/2$ from $K = 8$ and MaxHD from
# $K = 16$, while Bernoulli's closest pair is several bits nearer. At $C = 100$, Hadamard only helps from
# $2K \ge C$ ($K \ge 64$) and MaxHD beats Bernoulli at every $K$ it can handle. As $K$ grows
# all three approach $K/2$ (relatively): with many bits, random targets are already nearly
# orthogonal — which is why the paper says Bernoulli is enough in practice.
#
# ## Training on `cifar10-1k`
#
# **What differs from the paper, and why.** The paper fine-tunes an ImageNet-pretrained AlexNet
# (backbone learning rate ×0.1) with Adam at $10^{-4}$, weight decay $5\cdot 10^{-4}$, batch
# 256, 100 epochs, on ImageNet100 / NUS-WIDE / MS-COCO. In `quick` the course trains the
# **shared small backbone from scratch** on the 5,000 `cifar10-1k` training images with
# `orthohash_recipe`: the SGD recipe notebook 03 starts CNNBH's classifier from (SGD with
# momentum 0.9, weight decay $10^{-3}$, one-cycle learning rate up to 0.1, batch 128,
# pad-and-crop + flip, 60 epochs) without its label smoothing — OrthoHash is a classifier in
# disguise and brings its own margin. Same backbone and epochs as CNNBH, so the two compare on
# one budget (CNNBH's validation split preferred AdamW to this SGD recipe; OrthoHash's margin
# and scale were chosen under SGD, and DPAH keeps the same recipe).
#
# **Our settings** (`hashlib_edu.methods.orthohash.orthohash_loss`): OrthoCos + BN with the paper's
# $s = \sqrt{K}$, but **Hadamard targets and $m = 0.3$** instead of the paper's default
# Bernoulli targets and $m = 0.2$. The paper's own tables have these close to its defaults
# (Table 4: Hadamard 0.683 vs Bernoulli 0.679 at 32 bits; Table 2: $m = 0.3$ 0.712 vs 0.710;
# paper numbers, ImageNet100). The ablations at the end of this notebook compare every
# setting on a **validation split** of the training images — never on the protocol's
# queries, which would tune on the test set — and a cell there prints which targets and
# margin the validation split picks, next to these settings.
#
# The `paper` profile (GPU) switches to the paper's setting: `BACKBONE = "alexnet"`, an
# ImageNet-pretrained AlexNet from torchvision (`hashlib_edu.backbones.pretrained_with_code_layer`: the
# 32×32 batches are resized to 224×224 inside the model), fine-tuned for 100 epochs with
# `pretrained_recipe` (Adam at $10^{-4}$ with weight decay $5\cdot10^{-4}$, the backbone at a
# tenth of that learning rate, batch 256). Its weights are downloaded by torchvision, so it
# needs internet access (Colab has it): offline it stops with a clear error and never falls
# back to random weights.

# %%
# NBVAL_IGNORE_OUTPUT
# Every model of this notebook is one Experiment: the method, its settings (the course's
# defaults live in hashlib_edu.methods.orthohash), code length, data, budget and seed. `run`
# trains it (or loads its finished checkpoint), encodes, evaluates and saves the results.
headline_spec = Experiment("orthohash", 48, profile=PROFILE, seed=SEED, epochs=EPOCHS,
                           **choice.fields)
print("headline settings:", headline_spec.settings)
print(headline_spec.recipe)


def ortho_loss(bits: int, **kwargs) -> OrthoHashLoss:
    """OrthoCos with the paper's defaults (Bernoulli targets, m = 0.2, s = √K) unless overridden."""
    return OrthoHashLoss(bits, N_CLASSES, seed=SEED, **kwargs)


# %% [markdown]
# ## Headline: mAP@all at 16–64 bits
#
# One model per code length (a finished checkpoint in `checkpoints/` is loaded instead of
# training again; `train min` is the time training actually took). **Paper numbers:** the
# supplementary, whose experiments this notebook follows, trains and evaluates on ImageNet100,
# NUS-WIDE, MS-COCO, GLDv2, $\mathcal{R}$Oxf and $\mathcal{R}$Par only — it reports **no CIFAR-10
# number**, so the paper column below stays empty rather than borrowing another dataset's
# number. Beside ours: the other course methods on the same protocol and backbone family, read
# from their results files when their notebooks have run in this profile, and OrthoHash in the
# paper's regime — an ImageNet-pretrained backbone — sized for a CPU: EfficientNet-Lite0 at
# 224 px with its last stage fine-tuned together with the code layer (`finetune-last`), or
# frozen with only the code layer trained (`frozen`), read from the results of
# `python -m hashlib_edu.reproduce --regime finetune-last --backbone efficientnet_lite0`.
# Every mAP here is **tie-aware** (notebook 01).

# %%
# NBVAL_IGNORE_OUTPUT
models, losses, results = {}, {}, {}
# Measured here (quick, 2 CPU cores): the 4 models took 7.7 min of training (1.8-2.1 min
# each); the whole notebook ran in 11.5 min from a fresh clone.
print(training_plan(len(BITS), EPOCHS, backbone=BACKBONE, device=DEVICE))
for bits in BITS:
    result = run(headline_spec.replace(bits=bits), data=data, device=DEVICE)
    models[bits], losses[bits], results[bits] = result.model, result.loss, result.record


def saved_maps(method: str, regime: str = "scratch", backbone: str = "small") -> dict[int, float]:
    """Tie-aware mAP@all by bits of a method's saved results in this profile's results folder
    for one regime (may be empty)."""
    return {r["bits"]: r["map_tie_aware"]
            for r in load_results("cifar10-1k", method, profile=PROFILE, regime=regime,
                                  backbone=backbone) if r.get("profile") == PROFILE}


others = {name: saved_maps(method) for name, method in
          (("CNNBH", "cnnbh"), ("DSH", "dsh"), ("DPAH", "dpah"))}
others = {name: maps for name, maps in others.items() if maps}
pretrained = {regime: saved_maps("orthohash", regime, "efficientnet_lite0")
              for regime in ("finetune-last", "frozen")}
print("other methods found in this profile's results:",
      ", ".join(f"{n} at {sorted(m)} bits" for n, m in others.items()) or "none")
print("pretrained OrthoHash results:",
      ", ".join(f"{r} at {sorted(m)} bits" for r, m in pretrained.items() if m) or "none")
headline = pd.DataFrame([{"bits": b, "mAP@all (ours)": r["map_tie_aware"],
                          "mAP (paper, CIFAR-10)": r["paper_map"],
                          **{f"OrthoHash {regime}, EfficientNet-Lite0": maps.get(b)
                             for regime, maps in pretrained.items() if maps},
                          **{f"{name} (ours)": maps.get(b) for name, maps in others.items()},
                          "mAP@1000": r["map_at_1000_tie_aware"], "P@H≤2": r["p_at_h2"],
                          "train min": r["train_seconds"] / 60} for b, r in results.items()])
headline.set_index("bits").round(3)

# %%
# NBVAL_IGNORE_OUTPUT
TARGET_BITS, TARGET_MAP = 48, 0.70
if TARGET_BITS in results:
    reached = results[TARGET_BITS]["map_tie_aware"]
    minutes = results[TARGET_BITS]["train_seconds"] / 60
    verdict = "reaches" if reached >= TARGET_MAP else "falls short of"
    print(f"{PROFILE} profile, {EPOCHS} epochs on {DEVICE}: tie-aware mAP@all at {TARGET_BITS} bits = "
          f"{reached:.3f}, which {verdict} the target of {TARGET_MAP:.2f} set for this notebook "
          f"(training took {minutes:.1f} min).")
    if reached < TARGET_MAP and REGIME == "scratch":
        print(f"Why: the backbone is the small CNNBH conv stack trained from scratch on "
              f"{data.sizes()['train']:,} images (the paper fine-tunes ImageNet-pretrained "
              f"features), the schedule is {EPOCHS} epochs on a CPU budget, and the images are "
              "the JPEG copy of CIFAR-10.")
for regime, maps in pretrained.items():
    if TARGET_BITS in maps:
        print(f"OrthoHash {regime} (EfficientNet-Lite0) at {TARGET_BITS} bits: "
              f"{maps[TARGET_BITS]:.3f}, which "
              f"{'reaches' if maps[TARGET_BITS] >= TARGET_MAP else 'falls short of'} the target.")
for name, maps in others.items():
    for bits in sorted(set(maps) & set(results)):
        ours_b = results[bits]["map_tie_aware"]
        diff = ours_b - maps[bits]
        print(f"vs {name} at {bits} bits: OrthoHash {ours_b:.3f}, {name} "
              f"{maps[bits]:.3f} ({'above' if diff > 0 else 'not above'}, {diff:+.3f})")

# other seeds and budgets at TARGET_BITS (python -m hashlib_edu.reproduce --seed S / --epochs E)
repeated = pd.DataFrame([
    {"method": r["method"].split("_")[0], "run": r["method"], "seed": r.get("seed"),
     "epochs": r.get("epochs"), "tie-aware mAP@all": r["map_tie_aware"]}
    for r in load_results("cifar10-1k", profile=PROFILE)
    if r["bits"] == TARGET_BITS and r.get("profile") == PROFILE
    and r["method"].split("_")[0] in ("orthohash", "cnnbh", "dpah")
    and (r["method"].count("_") == 0 or "_seed" in r["method"] or "_ep" in r["method"])])
if len(repeated):
    repeated = repeated[repeated.groupby("method")["run"].transform("count") > 1]
if len(repeated):
    display(repeated.set_index(["method", "run"]).round(3))
    display(repeated.groupby("method")["tie-aware mAP@all"].agg(["mean", "min", "max", "count"])
            .round(3))
else:
    display(Markdown("_No other seeds or budgets in this profile's results yet._"))

# %%
# NBVAL_IGNORE_OUTPUT
series = {"OrthoHash": {b: r["map_tie_aware"] for b, r in results.items()}, **others,
          **{f"OrthoHash {regime} (EfficientNet-Lite0)": maps
             for regime, maps in pretrained.items() if maps}}
plot_metric_vs_bits(series, ylabel="tie-aware mAP@all",
                    title="cifar10-1k: small backbone from scratch, and pretrained",
                    save="orthohash_map_vs_bits.png")
plt.show()

# %% [markdown]
# ## Do the learned codes sit on their targets? (Algorithm 2)
#
# Algorithm 2 of the supplementary takes the database codes $B = \operatorname{sign}(V)$ and
# forms each class's *hash center* $H_c = \operatorname{sign}(\text{mean of } B \text{ over class } c)$
# (a per-bit majority vote), then measures how orthogonal the centers are,
# $\|HH^\top - I\|_F$ on unit-normalized rows (0 when all centers are $K/2$ bits apart). If
# training worked, each center *is* its class's target. The latent BN centres every bit on the
# training batches, so each bit should also be $+1$ on about half of the database.

# %%
# NBVAL_IGNORE_OUTPUT
K = max(BITS)
saved = load_codes(results[K]["codes_path"])
db_codes, db_labels = saved["db_codes"], saved["db_labels"]
centers = class_hash_centers(db_codes, db_labels, N_CLASSES)
targets = losses[K].targets.cpu()  # the loss sits on the training device (a GPU on Colab)
print(f"{K} bits, {len(db_codes):,} database codes")
print(f"orthogonality ‖HHᵀ − I‖ (unit rows): targets {orthogonality_error(targets):.3f}, "
      f"learned centers {orthogonality_error(centers):.3f}")
print(f"minimum distance between targets {min_hamming_distance(targets)}, "
      f"between learned centers {min_hamming_distance(centers)} (K/2 = {K // 2})")
print("bits by which each class's center differs from its target:",
      (centers != targets).sum(dim=1).tolist())
on_target = (db_codes == targets.numpy()[db_labels]).all(axis=1).mean()
balance = (db_codes > 0).mean(axis=0)
print(f"database codes exactly equal to their class target: {on_target:.1%}; fraction of +1 per "
      f"bit ranges {balance.min():.2f}–{balance.max():.2f}")

# %% [markdown]
# ## Fig. 2: t-SNE of the 64-bit codes
#
# scikit-learn's t-SNE (fixed `random_state`) on the codes of 2,000 random database images
# (500 under the `smoke` profile, to keep CI fast), coloured by class. The paper's Fig. 2 shows
# the same for 10 ImageNet100 classes. Codes that equal their target collapse onto one point
# per class.

# %%
# NBVAL_IGNORE_OUTPUT
n_tsne = min(500 if PROFILE == "smoke" else 2000, len(db_codes))
pick = np.sort(np.random.default_rng(SEED).choice(len(db_codes), n_tsne, replace=False))
xy = TSNE(n_components=2, init="pca", perplexity=30, random_state=SEED).fit_transform(
    db_codes[pick].astype(np.float32))
fig, ax = plt.subplots(figsize=(6.5, 5.5))
for c in range(N_CLASSES):
    sel = db_labels[pick] == c
    ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=f"C{c}", label=CIFAR10_CLASSES[c])
ax.set_xticks([])
ax.set_yticks([])
ax.set_title(f"t-SNE of {K}-bit OrthoHash codes, {n_tsne:,} database images")
ax.legend(fontsize=7, markerscale=2, loc="best")
save_figure(fig, f"orthohash_tsne_{K}.png")
plt.show()

# %% [markdown]
# ## Fig. 3: intra- and inter-class Hamming distances
#
# `hashlib_edu.analysis.intra_inter_distances` takes all pairs among 2,000 random database
# codes and splits their Hamming distances into same-class and different-class pairs; the
# histograms are normalized to sum to 1, and the arrow is the separability
# $\mathbb{E}[D_\text{inter}] - \mathbb{E}[D_\text{intra}]$. Paper numbers (64 bits, ImageNet100):
# 13.90 for HashNet (pairwise), 16.47 for DTSH (triplet), 17.34 for GreedyHash (pointwise);
# OrthoCos+BN is drawn in its Fig. 3i, but we quote no value for it. For comparison, the same plot for CNNBH's 48-bit codes when notebook 03 has saved them
# in this profile.

# %%
# NBVAL_IGNORE_OUTPUT
panels = {f"OrthoHash, {b} bits": (load_codes(results[b]["codes_path"]), b)
          for b in sorted({max(BITS), 48} & set(results), reverse=True)}
cnnbh_path = codes_path("cifar10-1k", "cnnbh", 48, PROFILE)
if cnnbh_path.is_file():
    panels["CNNBH, 48 bits"] = (load_codes(cnnbh_path), 48)
else:
    print(f"CNNBH codes not found ({cnnbh_path.name} in this profile's results): CNNBH panel skipped.")
fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
sep = {}
for ax, (title, (z, k)) in zip(axes[0], panels.items(), strict=True):
    intra, inter = intra_inter_distances(z["db_codes"], z["db_labels"], max_items=2000, seed=SEED)
    sep[title] = separability(intra, inter)
    bins = np.arange(k + 2) - 0.5
    for dist, label in ((intra, "intra-class"), (inter, "inter-class")):
        ax.hist(dist, bins=bins, weights=np.full(len(dist), 1 / len(dist)), alpha=0.55,
                label=f"{label} ({len(dist):,} pairs)")
    top = ax.get_ylim()[1] * 0.8
    ax.annotate("", xy=(inter.mean(), top), xytext=(intra.mean(), top),
                arrowprops={"arrowstyle": "<->"})
    ax.text((inter.mean() + intra.mean()) / 2, top * 1.03, f"{sep[title]:.2f}", ha="center")
    ax.set_xlabel("Hamming distance")
    ax.set_ylabel("fraction of pairs")
    ax.set_title(title)
    ax.legend(fontsize=7)
fig.tight_layout()
save_figure(fig, "orthohash_hamming_histograms.png")
plt.show()
print("separability E[D_inter] − E[D_intra]:", {t: round(s, 2) for t, s in sep.items()})

# %% [markdown]
# ## Ablations (supplementary D.1–D.5) at `ABLATION_BITS`
#
# Each ablation changes one setting of the reference model — the **paper's defaults**
# (OrthoCos + BN, Bernoulli targets, $m = 0.2$, $s = \sqrt{K}$, softmax CE) — and trains with
# the **shorter ablation schedule** (`ABLATION_EPOCHS`), so these models compare with each
# other, not with the headline table.
#
# **All ablations run on the validation split**, because they are how settings get chosen:
# `validation_protocol(data)` holds out 10% of the 5,000 training images (class balanced) as
# validation queries; each model trains on the other 4,500, which are also the database it
# searches. The protocol's 1,000 queries are never used to choose anything. Each model is
# saved through the results writer
# (`results/cifar10-1k-val/orthohash_<variant>-<bits>.json` with its codes), so every number
# can be re-checked. Paper numbers are the supplementary's, on
# **ImageNet100** (mAP@1K, pretrained AlexNet) unless stated: they show the direction of an
# effect on another dataset, not a number to match. With one seed and a short schedule,
# differences of about 0.01 are within run-to-run noise.

# %%
# NBVAL_IGNORE_OUTPUT
AB = ABLATION_BITS
# the reference: the paper's defaults (Bernoulli targets, m = 0.2, s = √K) on the validation split
reference = headline_spec.replace(bits=AB, protocol=val_data.protocol, epochs=ABLATION_EPOCHS,
                                  settings={"targets": "bernoulli", "margin": 0.2})
abl_models, abl_histories, abl = {}, {}, {}


def ablate(label: str, **settings) -> dict:
    """Train one variant of the reference (its settings changed by ``settings``); keep its
    model, history and results under ``label``."""
    result = run(reference.replace(settings=settings, label=label), data=val_data, device=DEVICE)
    abl_models[label], abl_histories[label], abl[label] = (result.model, result.history,
                                                           result.record)
    return abl[label]


# Measured here (quick, 2 CPU cores): the 11 ablation models of the cells below took 2.5 min
# of training (about 0.22 min each).
print(training_plan(11, ABLATION_EPOCHS, backbone=BACKBONE, device=DEVICE),
      f"(the ablation cells below; {len(val_data.train_idx):,} training images each)")
ablate("orthohash_ablation")  # the reference
print(f"reference at {AB} bits, {ABLATION_EPOCHS} epochs: validation mAP "
      f"{abl['orthohash_ablation']['map_tie_aware']:.3f}")

# %% [markdown]
# ### Table 4: target generators
#
# Paper numbers: Table 4, ImageNet100, at the same number of bits when the paper has it.

# %%
# NBVAL_IGNORE_OUTPUT
PAPER_T4 = {"hadamard": {16: 0.603, 32: 0.683, 64: 0.717, 128: 0.721},
            "maxhd": {16: 0.620, 32: 0.680, 64: 0.711, 128: 0.720},
            "bernoulli": {16: 0.608, 32: 0.679, 64: 0.711, 128: 0.718}}
ablate("orthohash_hadamard", targets="hadamard")
ablate("orthohash_maxhd", targets="maxhd")
rows = []
for name, method in (("bernoulli", "orthohash_ablation"), ("hadamard", "orthohash_hadamard"),
                     ("maxhd", "orthohash_maxhd")):
    rows.append({"targets": name,
                 "min distance of targets": min_hamming_distance(make_targets(name, N_CLASSES, AB,
                                                                              seed=SEED)),
                 "validation mAP (ours)": abl[method]["map_tie_aware"],
                 f"paper, ImageNet100 {AB} bits": PAPER_T4[name].get(AB)})
pd.DataFrame(rows).set_index("targets").round(3)

# %% [markdown]
# ### D.1: margin $m$, and cosine vs angular margin
#
# Paper numbers: Table 2, ImageNet100 at **64** bits (the paper has no 32-bit margin sweep).

# %%
# NBVAL_IGNORE_OUTPUT
PAPER_T2_COS = {0.0: 0.698, 0.1: 0.706, 0.2: 0.710, 0.3: 0.712}
PAPER_T2_ARC = {0.2: 0.711}
rows = []
for m in (0.0, 0.1, 0.2, 0.3):
    method = "orthohash_ablation" if m == 0.2 else f"orthohash_m{m:g}"
    if method not in abl:
        ablate(method, margin=m)
    rows.append({"margin": "OrthoCos", "m": m, "validation mAP (ours)": abl[method]["map_tie_aware"],
                 "paper, ImageNet100 64 bits": PAPER_T2_COS[m]})
ablate("orthohash_arc", margin_type="arc")
rows.append({"margin": "OrthoArc", "m": 0.2, "validation mAP (ours)": abl["orthohash_arc"]["map_tie_aware"],
             "paper, ImageNet100 64 bits": PAPER_T2_ARC[0.2]})
pd.DataFrame(rows).round(3)

# %% [markdown]
# ### D.2: scale $s$
#
# $s = \sqrt{K}$ (default), $s = \sqrt{2}\log(C - 1)$ (AdaCos's fixed scale; 3.11 for
# $C = 10$), and $s = 8$. Paper numbers: Table 3, ImageNet100 at 64 bits, where
# $\sqrt{K} = \sqrt{64} = 8$ and, with $C = 100$, $\sqrt{2}\ln(C-1) = \sqrt{2}\ln 99 = 6.50$ — so
# the paper's scales are not ours; the column says which one it used. (The caption of the
# paper's Table 3 gives 6.18 for ImageNet100 and 6.50 for MS-COCO, swapped: 6.18 is
# $\sqrt{2}\ln 79$, MS-COCO's $C = 80$. The "paper's s" column below repeats the caption's 6.18.)

# %%
# NBVAL_IGNORE_OUTPUT
ablate("orthohash_s_adacos", scale="adacos")
ablate("orthohash_s8", scale=8.0)
rows = [("√K", ortho_loss(AB).scale, "orthohash_ablation", "√64 = 8", 0.710),
        ("√2·log(C−1)", ortho_loss(AB, scale="adacos").scale, "orthohash_s_adacos",
         "6.18 (C = 100)", 0.713),
        ("8", 8.0, "orthohash_s8", "√64 = 8", 0.710)]
pd.DataFrame([{"scale": name, "s": s, "validation mAP (ours)": abl[method]["map_tie_aware"], "paper's s": ps,
               "paper, ImageNet100 64 bits": pm} for name, s, method, ps, pm in rows]).round(3)

# %% [markdown]
# ### D.4: softmax CE vs binary cross-entropy
#
# * **CE** — the method: softmax over classes toward the one-hot (or $y/|y|$) target.
# * **BCE, per bit** — a sigmoid on each bit of $s\hat v$, toward the bits of the target code
#   ($\hat v = \sqrt{K} v / \|v\|$): the classes never compete.
# * **BCE, per class** — one sigmoid per class on the margin logits $z_c$ (the supplementary's
#   "Sigmoid" row of Table 5, without its imbalance weights).
#
# The paper's Table 5 is on **multi-label** data only (64 bits): we quote its MS-COCO
# column (mAP@5K), where the imbalance between one positive and many negative classes is what
# hurts per-class BCE; CIFAR-10 is single-label.

# %%
# NBVAL_IGNORE_OUTPUT
ablate("orthohash_bce", loss_type="bce")
ablate("orthohash_class_bce", loss_type="class_bce")
pd.DataFrame([
    {"loss": "softmax CE (the method)",
     "validation mAP (ours)": abl["orthohash_ablation"]["map_tie_aware"],
     "paper, MS-COCO 64 bits": 0.785},
    {"loss": "BCE per bit, toward the target code",
     "validation mAP (ours)": abl["orthohash_bce"]["map_tie_aware"],
     "paper, MS-COCO 64 bits": None},
    {"loss": "BCE per class ('Sigmoid')",
     "validation mAP (ours)": abl["orthohash_class_bce"]["map_tie_aware"],
     "paper, MS-COCO 64 bits": 0.400},
]).set_index("loss").round(3)

# %% [markdown]
# ### D.5: BatchNorm statistics — training vs recomputed on the database
#
# At test time the latent BN computes $\gamma(\hat v - \mu)/\sqrt{\sigma + \epsilon} + \beta$ with
# running statistics $\mu, \sigma$ collected on the (augmented) training batches, and
# $\operatorname{sign}$ thresholds bit $k$ at $\hat v_k = \mu_k - \beta_k\sqrt{\sigma_k+\epsilon}/\gamma_k$.
# On a database from another domain $\mu$ is off and bits flip; the supplementary's fix
# recomputes $\mu, \sigma$ on the database codes and resets $\gamma = 1, \beta = 0$. Then the
# threshold is $\mu_k$ alone — $\sigma$ just rescales, which is why Table 6's rows with and
# without a new $\sigma$ are identical (with a trained $\beta \ne 0$, $\sigma$ moves the
# threshold too).
#
# `hashlib_edu.analysis.recompute_bn_statistics(model, images)` returns a re-estimated **copy**
# (the trained model is untouched). By default it re-estimates only the latent BN — the paper's
# fix, which leaves the features the latent layer was trained on unchanged; `layers="all"` also
# re-estimates the backbone's BN layers (AdaBN, Li et al. 2018), which shifts every layer's
# inputs at once. Dropout stays off during the pass. In Table 6 the fix lifts
# $\mathcal{R}$Oxf-Hard at 128 bits from 0.015 to 0.184 (a new domain) but leaves GLDv2, the
# training domain, unchanged (0.035 → 0.034, paper numbers). Our database is the training
# domain too — minus augmentation — so expect little change here.

# %%
# NBVAL_IGNORE_OUTPUT
ref_model = abl_models["orthohash_ablation"]
db_images = val_data.images("database")
# the third row is the supplementary's full fix
variants = [("training statistics (as trained)", None),
            ("latent BN: μ, σ from the database", {"layers": "latent", "reset_affine": False}),
            ("latent BN: μ, σ from the database, γ=1, β=0",
             {"layers": "latent", "reset_affine": True}),
            ("all BN layers from the database (AdaBN)", {"layers": "all", "reset_affine": False})]
rows = []
for label, kwargs in variants:
    # the same trained weights, evaluated with other BN statistics (nothing is trained or saved)
    model_v = ref_model if kwargs is None else recompute_bn_statistics(ref_model, db_images,
                                                                       **kwargs)
    q_codes, db_codes = encode(model_v, val_data.images("query")), encode(model_v, db_images)
    scores = evaluate_codes(q_codes, db_codes, val_data.part_labels("query"),
                            val_data.part_labels("database"))
    rows.append({"BN statistics": label, "validation mAP (ours)": scores["map_tie_aware"],
                 "max bit imbalance |P(+1) − 0.5|":
                     float(np.abs((db_codes > 0).mean(axis=0) - 0.5).max())})
pd.DataFrame(rows).set_index("BN statistics").round(3)

# %% [markdown]
# ### Ablations at a glance

# %%
# NBVAL_IGNORE_OUTPUT
ref_map = abl["orthohash_ablation"]["map_tie_aware"]
summary = pd.DataFrame([{"variant": m, "validation mAP": r["map_tie_aware"],
                         "Δ vs reference": r["map_tie_aware"] - ref_map,
                         "train min": r["train_seconds"] / 60} for m, r in abl.items()])
print(f"{AB} bits, {ABLATION_EPOCHS} epochs, validation split; total ablation training "
      f"{summary['train min'].sum():.1f} min, headline training "
      f"{sum(r['train_seconds'] for r in results.values()) / 60:.1f} min")
summary.set_index("variant").round(3)

# %% [markdown]
# ### What the validation split picks
#
# The headline uses `ORTHOHASH_SETTINGS` (Hadamard targets, $m = 0.3$). Would the validation
# split have picked them? The cell compares the target generators (Table 4) and the OrthoCos
# margins (D.1) by validation mAP. With one seed and a short schedule, a difference of 0.01 or
# less counts as a tie: the validation split then gives no reason to prefer either setting.

# %%
# NBVAL_IGNORE_OUTPUT
TIE = 0.01
by_targets = {"bernoulli": "orthohash_ablation", "hadamard": "orthohash_hadamard",
              "maxhd": "orthohash_maxhd"}
by_margin = {0.0: "orthohash_m0", 0.1: "orthohash_m0.1", 0.2: "orthohash_ablation",
             0.3: "orthohash_m0.3"}
for what, options, chosen in (("targets", by_targets, ORTHOHASH_SETTINGS["targets"]),
                              ("margin m", by_margin, ORTHOHASH_SETTINGS["margin"])):
    scores = {option: abl[method]["map_tie_aware"] for option, method in options.items()}
    best = max(scores, key=scores.get)
    behind = scores[best] - scores[chosen]
    verdict = ("the same choice" if best == chosen else
               "a tie with the best" if behind <= TIE else "NOT what validation picks")
    print(f"{what}: validation picks {best!r} ({scores[best]:.3f}); ORTHOHASH_SETTINGS uses "
          f"{chosen!r} ({scores[chosen]:.3f}, {-behind:+.3f}): {verdict}. All: "
          + ", ".join(f"{o}: {v:.3f}" for o, v in scores.items()))

# %% [markdown]
# ## What to notice
#
# * **One loss does three jobs.** The cosine to a fixed target is at once a classification
#   score, a quantization error ($2K(1-\cos)$) and — for binary codes — a Hamming distance
#   ($\frac{K}{2}(1-\cos)$). The checks above hold to four decimals; the Algorithm 2 cell
#   says how many database codes land *exactly* on their class's target.
# * **Targets matter through their minimum distance**, and mostly at small $K$ or many
#   classes (Fig. 1). With $C = 10$ and $K \ge 16$, Hadamard and MaxHD both reach $K/2$;
#   compare the Table 4 cell to see whether that shows in mAP at our scale.
# * **The headline is honest, not the paper's.** From scratch, the small backbone trained on
#   5,000 JPEG images for a CPU budget reaches a tie-aware 0.630 at 48 bits, short of the 0.70
#   target. Three seeds span 0.608–0.630, and 100 epochs instead of 60 give 0.627 (the
#   repeated-runs table; OrthoHash's seeds 1 and 2 and its 100-epoch run were trained in
#   float32, seed 0 in bfloat16): more epochs do not close the gap. In the paper's regime, with an
#   ImageNet-pretrained backbone, OrthoHash passes the target: 0.751 at 48 bits with
#   EfficientNet-Lite0's last stage fine-tuned. With the backbone frozen it stays at 0.617:
#   the features have to adapt with the codes. On the small backbone, at 48 bits, OrthoHash is
#   0.040 above CNNBH (0.590) — more than the seed-to-seed spread: every OrthoHash run in the
#   repeated-runs table beats every CNNBH run — 0.009 below DPAH (0.639), which is within that
#   spread (the means of the four runs: DPAH 0.631, OrthoHash 0.620), and far above DSH (0.480).
#   The supplementary compares with none of these methods, so this is our comparison, not a
#   test of a paper's claim.
# * **Fig. 3**: the inter-class histogram peaks sharply near $K/2$, as far-apart targets
#   predict. OrthoHash's intra-class one does *not* pile up near 0: it is spread nearly flat
#   over the distances below $K/2$ and runs into the inter-class peak — only 13.0 % of the
#   64-bit database codes equal their class target exactly (the Algorithm 2 cell). The
#   separability printed under the figure (15.78 at 64 bits, 12.44 at 48; CNNBH's 48-bit codes
#   11.50) is the gap between the two means, about half of $K/2$.
# * **Ablations** run on the validation split, with a shorter schedule and one seed: read
#   differences of about 0.01 as ties. The validation split picks the headline's settings, but
#   only by a tie over the paper's defaults: Hadamard targets (0.389, against 0.383 for
#   Bernoulli and 0.373 for MaxHD) and $m = 0.3$ (0.389, against 0.383 at the paper's
#   $m = 0.2$), so it gives little reason to prefer them. Some margin clearly helps: $m = 0$ and
#   $m = 0.1$ score 0.341 and 0.345. AdaCos's fixed scale $\sqrt{2}\ln(C-1)$ (0.406) is 0.023
#   ahead of the paper's $\sqrt{K}$ here, and OrthoArc at $m = 0.2$ (0.402) is 0.019 ahead of
#   OrthoCos at the same margin — more than ties, with one seed; the headline keeps the paper's
#   OrthoCos and $\sqrt{K}$ because this notebook reproduces the paper. The softmax CE
#   beats both BCE variants by far (by 0.08 and 0.14); the paper's Table 5 finds the same for
#   per-class BCE on MS-COCO.
#   The BN-statistics table shows what recomputation does *in the training domain*; the paper's
#   big gains come from a domain shift we do not have here.
#
# ## Exercises
#
# 1. **Write MaxHD yourself** from Algorithm 3 (Bernoulli candidates, reject if any normalized
#    distance is below `currdist`, lower `currdist` by 0.01 after 10,000 rejections, shuffle the
#    rows) as `my_maxhd_targets(n_classes, n_bits, seed)` below and check it with
#    `check_maxhd_targets`: the random streams differ from the package's
#    `hashlib_edu.methods.orthohash.maxhd_targets`, so it compares minimum distances, not rows.
#    Why is the greedy search hopeless at $C = 100$, $K = 8$?
# 2. **Write the loss yourself**: `my_orthohash_loss(v, y, targets, scale, margin)` returns
#    the mean cross-entropy of the OrthoCos logits $z_c = s(\cos(v, o_c) - m\,y_c)$ for `(n, K)`
#    codes `v`, `(n,)` class ids `y` and `(C, K)` targets; `check_orthohash_loss` compares it
#    with `OrthoHashLoss` and names the mistake it recognizes.
# 3. **Create a domain shift** and redo D.5: darken or desaturate the database and query images
#    (`data.images(...)` are uint8 arrays), encode with the reference model, then with
#    `recompute_bn_statistics(model, shifted_database)`. When does the recomputation help?
# 4. Check the multi-label target $y/|y|$: build `OrthoHashLoss(8, 4)` and a two-label row, and
#    reproduce the loss by hand from Algorithm 1.
# 5. Push the margin to $m = 0.4, 0.5$ (and CosFace's bound $m < C/(C-1)$) with
#    `ablate("orthohash_m0.4", margin=0.4)` — on the validation split: where does the
#    validation mAP turn down on CIFAR-10?
# 6. **The whole backbone** (GPU advised): the pretrained rows above fine-tune only
#    EfficientNet-Lite0's last stage. Run this notebook with `BACKBONE = "efficientnet_lite0"`
#    (offline) or `PROFILE = "paper"` (`BACKBONE = "alexnet"`, the paper's network, downloaded;
#    Adam at $10^{-4}$ with the backbone at a tenth of it, 100 epochs). How far beyond 0.70
#    does 48 bits get, and which of the ablations change sign with pretrained features?

# %%
def my_maxhd_targets(n_classes, n_bits, seed):
    """Exercise 1: (C, K) targets of +-1 with a large minimum Hamming distance (Algorithm 3)."""
    raise NotImplementedError


check_maxhd_targets(my_maxhd_targets)


# %%
def my_orthohash_loss(v, y, targets, scale, margin):
    """Exercise 2: (n, K) codes, (n,) class ids, (C, K) +-1 targets -> the mean loss."""
    raise NotImplementedError


check_orthohash_loss(my_orthohash_loss)
