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
# # 05 · DPAH: learned class anchors and a LogSumExp-bounded inter-class loss
#
# **Paper:** Ruikui Wang, Ruiping Wang, Shishi Qiao, Shiguang Shan, Xilin Chen, "Deep
# Position-Aware Hashing for Semantic Continuous Image Retrieval", WACV 2020.
# <https://openaccess.thecvf.com/content_WACV_2020/html/Wang_Deep_Position-Aware_Hashing_for_Semantic_Continuous_Image_Retrieval_WACV_2020_paper.html>
# (The derivation and Table 1 below are those of its appendix.)
#
# DSH (notebook 04) compares **pairs** of images: a mini-batch of $n$ codes gives
# $n(n-1)/2$ terms, and each term only sees two images, so the global layout of the classes in
# Hamming space emerges indirectly, one pair at a time. DPAH instead gives every class $j$ a
# learnable **position** (anchor) $\theta_j \in [-1, 1]^K$ in code space and compares each code
# with the $C$ anchors only:
#
# * **$O(n \cdot C)$ terms instead of $O(n^2)$**: for a batch of 128 and CIFAR-10's 10 classes,
#   1,280 code-anchor distances instead of 8,128 pairs; over the 5,000 training images,
#   50,000 instead of 12.5 million.
# * **Global structure**: the anchors are shared by the whole training set, so every batch
#   pushes every code relative to the same 10 positions — and the positions move to where the
#   codes of their class can gather, away from the other classes' positions.
#
# The inter-class loss asks each code to be closer to its own anchor (by a factor $1 + \alpha$)
# than to any other class's anchor — a hinge with a $\min$ inside, which DPAH replaces by a
# smooth upper bound that turns out to be an ordinary **softmax cross-entropy over negated
# distances**. This notebook re-derives that bound (the appendix's extracted text is garbled),
# checks it numerically, trains DPAH with the course's shared small backbone on `cifar10-1k`,
# and looks at where the learned anchors end up — the bridge to OrthoHash's *fixed* targets in
# notebook 06.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/hashlib-edu/hashlib_edu/blob/main/notebooks/05_dpah.ipynb)

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
BITS = [12, 24, 32, 48]
EPOCHS = None  # None: the budget in hashlib_edu.methods.dpah (smoke 1, quick 60, paper 100)
SWEEP_BITS = 32
SWEEP_EPOCHS = None  # None: the profile's default (smoke 1, quick 10, paper 100)
BACKBONE = None  # None: "alexnet" (ImageNet-pretrained, needs internet) under paper, else the small one
SEED = 0
TRAIN = False  # True: train every model here; False: load the course's trained models if published

# %%
# NBVAL_IGNORE_OUTPUT
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from sklearn.manifold import TSNE

from hashlib_edu import (
    Experiment,
    bernoulli_targets,
    choose_backbone,
    encode,
    hadamard_targets,
    hamming_distance,
    load_codes,
    load_protocol,
    load_results,
    min_hamming_distance,
    run,
    select_device,
    sign,
    training_plan,
    use_profile,
    use_training,
    validation_protocol,
)
from hashlib_edu.analysis import intra_inter_distances, separability
from hashlib_edu.exercises import check_dpah_bound, check_relaxed_hamming_distance
from hashlib_edu.methods.dpah import (
    DPAHLoss,
    dpah_inter_bound,
    dpah_inter_hinge,
    dpah_loss,
    dpah_scale,
    relaxed_hamming_distance,
)
from hashlib_edu.plots import plot_histograms, plot_metric_vs_bits, save_figure
from hashlib_edu.selection import choose

PROFILE = use_profile(PROFILE)
choice = choose_backbone(BACKBONE, PROFILE)
BACKBONE, REGIME = choice
EPOCHS = EPOCHS or Experiment("dpah", 16, profile=PROFILE, **choice.fields).epochs
SWEEP_EPOCHS = SWEEP_EPOCHS or {"smoke": 1, "quick": 10, "paper": 100}[PROFILE]
DEVICE = select_device()
use_training(TRAIN)
data = load_protocol("cifar10-1k", PROFILE, seed=SEED)
val_data = validation_protocol(data, seed=SEED)  # settings are chosen here, never on the queries
CLASSES = list(data.dataset.classes)
N_CLASSES = len(CLASSES)
print(f"profile {PROFILE}, {EPOCHS} epochs ({SWEEP_EPOCHS} for the sweeps on the validation "
      f"split), device {DEVICE}; split sizes {data.sizes()}, validation {val_data.sizes()}")
print(f"data source: {data.dataset.source}")
print(choice.describe())

# %% [markdown]
# ## The method: positions, distances, and the inter-class hinge
#
# The network (the shared small backbone + a linear hash layer, `BackboneWithCodeLayer`) outputs $h \in
# \mathbb{R}^K$; the loss works on the bounded relaxation $b = \tanh(h) \in (-1, 1)^K$, and the
# code is $\operatorname{sign}(h)$. Class $j$'s position is $\theta_j = \tanh(A_j)$, where the raw
# $A \in \mathbb{R}^{C \times K}$ (`DPAHLoss.anchors`) is a parameter trained jointly with the
# network. Distances are the **relaxed Hamming distance**
#
# $$d(b, \theta) = \frac{K - b^\top \theta}{2} \in [0, K],$$
#
# exactly the Hamming distance when $b, \theta \in \{-1, +1\}^K$. A sample's **own position**
# $\bar\theta_i$ is its class's anchor (for a multi-label sample, the mean of its labels'
# anchors; since $d$ is linear in $\theta$, $d(b, \bar\theta_i)$ is then the mean of the
# distances). Write $\bar d_i = d(b_i, \bar\theta_i)$, $d_{ij} = d(b_i, \theta_j)$ and
# $N_i = \{j \notin \text{labels}(i)\}$. The appendix's Eq. (1) is a relative-margin hinge:
#
# $$L^i_{\text{hinge}} = \max\Big\{ (1 + \alpha)\, \bar d_i - \min_{j \in N_i} d_{ij},\; 0 \Big\}.$$
#
# It is zero once the code is closer to its own position — by the factor $1 + \alpha$ — than to
# the nearest wrong one. Two problems for training: only **one** wrong anchor (the nearest) gets
# a gradient, and satisfied samples get **none**, so the loss stops shaping the code space as
# soon as the ordering is right.
#
# ## From the hinge to a softmax, step by step
#
# Let $a_i = (1 + \alpha)\, \bar d_i$. Because $-\min_j x_j = \max_j (-x_j)$,
#
# $$L^i_{\text{hinge}} = \max\Big\{ a_i + \max_{j \in N_i} (-d_{ij}),\; 0 \Big\}.$$
#
# **Step 1 — max ≤ LogSumExp.** For any reals $z_j$, $\max_j z_j \le \log \sum_j e^{z_j}$: the
# sum contains the term $e^{\max_j z_j}$ and all others are positive (the gap is at most
# $\log |N_i|$, reached when all $z_j$ are equal). Since $\max\{\cdot, 0\}$ is non-decreasing,
#
# $$L^i_{\text{hinge}} \le \max\{x_i, 0\}, \qquad
#   x_i = a_i + \log \sum_{j \in N_i} e^{-d_{ij}} = \log\Big( e^{a_i} \sum_{j \in N_i} e^{-d_{ij}} \Big).$$
#
# **Step 2 — hinge ≤ softplus.** For any real $x$, $\max\{x, 0\} \le \log(1 + e^x)$, because
# $1 + e^x \ge \max\{1, e^x\} = e^{\max\{x, 0\}}$ (gap at most $\log 2$, at $x = 0$). Hence
#
# $$L^i_{\text{hinge}} \le \log\Big( 1 + e^{a_i} \sum_{j \in N_i} e^{-d_{ij}} \Big).$$
#
# **Step 3 — rewrite as a softmax.** Multiply inside by $e^{-a_i} / e^{-a_i}$:
#
# $$\log\Big( 1 + e^{a_i} \sum_{j} e^{-d_{ij}} \Big)
#   = \log \frac{e^{-a_i} + \sum_{j \in N_i} e^{-d_{ij}}}{e^{-a_i}}
#   = -\log \frac{e^{-(1+\alpha)\bar d_i}}{e^{-(1+\alpha)\bar d_i} + \sum_{j \in N_i} e^{-d_{ij}}}
#   =: L^i_{\text{inter}} .$$
#
# This is the appendix's Eq. (2): the **softmax cross-entropy** over the logits
# $\big(-(1+\alpha)\bar d_i,\ -d_{ij} \text{ for } j \in N_i\big)$ with the own position as the
# target class — a classifier whose "weights" are the positions and whose logits are negated
# distances, with the own logit handicapped by the factor $1 + \alpha$. Together the two steps
# give $L_{\text{hinge}} \le L_{\text{inter}} \le L_{\text{hinge}} + \log|N_i| + \log 2$.
#
# **Where the extracted appendix is garbled.** Its first three lines (Eq. (1), the
# $\max$/$\min$ swap and step 1) read correctly. The fourth line shows
# $\log\{\sum_j e^{-d_{ij}} + e^{(1+\alpha)\bar d_i} + 1\}$ — a **sum** where step 2 gives the
# **product** $e^{(1+\alpha)\bar d_i} \sum_j e^{-d_{ij}}$ (the same note is in the docstring of
# `hashlib_edu.methods.dpah.dpah_inter_bound`). The following lines lost their numerators and
# denominators (a stray "$i \notin label\{i\}$" sits where a numerator should be, and the last
# line's fraction has the same expression on top and bottom); only the final $-\log$-softmax
# shape survives. The cells below check the corrected chain numerically.
#
# ## Checking the bound numerically
#
# Random anchors $\theta_j = \tanh(2 z_j)$ and random binary codes, each drawn near its class's
# anchor with a random strength (from "unrelated" to "close"), so that some samples violate the
# margin and some satisfy it. Everything here is float64 with fixed seeds.

# %%
g = torch.Generator().manual_seed(2020)
K, C, N, ALPHA = 32, 10, 2000, 0.5
theta = torch.tanh(2 * torch.randn(C, K, generator=g, dtype=torch.float64))
y = torch.randint(0, C, (N,), generator=g)
strength = 3 * torch.rand(N, 1, generator=g, dtype=torch.float64)
b = torch.sign(strength * theta[y] + torch.randn(N, K, generator=g, dtype=torch.float64))

d = relaxed_hamming_distance(b, theta)  # (N, C)
own = F.one_hot(y, C).bool()
d_own = d[torch.arange(N), y]
hinge = dpah_inter_hinge(d_own, d, ALPHA, neg_mask=~own)
bound = dpah_inter_bound(d_own, d, ALPHA, neg_mask=~own)
gap = bound - hinge
ceiling = math.log(2) + math.log(C - 1)
print(f"{N} samples, K = {K}, C = {C}, alpha = {ALPHA}; "
      f"violating the margin (hinge > 0): {(hinge > 0).double().mean().item():.1%}")
print("hinge <= bound for every sample:", bool((hinge <= bound).all()))
print(f"gap bound - hinge: min {gap.min().item():.3f}, median {gap.median().item():.3f}, "
      f"max {gap.max().item():.3f}  (ceiling log 2 + log(C-1) = {ceiling:.3f})")

# the appendix's garbled fourth line, log(sum_j e^{-d_j} + e^{a} + 1), is a different function
a = (1 + ALPHA) * d_own
garbled = torch.log(torch.exp(-d).masked_fill(own, 0).sum(1) + torch.exp(a) + 1)
print(f"garbled line vs the correct bound: largest difference "
      f"{(garbled - bound).abs().max().item():.2f} (not a typo of the same quantity)")

# %% [markdown]
# **When does the gap shrink?** The LogSumExp is a *soft* maximum: multiplying all distances by
# $t$ (a sharper temperature) gives $L_{\text{inter}}(t\,d)/t \to L_{\text{hinge}}(d)$, with the
# gap bounded by $(\log|N_i| + \log 2)/t$ (the table below). At a fixed scale the gap vanishes
# only far *beyond* the margin, where both losses go to 0. Far *inside* the margin it does not:
# the bound becomes linear with slope 1 like the hinge, but stays above it by the LogSumExp gap
# of step 1, which reaches $\log|N_i|$ when the wrong anchors are equally far. The single sample
# printed below (own distance 8, all 9 wrong anchors at distance $12 + \delta$) shows both ends:
# the gap stays at 2.197 $= \log 9 = \log(C - 1)$ at $\delta = -12$ and $-8$, and falls to 0.003 at
# $\delta = 8$ and 0.0 at $\delta = 12$. With a single wrong anchor ($\log 1 = 0$, figure (b)) the
# bound meets the hinge on both sides.

# %%
rows = []
for t in (1, 2, 4, 8, 16, 32):
    gap_t = dpah_inter_bound(t * d_own, t * d, ALPHA, neg_mask=~own) / t - hinge
    rows.append({"t": t, "mean gap": gap_t.mean().item(), "max gap": gap_t.max().item(),
                 "ceiling (log 2 + log 9)/t": ceiling / t})
print(pd.DataFrame(rows).round(4).to_string(index=False))

# one sample, own distance 8 (so a = 12), all 9 wrong anchors at distance 12 + delta
deltas = torch.linspace(-12, 12, 97, dtype=torch.float64)
one = {}
for m in (1, 9):
    d_neg = (12 + deltas)[:, None].expand(-1, m)
    d_o = torch.full((len(deltas),), 8.0, dtype=torch.float64)
    one[m] = (dpah_inter_hinge(d_o, d_neg, ALPHA), dpah_inter_bound(d_o, d_neg, ALPHA))
print("\nmargin delta of the wrong anchors:", [int(x) for x in deltas[::16]])
print("gap with 9 wrong anchors:        ",
      [round(float(x), 3) for x in (one[9][1] - one[9][0])[::16]])

fig, axes = plt.subplots(1, 3, figsize=(15, 4))
axes[0].scatter(hinge, bound, s=4, alpha=0.4)
top = float(bound.max())
axes[0].plot([0, top], [0, top], "k--", lw=1, label="bound = hinge")
axes[0].set(xlabel="hinge (Eq. 1)", ylabel="LogSumExp bound (Eq. 2)",
            title=f"(a) {N} random samples: all above the diagonal")
axes[0].legend(fontsize=8)
axes[1].plot(deltas, one[1][0], "k-", label="hinge")
for m, color in ((1, "C0"), (9, "C1")):
    axes[1].plot(deltas, one[m][1], "-", color=color, label=f"bound, {m} wrong anchor(s)")
axes[1].set(xlabel=r"margin $\delta = \min_j d_j - (1+\alpha)\bar d$",
            ylabel="loss", title="(b) one sample: the bound is a shifted softplus")
axes[1].legend(fontsize=8)
ts = [r["t"] for r in rows]
axes[2].loglog(ts, [r["mean gap"] for r in rows], "o-", label="mean gap")
axes[2].loglog(ts, [r["max gap"] for r in rows], "s-", label="max gap")
axes[2].loglog(ts, [ceiling / t for t in ts], "k--", label="ceiling (log 2 + log 9)/t")
axes[2].set(xlabel="temperature multiplier t", ylabel="bound(t d)/t - hinge(d)",
            title="(c) sharper temperature, smaller gap")
axes[2].legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "dpah_bound_check.png")
plt.show()

# %% [markdown]
# ## The gradient: pull towards your position, push away from the competitors
#
# With the softmax $p_i = \operatorname{softmax}\big(-a_i, (-d_{ij})_{j \in N_i}\big)$ — write
# $p_{i,\text{own}}$ for its first entry and $p_{ij}$ for the others, so
# $\sum_{j \in N_i} p_{ij} = 1 - p_{i,\text{own}}$ — the bound $L^i = \log\sum e^{\text{logits}} +
# a_i$ has
#
# $$\frac{\partial L^i}{\partial \bar d_i} = (1 + \alpha)(1 - p_{i,\text{own}}), \qquad
#   \frac{\partial L^i}{\partial d_{ij}} = -p_{ij} \quad (j \in N_i).$$
#
# Every wrong anchor gets a gradient, weighted by how competitive it is ($p_{ij}$), and a
# satisfied sample keeps a small pull as long as $p_{i,\text{own}} < 1$. Through
# $\partial d(b, \theta) / \partial b = -\theta/2$ and $\partial d / \partial \theta = -b/2$,
# collecting $G_{ij} = \partial L^i / \partial d_{ij}$ in a matrix $G$ (own column
# $(1+\alpha)(1-p_{i,\text{own}})$):
#
# $$\nabla_{b_i} L = -\tfrac12 \sum_j G_{ij}\, \theta_j
#   = -\tfrac12\Big[(1+\alpha)(1-p_{i,\text{own}})\,\bar\theta_i - \sum_{j \in N_i} p_{ij}\,\theta_j\Big],
#   \qquad \nabla_{\theta_j} L = -\tfrac12 \sum_i G_{ij}\, b_i .$$
#
# A gradient step moves $b_i$ towards its own position and away from the competing ones, and
# moves each position towards its class's codes and away from the other classes' codes. We
# check these formulas against autograd:

# %%
n = 6
b6 = torch.tanh(torch.randn(n, K, generator=g, dtype=torch.float64)).requires_grad_()
th = theta.clone().requires_grad_()
y6 = y[:n]
mask6 = F.one_hot(y6, C).bool()
d6 = relaxed_hamming_distance(b6, th)
loss6 = dpah_inter_bound(d6[torch.arange(n), y6], d6, ALPHA, neg_mask=~mask6).sum()
grad_b, grad_theta = torch.autograd.grad(loss6, (b6, th))

with torch.no_grad():  # the analytic softmax form
    a6 = (1 + ALPHA) * d6[torch.arange(n), y6]
    logits = torch.cat([-a6[:, None], -d6.masked_fill(mask6, math.inf)], dim=1)
    p = torch.softmax(logits, dim=1)  # column 0: own; columns 1..C: classes (own column 0)
    G = (1 + ALPHA) * (1 - p[:, :1]) * mask6.double() - p[:, 1:]  # dL/dd, (n, C)
    grad_b_analytic = -0.5 * G @ th
    grad_theta_analytic = -0.5 * G.T @ b6

print("autograd == analytic, codes:    ",
      bool(torch.allclose(grad_b, grad_b_analytic, rtol=0, atol=1e-12)))
print("autograd == analytic, positions:",
      bool(torch.allclose(grad_theta, grad_theta_analytic, rtol=0, atol=1e-12)))
print("rows of G sum to alpha (1 - p_own):",
      bool(torch.allclose(G.sum(1), ALPHA * (1 - p[:, 0]), atol=1e-12)))
print(f"sample 0 (class {int(y6[0])}): p_own = {p[0, 0].item():.3f}; dL/dd =",
      [round(float(v), 3) for v in G[0]])

# %% [markdown]
# ## The temperature `scale`
#
# $L_{\text{inter}}$ compares distances measured **in bits**, and the softmax is not invariant
# to their unit. `DPAHLoss(scale=s)` evaluates the bound on $s\,d$, an inverse temperature:
#
# $$s\, L_{\text{hinge}}(d) \;\le\; L_{\text{inter}}(s\, d) \;\le\; s\, L_{\text{hinge}}(d) + \log 2 + \log(C - 1).$$
#
# * **Small $s$** (hot): logits differ little, the softmax is spread out; every wrong position
#   pulls and even well-separated samples keep a gradient — a soft, "global" loss that keeps
#   organising the space but never fully settles.
# * **Large $s$** (cold): $L_{\text{inter}}(s\,d) \approx s \cdot$ hinge — only the nearest wrong
#   position of a violating sample matters, and the gradients are $s$ times larger (the learning
#   rate effectively scales with $s$).
#
# Because the distances range over $[0, K]$, the same $s$ is colder at 48 bits than at 12: once
# training has put codes several bits closer to their position than to the others, $s = 1$
# (the appendix's Eq. (2) as written) already gives peaked softmaxes. The course uses
# $s = 2/\sqrt{K}$ instead (`hashlib_edu.methods.dpah.dpah_scale`), which shrinks as $K$ grows; why
# this value, and what it changes, is measured below ("What the start and the temperature do";
# exercise 3 varies it further).
#
# ## The full loss in code
#
# `hashlib_edu.methods.dpah.DPAHLoss` adds two terms to the inter-class bound:
#
# $$L = \frac1n \sum_i \Big[ L^i_{\text{inter}}(s\,d) + \lambda_{\text{intra}}\, d(b_i, \bar\theta_i)
#   + \lambda_{\text{quant}}\, \big\| |b_i| - 1 \big\|_1 \Big].$$
#
# The **intra-class pull** $d(b_i, \bar\theta_i)$ draws codes onto their position (and the
# position onto its codes) even after the ordering is right; the **quantization** term (DSH's
# regularizer) pushes $|b|$ towards 1 so that taking signs loses little.
#
# **Our choices, not the paper's:** the appendix, whose derivation this notebook follows, gives
# neither the weights of these terms nor the value of $\alpha$, nor how the positions start.
# `DPAHLoss`'s defaults are $\alpha = 0.5$, $\lambda_{\text{intra}} = 0.1$,
# $\lambda_{\text{quant}} = 0.01$ (picked on a small synthetic check). The course's `dpah_loss`
# (`hashlib_edu.methods.dpah.DPAH_SETTINGS`) keeps the two weights and uses $\alpha = 0$, no
# margin: the validation split below compares $\alpha$ over three seeds, and $\alpha = 0$ wins.
# It changes two more things: the temperature
# $s = 2/\sqrt{K}$ instead of 1, and the **start of the positions**.
# `DPAHLoss`'s default start is $A \sim N(0, 1)$, positions $\tanh(A)$ scattered around the
# zero code; the course starts them **spread out**, at $0.9\,o_j$ with OrthoHash's Hadamard
# targets $o_j$ (notebook 06), exactly $K/2$ bits apart — and still learns them (at
# $|\theta| = 0.9$ the tanh still passes a fifth of the gradient). The section "What the start
# and the temperature do" compares each change alone on a validation split of the training
# images (never on the test queries).
#
# The three-sample example of the package's tests ($K = 2$, $C = 3$, positions
# $(\pm 0.6, \pm 0.6)$, codes given directly, `output_activation=None`), by hand in
# `tests/methods/test_dpah.py`:

# %%
toy = DPAHLoss(2, 3, alpha=0.5, scale=1.0, intra_weight=0.1, quant_weight=0.01,
               output_activation=None).double()
toy.set_positions(torch.tensor([[0.6, 0.6], [0.6, -0.6], [-0.6, -0.6]], dtype=torch.float64))
b_toy = torch.tensor([[1.0, 1.0], [0.5, -1.0], [1.0, 0.0]], dtype=torch.float64)
y_toy = torch.tensor([0, 1, 2])
with torch.no_grad():
    d_toy = toy.distances(b_toy)
    d_own_toy = d_toy[torch.arange(3), y_toy]
    neg = ~F.one_hot(y_toy, 3).bool()
    print("distances d(b_i, theta_j):\n", d_toy.numpy().round(4))
    print("hinge per sample:", dpah_inter_hinge(d_own_toy, d_toy, 0.5, neg).numpy().round(4))
    print("bound per sample:", dpah_inter_bound(d_own_toy, d_toy, 0.5, neg).numpy().round(4))
    print("terms:", {name: round(v.item(), 4) for name, v in toy.terms(b_toy, y_toy).items()},
          "-> loss", round(toy(b_toy, y_toy).item(), 4))
print(toy)

# the number of terms per batch: positions vs pairs
for n_items in (128, 5000):
    print(f"n = {n_items:>5}: code-position distances n*C = {n_items * 10:>7,}, "
          f"pairs n(n-1)/2 = {n_items * (n_items - 1) // 2:>10,}")

# %% [markdown]
# Training is the usual loop; the only DPAH-specific line is that the loss's positions are
# parameters too, optimized with the network:
#
# ```python
# loss_fn = dpah_loss(bits, 10)  # DPAHLoss with the course's start and temperature
# optimizer = torch.optim.SGD([{"params": model.parameters()},
#                              {"params": loss_fn.parameters(), "weight_decay": 0.0}],
#                             lr=0.1, momentum=0.9, weight_decay=1e-3)
# for x, y in loader:
#     loss = loss_fn(model(x), y)   # model(x): (n, K) real outputs
#     optimizer.zero_grad(); loss.backward(); optimizer.step()
# ```
#
# The positions get **no weight decay**: they are not weights but points in code space, and
# decay would pull every one of them toward the zero code. `hashlib_edu.training.train_model`
# (through which `run` trains every model) does exactly this (it adds the loss's parameters to the optimizer and saves the positions in
# the checkpoint) with `dpah_recipe`, OrthoHash's recipe (and the SGD recipe notebook 03 starts
# CNNBH from):
# SGD with momentum 0.9, weight decay $10^{-3}$, a one-cycle learning rate up to 0.1,
# pad-and-crop + flip, batch 128, 60 epochs — and, as OrthoHash, BatchNorm on the latent
# (`latent_bn=True`). The spread start and the temperature $s = 2/\sqrt{K}$ matter under this
# recipe: the section "What the start and the temperature do" trains all four combinations of
# start and temperature and separates the two.
#
# ## Table 1 of the appendix: CIFAR-10 mAP at 12–48 bits
#
# The paper's numbers (CIFAR-10, 1,000 queries, 5,000 training images, the rest as database —
# our `cifar10-1k` protocol) come from an ImageNet-pretrained backbone on upscaled images. Ours
# come in three regimes:
#
# * **scratch** (trained in this notebook): the shared small backbone trained from scratch on
#   the 32×32 images, one model per code length;
# * **finetune-last** and **frozen** (read from `results/`, written by
#   `python -m hashlib_edu.reproduce --regime finetune-last --backbone efficientnet_lite0` and
#   `--regime frozen`): an ImageNet-pretrained EfficientNet-Lite0 at 224 px whose last stage is
#   fine-tuned together with the code layer, or kept frozen with only the code layer trained.
#   That is the paper's regime, sized for a CPU. These stored rows were trained with the loss's
#   $\alpha = 0.5$ (their `loss` field records it), not the course's $\alpha = 0$ chosen below;
#   `python -m hashlib_edu.reproduce --regime finetune-last --methods dpah` (and
#   `--regime frozen`) retrains them with the course's $\alpha = 0$. The frozen row has 48 bits
#   only.
#
# A finished checkpoint is loaded instead of training again (`train min` is the time training
# actually took). Our headline number is the **tie-aware** mAP@all: many database codes share
# a Hamming distance with the query, and since the database is stored class by class, keeping
# ties in database order would bias mAP (notebook 01). The paper does not say how it breaks
# ties.

# %%
# NBVAL_IGNORE_OUTPUT
# Every model of this notebook is one Experiment (method, settings, code length, data, budget,
# seed); `run` trains it or loads its finished checkpoint, then encodes, evaluates and saves.
headline_spec = Experiment("dpah", 48, profile=PROFILE, seed=SEED, epochs=EPOCHS,
                           **choice.fields)
print("headline settings:", headline_spec.settings)
print(headline_spec.recipe)
# appendix Table 1, CIFAR-10 columns (paper numbers, pretrained backbones)
PAPER_TABLE1 = {
    "DSDH": {12: 0.740, 24: 0.786, 32: 0.801, 48: 0.820},
    "TALR": {12: 0.732, 24: 0.789, 32: 0.800, 48: 0.826},
    "HBMP": {12: 0.799, 24: 0.804, 32: 0.830, 48: 0.831},
    "GreedyHash": {12: 0.774, 24: 0.795, 32: 0.810, 48: 0.822},
    "DPAH": {12: 0.810, 24: 0.825, 32: 0.838, 48: 0.845},
}


def anchor_stats(model, loss_fn, on=data) -> dict:
    """Positions' codes sign(theta): min/mean pairwise Hamming distance, and how often a
    query's code (of the protocol ``on``) is nearest, in Hamming distance, to its own class's
    position."""
    anchors = sign(loss_fn.positions.detach().cpu())
    dist = hamming_distance(anchors, anchors)
    off = dist[~np.eye(len(dist), dtype=bool)]
    q = encode(model, on.images("query"))
    nearest = hamming_distance(q, anchors).argmin(1)
    return {"min anchor distance": int(off.min()), "mean anchor distance": float(off.mean()),
            "nearest-anchor accuracy": float((nearest == on.part_labels("query")).mean())}


models, losses, results, stats, starts = {}, {}, {}, {}, {}
# Measured here (quick, 2 CPU cores): the 4 models took 7.8 min of training (1.9-2.1 min each).
# From a fresh clone the whole notebook ran in 12.1 min; with every model trained, about 1 min.
print(training_plan(len(BITS), EPOCHS, backbone=BACKBONE, device=DEVICE))
for bits in BITS:
    spec = headline_spec.replace(bits=bits)
    # the positions before training: the same loss, built with the same seed
    starts[bits] = sign(spec.settings.loss(bits, N_CLASSES, SEED).positions.detach())
    result = run(spec, data=data, device=DEVICE)
    models[bits], losses[bits], results[bits] = result.model, result.loss, result.record
    stats[bits] = anchor_stats(models[bits], losses[bits])

BACKBONE_NAME = ("small backbone from scratch" if REGIME == "scratch"
                 else f"pretrained {BACKBONE}, fine-tuned")


def saved_tie_aware(method: str, regime: str, backbone: str) -> dict[int, float]:
    """Tie-aware mAP@all by bits of ``method``'s saved results in one regime (may be empty)."""
    return {r["bits"]: r["map_tie_aware"]
            for r in load_results("cifar10-1k", method, profile=PROFILE, regime=regime,
                                  backbone=backbone) if r.get("profile") == PROFILE}


PRETRAINED_ROWS = {"finetune-last": "EfficientNet-Lite0, last stage fine-tuned",
                   "frozen": "EfficientNet-Lite0 frozen, code layer only"}
pretrained_dpah = {regime: saved_tie_aware("dpah", regime, "efficientnet_lite0")
                   for regime in PRETRAINED_ROWS}
table = {f"DPAH (ours: {BACKBONE_NAME}, {EPOCHS} epochs)":
         {b: results[b]["map_tie_aware"] for b in BITS}}
for regime, label in PRETRAINED_ROWS.items():
    if pretrained_dpah[regime]:
        table[f"DPAH (ours: {label})"] = pretrained_dpah[regime]
    else:
        print(f"No {regime} results for the {PROFILE!r} profile: run `python -m "
              f"hashlib_edu.reproduce --profile {PROFILE} --regime {regime} "
              "--backbone efficientnet_lite0 --methods dpah` to add that row.")
table.update({f"{m} (paper{', pretrained' if m == 'DPAH' else ''})": v
              for m, v in reversed(PAPER_TABLE1.items())})
table1 = pd.DataFrame(table).T.reindex(columns=sorted(set(BITS) | {12, 24, 32, 48}))
table1.columns = [f"{b} bits" for b in table1.columns]
table1.round(3)

# %%
# NBVAL_IGNORE_OUTPUT
pd.DataFrame([{"bits": b, "tie-aware mAP": r["map_tie_aware"], "mAP (paper)": r["paper_map"],
               "mAP, ties in database order": r["map"], "mAP@1000": r["map_at_1000"],
               "P@H≤2": r["p_at_h2"], "empty H≤2": r["p_at_h2_empty_fraction"],
               **stats[b], "train min": r["train_seconds"] / 60}
              for b, r in results.items()]).set_index("bits").round(3)

# %% [markdown]
# `nearest-anchor accuracy` classifies each query by the nearest position code
# $\operatorname{sign}(\theta_j)$: DPAH's positions double as a nearest-centroid classifier.
#
# ## Against the other methods on the same backbone
#
# The course's other methods write their results to `results/cifar10-1k/` too: CNNBH
# (notebook 03: the same convolutional stack with a classifier and a linear knob, same
# epochs), OrthoHash (notebook 06: the same `BackboneWithCodeLayer`) and DSH if its notebook ran on this
# protocol. Methods without results for this profile are left out with a note — run their
# notebooks first. The target set for this notebook: **at 48 bits, DPAH above DSH and CNNBH**
# on the same backbone and budget. The verdict below is computed from the saved results
# (tie-aware mAP@all).

# %%
# NBVAL_IGNORE_OUTPUT
OTHERS = {"CNNBH": "cnnbh", "DSH": "dsh", "OrthoHash": "orthohash"}
others = {}
for label, method in OTHERS.items():
    # quick and paper share results/: keep this profile's records only
    records = [r for r in load_results("cifar10-1k", method, profile=PROFILE)
               if r.get("profile") == PROFILE]
    if records:
        others[label] = {r["bits"]: r["map_tie_aware"] for r in records}
    else:
        print(f"{label}: no cifar10-1k results for the {PROFILE!r} profile (method {method!r}); "
              "left out.")
ours = {b: results[b]["map_tie_aware"] for b in BITS}
compare = pd.DataFrame({"DPAH": ours, **others}).T.reindex(columns=BITS)
compare.columns = [f"{b} bits" for b in BITS]
display(compare.round(3))

TARGET_BITS = 48 if 48 in BITS else max(BITS)
verdicts = []
for label in ("DSH", "CNNBH"):
    theirs = others.get(label, {}).get(TARGET_BITS)
    if theirs is None:
        print(f"{label} at {TARGET_BITS} bits: not available, cannot compare.")
        verdicts.append(None)
    else:
        above = ours[TARGET_BITS] > theirs
        print(f"DPAH {ours[TARGET_BITS]:.3f} vs {label} {theirs:.3f} at {TARGET_BITS} bits: "
              f"{'above' if above else 'NOT above'} ({ours[TARGET_BITS] - theirs:+.3f})")
        verdicts.append(above)
status = ("reached" if all(v is True for v in verdicts) else
          "not reached" if any(v is False for v in verdicts) else "undecided (missing results)")
print(f"Target 'above DSH and CNNBH at {TARGET_BITS} bits': {status}. "
      f"Paper DPAH at 48 bits: {PAPER_TABLE1['DPAH'][48]:.3f} (pretrained backbone).")

fig, ax = plt.subplots(figsize=(7.5, 4.5))
plot_metric_vs_bits({"DPAH": ours, **others}, paper=PAPER_TABLE1, ax=ax,
                    title="CIFAR-10 (cifar10-1k): ours (solid) vs the appendix's Table 1 "
                          "(dashed)", save="dpah_map_vs_bits.png")
plt.show()

# %% [markdown]
# ### The gap to the paper
#
# The cell below measures the gap at each code length, for the model trained from scratch here
# and for the pretrained regimes.
# %%
# NBVAL_IGNORE_OUTPUT
paper_dpah = PAPER_TABLE1["DPAH"]
gap_rows = {f"scratch ({EPOCHS} epochs)": ours,
            **{f"{regime} (EfficientNet-Lite0)": maps for regime, maps in pretrained_dpah.items()
               if maps}}
gaps = pd.DataFrame({name: {f"{b} bits": paper_dpah[b] - maps[b] for b in sorted(maps)
                            if b in paper_dpah} for name, maps in gap_rows.items()}).T
print("paper DPAH minus ours (tie-aware mAP@all; positive: the paper is ahead)")
display(gaps.round(3))
for name, maps in gap_rows.items():
    common = [b for b in maps if b in paper_dpah]
    if common:
        print(f"{name}: {np.mean([paper_dpah[b] - maps[b] for b in common]):+.3f} on average "
              f"over {len(common)} code lengths")

# %% [markdown]
# Where our numbers fall short of the appendix's, the main reasons are:
#
# * **Backbone.** The appendix's numbers come from an ImageNet-pretrained network (the appendix
#   does not name it) fed with upscaled images: most of its features were learned from 1.2
#   million images before it saw CIFAR-10. Our scratch model is a small convolutional stack
#   (about 76k parameters before the hash layer) trained on the 5,000 training images at
#   32×32 — the same for every method here, so the *comparison between methods* is fair, while
#   the comparison with the paper mostly measures the backbone. The pretrained rows show how
#   much of the gap an ImageNet backbone closes. Compare the frozen and the finetune-last rows:
#   with frozen features only the code layer learns, so the features stay those learned for
#   ImageNet's 1,000 classes; fine-tuning the last stage together with the code layer lets the
#   features adapt to the hashing loss. This co-adaptation of features and codes is CNNBH's own
#   conclusion (notebook 03).
# * **Budget.** 60 epochs on a CPU in `quick` for scratch, 20 for finetune-last (the
#   `train min` column above); the appendix does not give the paper's schedule.
# * **Data.** Our CIFAR-10 copy is JPEG-compressed (slightly lossy), the paper used the
#   original images.
# * **Hyper-parameters.** The term weights, the temperature and the positions' start are ours;
#   $\alpha$, the temperature and the start are compared on the validation split below.
#
# The `paper` profile (GPU) switches to the paper's setting: `BACKBONE = "alexnet"`, an
# ImageNet-pretrained AlexNet from torchvision (`hashlib_edu.backbones.pretrained_with_code_layer`: the
# 32×32 batches are resized to 224×224 inside the model), fine-tuned for 100 epochs with
# `pretrained_recipe` (Adam at $10^{-4}$, the backbone at a tenth of it, batch 256). Its
# weights are downloaded by torchvision, so it needs internet access (Colab has it): offline
# it stops with a clear error and never falls back to random weights. The comparison with the
# other methods in the table above then mixes backbones — read it as "the paper's setting vs
# ours", not method against method.
#
# ## A sweep of α at SWEEP_BITS bits, on the validation split
#
# $\alpha$ sets the relative margin: $\alpha = 0$ only asks the own position to be the nearest;
# $\alpha = 1$ asks it to be twice as close as any other.
#
# **Settings are chosen on a validation split, never on the test queries.** Choosing $\alpha$
# by the queries' mAP would tune on the test set: the number we then report would be
# optimistic. `validation_protocol(data)` holds out 10% of the 5,000 training images (class
# balanced) as validation queries; the models below train on the other 4,500 images, which
# are also the database they search. The protocol's 1,000 queries and 59,000 database images
# are never touched. The sweep uses a shorter schedule (`SWEEP_EPOCHS`), so compare these
# models with each other, not with Table 1.

# %%
# NBVAL_IGNORE_OUTPUT
sweep_spec = headline_spec.replace(bits=SWEEP_BITS, protocol=val_data.protocol,
                                   epochs=SWEEP_EPOCHS)


def train_on_validation(label: str, seed: int = SEED, **settings) -> tuple[dict, dict]:
    """Train (or load) one sweep model -- the course's DPAH with ``settings`` changed -- on the
    validation protocol's training images and evaluate it on its validation queries; its
    results are saved under ``label``. Returns (record, anchor statistics)."""
    result = run(sweep_spec.replace(settings=settings, seed=seed, label=label), data=val_data,
                 device=DEVICE)
    return result.record, anchor_stats(result.model, result.loss, on=val_data)


# Measured here (quick, 2 CPU cores): the 7 models of this cell and the next, 1.9 min of training.
ALPHAS = (0.0, 0.1, 0.5, 1.0)
print(training_plan(len(ALPHAS) + 3, SWEEP_EPOCHS, backbone=BACKBONE, device=DEVICE),
      f"(this cell and the next; {len(val_data.train_idx):,} training images each)")
rows = []
for alpha in ALPHAS:
    r, anchors_a = train_on_validation(f"dpah_alpha{alpha:g}", alpha=alpha)
    rows.append({"alpha": alpha, "validation mAP": r["map_tie_aware"], "P@H≤2": r["p_at_h2"],
                 **anchors_a, "train min": r["train_seconds"] / 60})
sweep = pd.DataFrame(rows).set_index("alpha")
best_alpha = sweep["validation mAP"].idxmax()
default_alpha = dpah_loss(SWEEP_BITS, N_CLASSES).alpha
print(f"{SWEEP_BITS} bits, {SWEEP_EPOCHS} epochs, validation split; best alpha by tie-aware "
      f"mAP: {best_alpha:g} ({sweep.loc[best_alpha, 'validation mAP']:.3f}); the course's "
      f"default alpha = {default_alpha:g} scores {sweep.loc[default_alpha, 'validation mAP']:.3f}"
      f" ({sweep.loc[default_alpha, 'validation mAP'] - sweep.loc[best_alpha, 'validation mAP']:+.3f}).")
sweep.round(3)

# %% [markdown]
# One seed is not enough to choose: retraining with another seed moves a model by about as much
# as $\alpha$ does. So we train the two settings that matter — no margin ($\alpha = 0$) and the
# loss's default ($\alpha = 0.5$) — with two more seeds each. The rule:
# switch from the loss's default only if the other setting is ahead **on average by more than
# 0.01** (the tie margin notebook 06 uses too) **and on every seed**.

# %%
# NBVAL_IGNORE_OUTPUT
# Measured here (quick, 2 CPU cores): the 4 models took 1.0 min of training.
SEEDS = (SEED, SEED + 1, SEED + 2)
print(training_plan(2 * (len(SEEDS) - 1), SWEEP_EPOCHS, backbone=BACKBONE, device=DEVICE))
by_seed = {}
for alpha in (0.0, 0.5):
    by_seed[alpha] = {SEED: sweep.loc[alpha, "validation mAP"]}
    for seed in SEEDS[1:]:
        r, _ = train_on_validation(f"dpah_alpha{alpha:g}_seed{seed}", seed=seed, alpha=alpha)
        by_seed[alpha][seed] = r["map_tie_aware"]
seeds_table = pd.DataFrame(by_seed).rename(columns=lambda a: f"alpha = {a:g}")
seeds_table.index.name = "seed"
decision = choose("alpha = 0.5", "alpha = 0", by_seed[0.5], by_seed[0.0])  # the course's rule
agrees = (default_alpha == 0.0) == decision.switch
display(Markdown(
    f"**The rule on this run.** {decision.describe()} The course's DPAH uses "
    f"α = {default_alpha:g} (`DPAH_SETTINGS`). "
    + ("That is the rule's choice here." if agrees else
       "On this run the rule does not pick it: the gaps are about the size of the seed-to-seed "
       f"spread, and this comparison runs {SWEEP_EPOCHS} epochs where the headline trains "
       f"{EPOCHS}, so the choice of α is not settled (exercise 3 asks you to redo it).")))
seeds_table.round(4)

# %% [markdown]
# ### What the start and the temperature do
#
# The course also changed two more of `DPAHLoss`'s defaults; here is each change alone, at the
# course's $\alpha$, on the same validation split and schedule (the last row is the sweep's model
# at that $\alpha$).
#
# * **Temperature.** For binary codes and positions $b^\top\theta = K\cos(b, \theta)$, so
#   $-s\,d = \tfrac{sK}{2}\,(\cos(b,\theta) - 1)$: with $s = 2/\sqrt{K}$ the softmax sees
#   $\sqrt{K}\cos$ plus a constant — exactly OrthoHash's logits at its default scale
#   $\sqrt{K}$ (notebook 06), at every code length. $s = 1$ is $\sqrt{K}/2$ times colder
#   (2.8× at 32 bits).
# * **Start.** From the Gaussian start every position begins near the zero code, and the
#   intra-class pull drags each towards the codes of its class — which, early in training,
#   all look alike. From the spread start the positions begin $K/2$ bits apart and only have
#   to stay there.

# %%
# NBVAL_IGNORE_OUTPUT
start_rows = []
for init, scale in (("normal", 1.0), ("normal", None), ("hadamard", 1.0)):  # None: 2/sqrt(K)
    r, anchors_i = train_on_validation(f"dpah_{init}_s{'1' if scale == 1.0 else '2rk'}",
                                       init=init, scale=scale)  # alpha: the course's
    scale = dpah_scale(SWEEP_BITS) if scale is None else scale
    start_rows.append({"start": init, "scale s": f"{scale:.3f}",
                       "validation mAP": r["map_tie_aware"], "P@H≤2": r["p_at_h2"],
                       **anchors_i, "train min": r["train_seconds"] / 60})
start_rows.append({"start": "hadamard", "scale s": f"{dpah_scale(SWEEP_BITS):.3f}",
                   **sweep.loc[default_alpha].to_dict()})
starts_table = pd.DataFrame(start_rows).set_index(["start", "scale s"])
best_start = starts_table["validation mAP"].idxmax()
print(f"{SWEEP_BITS} bits, {SWEEP_EPOCHS} epochs, alpha {default_alpha:g}, validation split; "
      f"s = 2/sqrt(K) = "
      f"{dpah_scale(SWEEP_BITS):.3f}; the last row is the course's setting. Best on validation: "
      f"start {best_start[0]!r}, s = {best_start[1]}.")
starts_table.round(3)

# %% [markdown]
# On the validation split the **temperature** is what matters. At the appendix's $s = 1$ both
# starts score lowest (0.389 from the Gaussian start, 0.344 from the spread start). With
# $s = 2/\sqrt{K}$ both gain, by 0.08 and 0.13 (to 0.473 and 0.470). The **start** mostly
# decides where the positions end up. From the Gaussian start they end closer together: their
# minimum distance is 10 bits at $s = 1$ and 8 bits at $s = 2/\sqrt{K}$, against $K/2 = 16$.
# From the spread start every pair stays exactly 16 bits apart, at both temperatures. A cold
# softmax ($s = 1$) is satisfied early: once a code is a few bits closer to its own position than
# to the others, the inter-class term has little gradient left to keep organising the space. So
# the validation split confirms the temperature. At $s = 2/\sqrt{K}$ the Gaussian start is 0.003
# ahead, with one seed: a tie within 0.01, smaller than a seed-to-seed change. The course keeps
# the spread start because it also keeps the positions $K/2$ apart.
#
# **And $\alpha$?** With seed 0, validation mAP spans 0.446–0.473 across
# $\alpha \in \{0, 0.1, 0.5, 1\}$ (0.470, 0.473, 0.446, 0.460): $\alpha = 0.1$ scores highest,
# but only 0.003 above $\alpha = 0$, a tie; the loss's default $\alpha = 0.5$ scores lowest. The
# three-seed table decides: $\alpha = 0$ beats $\alpha = 0.5$ by 0.024, 0.022 and 0.012 (mean
# 0.019), on every seed, while each setting moves by at most 0.018 from one seed to another
# (0.458–0.470 for $\alpha = 0$, 0.437–0.455 for $\alpha = 0.5$). By the rule $\alpha = 0$ is
# chosen, and the course's `dpah_loss` uses it: the headline models above and the start and
# temperature models were trained with it. At this scale the relative margin that motivates
# DPAH's bound does not help — with $\alpha = 0$ the hinge only asks the own position to be the
# nearest, and the bound is the plain softmax cross-entropy over negated distances. The headline
# is still DPAH's position-aware anchors and its LogSumExp bound, just without the margin.
# Exercise 3 asks you to put $\alpha = 0.1$ through the same test.
#
# ## Where did the positions go?
#
# After training, take each position's code $\operatorname{sign}(\theta_j)$ and compute all
# pairwise Hamming distances. Ten codes of $K$ bits chosen **independently at random** sit about
# $K/2$ apart; codes that are **orthogonal** ($\theta_i^\top \theta_j = 0$) are exactly $K/2$
# apart. If the learned positions spread out as far as the classes allow, their minimum distance
# should approach $K/2$ — which is exactly what OrthoHash (notebook 06) builds in from the start
# with **fixed** Bernoulli or Hadamard targets. Our positions *start* at the Hadamard targets
# (scaled by 0.9): the table says whether training kept them apart, how many of their bits
# flipped, and compares them with the fixed targets at the same $K$.

# %%
# NBVAL_IGNORE_OUTPUT
k = max(BITS)
anchors_k = sign(losses[k].positions.detach().cpu())
dist_k = hamming_distance(anchors_k, anchors_k)
fig, ax = plt.subplots(figsize=(6.2, 5.2))
im = ax.imshow(dist_k, cmap="viridis", vmin=0, vmax=k)
for i in range(N_CLASSES):
    for j in range(N_CLASSES):
        ax.text(j, i, int(dist_k[i, j]), ha="center", va="center", fontsize=8,
                color="white" if dist_k[i, j] < k / 2 else "black")
ax.set_xticks(range(N_CLASSES), CLASSES, rotation=60, fontsize=8)
ax.set_yticks(range(N_CLASSES), CLASSES, fontsize=8)
fig.colorbar(im, ax=ax, label="Hamming distance")
off = dist_k[~np.eye(N_CLASSES, dtype=bool)]
ax.set_title(f"sign(positions), {k} bits: min {off.min()}, mean {off.mean():.1f}, K/2 = {k // 2}")
save_figure(fig, "dpah_anchor_distances.png")
plt.show()

pd.DataFrame([{"bits": b, "K/2": b // 2,
               "learned: min": stats[b]["min anchor distance"],
               "learned: mean": stats[b]["mean anchor distance"],
               "bits flipped since the start": int((sign(losses[b].positions.detach().cpu())
                                                    != starts[b]).sum()),
               "|theta| > 0.95": float((losses[b].positions.detach().abs() > 0.95)
                                       .float().mean()),
               "Bernoulli targets: min": min_hamming_distance(bernoulli_targets(
                                                                N_CLASSES, b, SEED)),
               "Hadamard targets: min": min_hamming_distance(hadamard_targets(
                                                               N_CLASSES, b, SEED))}
              for b in BITS]).set_index("bits").round(2)

# %% [markdown]
# `|theta| > 0.95` is the fraction of position entries that are nearly binary (they start at
# 0.9): the intra-class pull drags each position towards its class's codes, which the
# quantization term keeps near $\pm 1$ — the higher this fraction, the more the positions have
# themselves become codes. `bits flipped since the start` counts, over all ten positions, the
# entries whose sign training changed.
# In the heat map, look at visually similar classes (cat/dog, automobile/truck): are their
# positions closer than the rest? A learned layout *can* keep such semantic neighbourhoods,
# which fixed targets cannot — at the price of a smaller minimum distance. Here, at 48 bits,
# every distance that moved away from $K/2 = 24$ involves bird, cat or deer: the closest pair is
# cat/deer (20 bits), bird is 21 bits from both, cat/dog end 22 apart, while automobile/truck
# stay at 24.
# The table above shows how little the positions moved overall: at 12 bits no bit flipped and
# every pair is still $K/2$ apart; at 48 bits 5 of the 480 entries changed sign.
#
# ## Intra- and inter-class Hamming distances of the codes
#
# For a random subsample of 2,000 database codes, the distances between codes of the same class
# (intra) and of different classes (inter), with the separability $E[D_\text{inter}] -
# E[D_\text{intra}]$ of `hashlib_edu.analysis` (notebook 06 shows the same plot for OrthoHash);
# on the right, each code's distance to its own
# position code and to the nearest other one — what the loss optimizes.

# %%
# NBVAL_IGNORE_OUTPUT
db_codes = load_codes(results[k]["codes_path"])["db_codes"]  # as run stored them
db_labels = data.part_labels("database")
intra, inter = intra_inter_distances(db_codes, db_labels, max_items=2000, seed=SEED)
sub = np.random.default_rng(SEED).permutation(len(db_codes))[:2000]
codes_s, labels_s = db_codes[sub], db_labels[sub]
to_anchor = hamming_distance(codes_s, anchors_k)
own_d = to_anchor[np.arange(len(sub)), labels_s]
other_d = np.where(np.eye(N_CLASSES, dtype=bool)[labels_s], k + 1, to_anchor).min(1)

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
edges = np.arange(k + 2) - 0.5
plot_histograms({f"intra-class (mean {intra.mean():.1f})": intra,
                 f"inter-class (mean {inter.mean():.1f})": inter}, bins=edges,
                xlabel="Hamming distance", ax=axes[0],
                title=f"{k}-bit codes, {len(sub)} database items: separability "
                      f"{separability(intra, inter):.1f} bits")
plot_histograms({"to own position": own_d, "to nearest other position": other_d}, bins=edges,
                xlabel="Hamming distance to sign(theta)", ax=axes[1],
                title=f"nearer to own position: {(own_d < other_d).mean():.1%} of codes")
fig.tight_layout()
save_figure(fig, "dpah_hamming_histograms.png")
plt.show()

# %% [markdown]
# ## t-SNE of the codes, with the positions
#
# A 2-D t-SNE map (scikit-learn, fixed `random_state`) of database codes together with the ten
# position codes $\operatorname{sign}(\theta_j)$ (stars), embedded in the same run so that they
# share the map.

# %%
# NBVAL_IGNORE_OUTPUT
n_tsne, n_iter = (300, 250) if PROFILE == "smoke" else (2000, 1000)  # smoke: just run it
pick = sub[:n_tsne]
points = np.concatenate([db_codes[pick], anchors_k]).astype(np.float32)
xy = TSNE(n_components=2, perplexity=30, init="pca", max_iter=n_iter,
          random_state=SEED).fit_transform(points)
fig, ax = plt.subplots(figsize=(7, 6))
for c in range(N_CLASSES):
    m = db_labels[pick] == c
    ax.scatter(xy[:n_tsne][m, 0], xy[:n_tsne][m, 1], s=5, alpha=0.5, color=f"C{c}",
               label=CLASSES[c])
for c in range(N_CLASSES):
    ax.scatter(*xy[n_tsne + c], marker="*", s=350, color=f"C{c}", edgecolor="black", zorder=3)
    ax.annotate(CLASSES[c], xy[n_tsne + c], fontsize=8, xytext=(6, 6),
                textcoords="offset points", weight="bold")
ax.set_xticks([])
ax.set_yticks([])
ax.set_title(f"t-SNE of {n_tsne} database codes ({k} bits); stars: sign(positions)")
ax.legend(fontsize=7, markerscale=3, loc="best")
save_figure(fig, "dpah_tsne.png")
plt.show()


# %% [markdown]
# ## Exercises
#
# 1. **Implement the bound.** Write `my_dpah_bound(d_own, d_neg, alpha)` returning the `(n,)`
#    values $-\log\big(e^{-(1+\alpha)\bar d} / (e^{-(1+\alpha)\bar d} + \sum_j e^{-d_j})\big)$ for
#    `d_own` of shape `(n,)` and `d_neg` of shape `(n, M)` (the other classes only), and check
#    it with `hashlib_edu.exercises.check_dpah_bound`. The formula typed as written is correct
#    on paper but fails the checker's last case — see why below, then make yours pass all four.
# 2. **Implement the distance.** Write `my_relaxed_hamming_distance(b, theta)` returning the
#    `(n, C)` relaxed Hamming distances $d(b_i, \theta_c) = \tfrac12 (K - b_i^\top \theta_c)$
#    between `(n, K)` codes and `(C, K)` positions, both in $[-1, 1]$, without a Python loop,
#    and check it with `hashlib_edu.exercises.check_relaxed_hamming_distance`.
# 3. **Temperature and margin.** Retrain the `SWEEP_BITS`-bit model with `scale=0.25` and
#    `scale=4` (`train_on_validation(name, scale=s)`: on the
#    validation split, `SWEEP_EPOCHS` epochs). How do the validation mAP, P@H≤2 and the minimum
#    position distance change? Relate it to the inequality in "The temperature `scale`". Then
#    test $\alpha = 0.1$, the sweep's best with seed 0, the way the notebook tests $\alpha = 0$:
#    train it with seeds 1 and 2 (`train_on_validation(f"dpah_alpha0.1_seed{s}", seed=s,
#    alpha=0.1)`). Does it pass the rule against the course's $\alpha = 0$? Finally redo the
#    choice between $\alpha = 0$ and $0.5$ at the headline's budget: rebuild `sweep_spec` with
#    `epochs=EPOCHS` and rerun the two cells above. Does the rule's verdict hold?
# 4. **Fixed positions.** Freeze the course's positions at their start —
#    `loss = dpah_loss(K, 10)` then `loss.anchors.requires_grad_(False)` before training — so
#    that DPAH keeps OrthoHash-style fixed targets. Better or worse than learned positions at
#    12 and at 48 bits? Why might learning matter more for short codes?
# 5. **Multi-label.** `DPAHLoss` accepts `(n, C)` multi-hot labels, with the own position the
#    mean of the labels' positions. Show that $d(b, \bar\theta) = \frac1{|Y|}\sum_{j \in Y}
#    d(b, \theta_j)$, and explain what the inter term asks of an image that carries *every*
#    label (check `DPAHLoss.terms` on such a sample).
# 6. **The whole backbone (GPU advised).** The pretrained rows above fine-tune only
#    EfficientNet-Lite0's last stage. Run this notebook with `BACKBONE = "efficientnet_lite0"`
#    (offline) or `"alexnet"` (the papers' network, downloaded) and a short `EPOCHS` to
#    fine-tune the whole network end to end. How much of the remaining gap to Table 1 does it
#    close, and at what cost in time?

# %%
def naive_bound(d_own, d_neg, alpha):
    """Eq. (2) typed as written: right in exact arithmetic, but e^{-d} underflows in float32."""
    a = (1 + alpha) * d_own
    return -torch.log(torch.exp(-a) / (torch.exp(-a) + torch.exp(-d_neg).sum(dim=1)))


check_dpah_bound(naive_bound)


# %%
def my_dpah_bound(d_own, d_neg, alpha):
    """Exercise 1: your numerically stable version (hint: torch.logsumexp)."""
    raise NotImplementedError


check_dpah_bound(my_dpah_bound)


# %%
def my_relaxed_hamming_distance(b, theta):
    """Exercise 2: (n, K) codes and (C, K) positions in [-1, 1] -> (n, C) distances."""
    raise NotImplementedError


check_relaxed_hamming_distance(my_relaxed_hamming_distance)

# %% [markdown]
# ## What to notice
#
# * DPAH's inter-class loss is a **classifier**: softmax cross-entropy over negated distances
#   to learned positions, with the own logit handicapped by $1 + \alpha$. The LogSumExp and
#   softplus steps make it a smooth upper bound of the margin hinge, never more than
#   $\log 2 + \log(C - 1)$ above it (scaled by $1/s$ in bit units), and every wrong position gets
#   a gradient weighted by its softmax probability.
# * Code-to-position terms scale as $n \cdot C$, not $n^2$; the positions carry the global
#   layout across batches.
# * The temperature matters because distances are in bits: the same `scale` is colder at 48
#   bits than at 12; $s = 2/\sqrt{K}$ gives the softmax OrthoHash's logits at every length.
# * Compare Table 1 above with the paper's: at 48 bits DPAH beats CNNBH (0.639 vs 0.590) and
#   DSH (0.480) on our shared backbone. The gap to the paper's 0.845 is mostly the backbone:
#   about 0.21 from scratch (0.594–0.639 against the paper's 0.810–0.845) and 0.09 with
#   EfficientNet-Lite0's last stage fine-tuned, on average over the four code lengths; 0.18 at
#   48 bits with it frozen (the gap table). Those two pretrained rows were trained with
#   $\alpha = 0.5$; `python -m hashlib_edu.reproduce --regime finetune-last --methods dpah`
#   retrains them with the course's $\alpha = 0$.
# * On the validation split the temperature matters most: $s = 1$ loses 0.08–0.13 against
#   $s = 2/\sqrt{K}$. Dropping the margin ($\alpha = 0$) gains 0.019 over $\alpha = 0.5$ on
#   average over three seeds, ahead on every seed, so the course uses $\alpha = 0$; the two
#   starts tie (0.003 apart, one seed). The start decides whether the learned positions stay
#   apart: from the spread start a 10-epoch model keeps all of them $K/2$ bits apart, from the
#   Gaussian start the closest pair ends 8–10 bits apart. The 60-epoch headline models barely
#   drift — training flipped 0–5 of their position bits, and the closest pair ends 6 bits apart
#   at 12 bits (exactly $K/2$) and 20 at 48 bits (of 24; the positions table). The next
#   notebook asks what is left if we stop learning the positions and simply fix them far apart.
