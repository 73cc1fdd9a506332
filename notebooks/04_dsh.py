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
# # 04 · DSH: a pairwise loss on relaxed codes, its regularizer, and ensembles
#
# **Paper:** Haomiao Liu, Ruiping Wang, Shiguang Shan, Xilin Chen, "Deep Supervised Hashing
# for Fast Image Retrieval", CVPR 2016.
# <https://openaccess.thecvf.com/content_cvpr_2016/html/Liu_Deep_Supervised_Hashing_CVPR_2016_paper.html>
# (Tables 1–4 below are those of its supplementary material.)
#
# CNNBH (notebook 03) never tells the network that its outputs will be compared *with each
# other*: it trains a classifier and takes signs. DSH trains the codes for retrieval directly.
# It looks at **pairs** of images: similar pairs should get nearby codes, dissimilar pairs
# distant ones. Two obstacles, and DSH's answers:
#
# * **Binary codes have no gradient.** DSH relaxes them to real outputs $b \in \mathbb{R}^k$ and
#   adds a *regularizer* that pulls every output towards $\pm 1$, so that taking signs at the
#   end loses little. (The usual alternative, squashing with a sigmoid, is the baseline it
#   beats.)
# * **Pairs are many.** DSH makes them *online*: every pair inside each mini-batch, with
#   images re-shuffled every epoch, so a batch of 128 gives 8,128 pairs for free.
#
# This notebook writes the loss term by term, trains DSH's own CIFAR network, and reproduces
# the supplementary's four tables: the regularizer vs the sigmoid (with the output histograms
# that explain it), finetuning vs training from scratch, ensembles of codes, and classic
# hashing on DSH's learned features.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/hashlib-edu/hashlib_edu/blob/main/notebooks/04_dsh.ipynb)

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
BITS = 12  # the supplementary's code length for Tables 1 and 3
EPOCHS = None  # None: the budget in hashlib_edu.methods.dsh (smoke 1, quick 26, paper 150)
SWEEP_EPOCHS = None  # cifar10-1k experiments; None: the budget there (smoke 1, quick 10)
SEED = 0
TRAIN = False  # True: train every model here; False: load the course's trained models if published

# %%
# NBVAL_IGNORE_OUTPUT
import itertools
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from hashlib_edu import (
    Experiment,
    concatenate_codes,
    count_parameters,
    embed,
    evaluate_codes,
    load_codes,
    load_protocol,
    load_results,
    precision_recall_curve,
    retrieve,
    run,
    save_results,
    select_device,
    training_plan,
    use_profile,
    use_training,
)
from hashlib_edu.exercises import check_dsh_loss, check_dsh_regularizer
from hashlib_edu.methods.baselines import CCAITQ, KSH, LSH
from hashlib_edu.methods.dsh import DSHLoss, DSHNet, DSHSigmoidLoss
from hashlib_edu.plots import plot_pr_curves, plot_retrieval_grid, save_figure

PROFILE = use_profile(PROFILE)
# DSH's own network on its protocol (the headline), and on cifar10-1k for the sweeps
headline_spec = Experiment("dsh", BITS, "cifar10-dsh", profile=PROFILE, seed=SEED, epochs=EPOCHS)
sweep_spec = Experiment("dsh", BITS, "cifar10-1k", backbone="dshnet", profile=PROFILE, seed=SEED,
                        epochs=SWEEP_EPOCHS)
EPOCHS, SWEEP_EPOCHS = headline_spec.epochs, sweep_spec.epochs
DEVICE = select_device()
use_training(TRAIN)
dsh_data = load_protocol("cifar10-dsh", PROFILE, seed=SEED)  # headline: DSH's protocol
data = load_protocol("cifar10-1k", PROFILE, seed=SEED)  # sweeps, finetuning, ensembles
CLASSES = dsh_data.dataset.classes
print(f"profile {PROFILE} on {DEVICE}: {EPOCHS} epochs on cifar10-dsh {dsh_data.sizes()}, "
      f"{SWEEP_EPOCHS} epochs on cifar10-1k {data.sizes()}")

# %% [markdown]
# ## The loss, term by term
#
# For two images with real-valued outputs $b_1, b_2 \in \mathbb{R}^k$ and $y = 0$ if they are
# similar (same class), $y = 1$ otherwise:
#
# $$
# L(b_1, b_2, y) =
# \underbrace{\tfrac12 (1-y)\,\lVert b_1 - b_2\rVert_2^2}_{\text{pull similar pairs together}}
# + \underbrace{\tfrac12\, y\, \max\!\big(m - \lVert b_1 - b_2\rVert_2^2,\ 0\big)}_{\text{push dissimilar pairs apart, up to } m}
# + \underbrace{\alpha\big(\lVert\, |b_1| - \mathbf{1}\rVert_1 + \lVert\, |b_2| - \mathbf{1}\rVert_1\big)}_{\text{pull outputs towards } \pm 1}
# $$
#
# * **Similar pairs** pay their squared distance: codes of one class collapse together.
# * **Dissimilar pairs** pay only while they are closer than the margin $m$; beyond it they
#   cost nothing. Without that cap the loss could be lowered forever by scaling all outputs
#   up, and nothing would keep them near the binary corners. DSH sets $m = 2k$: two codes in
#   $\{-1,+1\}^k$ at Hamming distance $d$ have squared distance $4d$, so $m = 2k$ asks
#   dissimilar pairs to differ in at least half of the bits.
# * **The regularizer** $\alpha \lVert |b| - 1\rVert_1$ is zero exactly at the corners
#   $\{-1, +1\}^k$. Its (sub)gradient with respect to $b_i$ is $\alpha\,\mathrm{sign}(b_i)\,
#   \mathrm{sign}(|b_i| - 1)$: outputs inside $(-1, 1)$ are pushed *outwards*, outputs beyond
#   $\pm1$ pulled back — towards the nearer of $\pm 1$, so $\mathrm{sign}(b)$ at test time
#   changes little.
#
# The batch loss is the mean over the $n(n-1)/2$ unordered pairs $i < j$ of a mini-batch. Each
# image takes part in $n - 1$ pairs, so the regularizer part equals $2\alpha$ times the mean of
# $\lVert |b_i| - 1\rVert_1$ over the images — no need to build the pairs for it.
#
# Three items by hand: $k = 2$, $m = 2k = 4$, $\alpha = 0.01$; items 0 and 1 share a class,
# item 2 does not.

# %%
b = torch.tensor([[1.0, 1.0],     # item 0, class 0
                  [0.5, 1.0],     # item 1, class 0: similar to item 0
                  [-1.0, -1.5]])  # item 2, class 1: dissimilar to both
y = torch.tensor([0, 0, 1])
alpha, m = 0.01, 4.0
d01 = ((b[0] - b[1]) ** 2).sum()  # 0.25, similar: pays 0.5 * 0.25
d02 = ((b[0] - b[2]) ** 2).sum()  # 10.25 > m: beyond the margin, pays nothing
d12 = ((b[1] - b[2]) ** 2).sum()  # 8.5 > m: pays nothing
reg = ((b.abs() - 1).abs().sum(dim=1))  # [0, 0.5, 0.5]
by_hand = (0.5 * d01 + 0.5 * max(m - d02, 0) + 0.5 * max(m - d12, 0)
           + alpha * ((reg[0] + reg[1]) + (reg[0] + reg[2]) + (reg[1] + reg[2]))) / 3
package = DSHLoss(2, alpha=alpha)(b, y)
print(f"squared distances: d01={d01:.2f}, d02={d02:.2f}, d12={d12:.2f}; regularizer per item {reg.tolist()}")
print(f"by hand {by_hand:.6f}  DSHLoss {package:.6f}")

# %% [markdown]
# Move item 2 close to the others and the margin term wakes up; pull item 1 inwards and the
# regularizer pushes it back out (negative gradient = direction of descent):

# %%
close = torch.tensor([[1.0, 1.0], [0.5, 1.0], [0.5, 0.5]], requires_grad=True)
loss = DSHLoss(2, alpha=alpha)(close, y)
loss.backward()
print(f"loss {loss.item():.4f} (the dissimilar pairs are now inside the margin)")
print("descent direction for item 2:", (-close.grad[2]).tolist(), "-> away from items 0 and 1")

x = torch.tensor([[0.3, -0.3, 1.4, -1.4]], requires_grad=True)
(alpha * (x.abs() - 1).abs().sum()).backward()
print("outputs            ", x.detach().tolist()[0])
print("regularizer descent", (-x.grad).tolist()[0], "-> each towards the nearer of ±1")

# %% [markdown]
# **Online pairs.** Inside a batch the similarity of every pair comes from the labels at once —
# the loss works on $(n, n)$ matrices, never on a list of pairs:

# %%
labels = torch.tensor([3, 1, 3, 0, 1])
similar = labels[:, None] == labels[None, :]
n = len(labels)
print(similar.int())
print(f"{n} images -> {n * (n - 1) // 2} pairs, of which "
      f"{int(similar.triu(1).sum())} similar; a batch of 128 -> {128 * 127 // 2:,} pairs")

# %% [markdown]
# **The sigmoid relaxation** — the baseline of the supplementary's Table 1 — squashes outputs
# to $u = \sigma(b) \in (0, 1)^k$, thresholds at $0.5$ and applies the same contrastive term to
# $u$, without a regularizer. Since $\lVert u_1 - u_2 \rVert^2 < k$, its margin must be below
# $k$; the paper tries $m \in \{1, 2, 3, 6\}$ at $k = 12$. A sigmoid saturates: once outputs
# are far from 0 its gradient vanishes, and nothing asks them to go there in the first place.
#
# ## DSH's CIFAR-10 network
#
# Three 5×5 convolutions (32, 32, 64 filters), each followed by 3×3 stride-2 pooling, then a
# 500-unit fully connected layer and the $k$ outputs. We add BatchNorm after each convolution
# (our change, for a short CPU schedule).

# %%
net = DSHNet(BITS)
print(net)
print(f"parameters at k = {BITS}: {count_parameters(net):,} "
      f"(without our BatchNorm: {count_parameters(DSHNet(BITS, batchnorm=False)):,})")

# %% [markdown]
# ## Training: the lines that matter
#
# ```python
# loss_fn = DSHLoss(12, alpha=0.01)          # margin None -> 2k = 24
# for x, y in batches:                        # shuffled, augmented, 128 images each
#     loss = loss_fn(model(x), y)             # all 8,128 pairs of the batch
#     optimizer.zero_grad(); loss.backward(); optimizer.step()
# codes = sign(model(x_test))                 # sign(0) = +1
# ```
#
# `run(Experiment("dsh", ...))` runs this loop (and caches a finished model in
# `checkpoints/`). **What we changed from the paper**: the paper trains with Caffe SGD for
# 150,000 iterations on a GPU, no augmentation, no BatchNorm. On a CPU we train
# `EPOCHS` epochs with AdamW and a one-cycle learning rate (max 2e-3), random pad-and-crop and
# flips of whole batches, and BatchNorm. The loss, the margin, $\alpha$, the network and the
# protocol are the paper's.
#
# ## Headline: 12 bits on DSH's protocol
#
# `cifar10-dsh`: the 10,000 test images are the queries and the 50,000 training images are
# both the training set and the database. The paper's 12-bit CIFAR-10 model (M1 of its
# Table 3) has mAP **0.6157** and precision within Hamming radius 2 of **0.5671** (paper
# numbers).

# %%
# NBVAL_IGNORE_OUTPUT
PAPER_M1 = {"map": 0.6157, "p_at_h2": 0.5671}  # supplementary Table 3, CIFAR-10, M1 (12 bits)
print(headline_spec.settings)
print(headline_spec.recipe)
# Measured here (quick, 2 CPU cores): 7.2 min of training. The whole notebook ran in 13.9 min
# from a fresh clone (nothing trained before), 6.3 min of it after this cell.
print(training_plan(1, EPOCHS, backbone="dshnet", protocol="cifar10-dsh", device=DEVICE))
result = run(headline_spec, data=dsh_data, device=DEVICE)
headline_model, headline = result.model, result.record
pd.DataFrame([
    {"": "DSH, ours", "mAP": headline["map_tie_aware"], "P@H≤2": headline["p_at_h2"],
     "empty@H≤2": headline["p_at_h2_empty_fraction"],
     "train min": headline["train_seconds"] / 60, "epochs": headline["epochs"]},
    {"": "DSH, paper (M1)", "mAP": PAPER_M1["map"], "P@H≤2": PAPER_M1["p_at_h2"]},
]).set_index("").round(4)

# %%
# NBVAL_IGNORE_OUTPUT
verdict = "reaches" if headline["map_tie_aware"] >= PAPER_M1["map"] else "falls short of"
print(f"{PROFILE}: our 12-bit mAP {headline['map_tie_aware']:.4f} (tie-aware) {verdict} the "
      f"paper's {PAPER_M1['map']} "
      f"after {headline['train_seconds'] / 60:.1f} min of training on {headline['device']}.")

# %% [markdown]
# This notebook aims for the paper's single-model 0.6157 within about 15 CPU minutes of
# training; the line above says whether a run makes it (the run shown: a tie-aware 0.6780
# after 7.2 min, P@H≤2 0.6766; with ties kept in database order the mAP would read 0.6585).
# Here and below, "mAP" is the tie-aware mAP@all (notebook 01): the database is sorted by
# class, so ranking codes at equal Hamming distance in database order would bias it.
# If a run falls short, the levers are the epochs
# (`EPOCHS`; the paper's schedule is about 380 epochs of 50,000 images) and a GPU
# (`PROFILE = "paper"`).
#
# ## Table 1 and Figures 1–2: the regularizer versus the sigmoid
#
# Eight 12-bit models: the regularizer with $\alpha \in \{0, 0.001, 0.01, 0.1\}$ and the
# sigmoid relaxation with $m \in \{1, 2, 3, 6\}$. To fit a 90-minute lab's CPU budget these (and
# every model below) train on **`cifar10-1k`** — 5,000 training images, 1,000 queries, 59,000
# database images — for only `SWEEP_EPOCHS` epochs (10 under `quick`, about 15 seconds each on a
# 2-core CPU), so compare them with each other, not with the headline. Like the paper, we
# report these tables on the test queries and choose no setting from them: the paper's
# $\alpha = 0.01$ and $m = 2k$ stay the headline's.

# %%
# NBVAL_IGNORE_OUTPUT
PAPER_T1 = {"α=0": 0.5604, "α=0.001": 0.6195, "α=0.01": 0.5671, "α=0.1": 0.4418,
            "sigmoid m=1": 0.1783, "sigmoid m=2": 0.3441, "sigmoid m=3": 0.4224,
            "sigmoid m=6": 0.2903}  # supplementary Table 1, CIFAR-10, P@H≤2 (12 bits)
SETTINGS = {  # label: (results name, loss settings)
    **{f"α={a:g}": (f"dshnet_alpha{a:g}", {"alpha": a}) for a in (0, 0.001, 0.01, 0.1)},
    **{f"sigmoid m={mm}": (f"dshnet_sigmoid_m{mm}", {"loss": "sigmoid", "margin": mm})
       for mm in (1, 2, 3, 6)},
}
ql, dl = data.part_labels("query"), data.part_labels("database")
sweep_models, sweep, outputs = {}, {}, {}
# Measured here (quick, 2 CPU cores): the 8 models took 1.9 min of training.
print(training_plan(len(SETTINGS), SWEEP_EPOCHS, backbone="dshnet", device=DEVICE))
for label, (name, settings) in SETTINGS.items():
    result = run(sweep_spec.replace(settings=settings, label=name), data=data, device=DEVICE)
    model, loss_fn = result.model, result.loss
    sweep_models[label], sweep[label] = model, result.record
    raw = embed(model, data.images("query"))
    outputs[label] = loss_fn.squash(raw) if isinstance(loss_fn, DSHSigmoidLoss) else raw
table1 = pd.DataFrame([{"setting": k, "P@H≤2 (ours)": r["p_at_h2"], "P@H≤2 (paper)": PAPER_T1[k],
                        "mAP (ours)": r["map_tie_aware"], "empty@H≤2": r["p_at_h2_empty_fraction"],
                        "train min": r["train_seconds"] / 60} for k, r in sweep.items()])
table1.set_index("setting").round(4)

# %% [markdown]
# P@H≤2 here counts a query that retrieves nothing within radius 2 as precision 0 (the
# convention of the paper's tables); `empty@H≤2` is the fraction of such queries.
#
# **Figure 1: where the outputs go.** Histograms of all outputs on the queries: the raw
# outputs $b$ for the regularized models, the squashed $u = \sigma(b)$ for the sigmoid models
# (dashed lines: the binarization threshold).

# %%
# NBVAL_IGNORE_OUTPUT
fig, axes = plt.subplots(2, 4, figsize=(16, 6))
for ax, (label, values) in zip(axes.ravel(), outputs.items(), strict=True):
    v = values.numpy().ravel()
    sigmoid = label.startswith("sigmoid")
    ax.hist(v, bins=np.linspace(0, 1, 61) if sigmoid else np.linspace(-3, 3, 61),
            density=True, color="C1" if sigmoid else "C0")
    ax.axvline(0.5 if sigmoid else 0.0, color="k", ls="--", lw=1)
    near = np.mean(np.abs(v - (0.5 if sigmoid else 0.0)) < (0.1 if sigmoid else 0.2))
    ax.set_title(f"{label}: {near:.0%} near the threshold", fontsize=10)
    ax.set_xlabel("u = sigmoid(b)" if sigmoid else "output b")
fig.suptitle(f"DSH outputs on the {len(ql):,} queries, {BITS} bits (cf. supplementary Fig. 1)")
fig.tight_layout()
save_figure(fig, "dsh_output_histograms.png")
plt.show()

# %% [markdown]
# ("Near the threshold": within 0.2 of 0 for $b$, within 0.1 of 0.5 for $u$.) What to look for:
# with a large $\alpha$ (0.1) the mass piles up at $\pm 1$, as in the paper's Fig. 1 (d), and
# few outputs sit where a small change of the image flips a bit. With a small $\alpha$ the
# outputs spread widely: the margin $m = 2k$ asks dissimilar codes to be far apart, and only the
# regularizer pulls them back towards $\pm 1$. The sigmoid models fail the other way as $m$
# grows: with $m \ge 2$ almost every $u$ saturates at 0 or 1 — binary already — yet in Table 1
# none of them reaches the $\alpha = 0.01$ model (mAP 0.175–0.205 against 0.216, P@H≤2 at most
# 0.223 against 0.274; the unsaturated $m = 1$ comes closest, mAP 0.215 and P@H≤2 0.246).
# A saturated sigmoid has almost no gradient, so a likely reason is that such bits stop being
# corrected once set. Being near-binary is not enough; the bits must also be the right ones.
#
# **Figure 2: PR curves of all eight** (one point per Hamming radius, micro-averaged).

# %%
# NBVAL_IGNORE_OUTPUT
def saved_codes(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """(query codes, database codes) that run stored for a model: reading
    them back is much faster than encoding the 60,000 images again."""
    codes = load_codes(record["codes_path"])
    return codes["query_codes"], codes["db_codes"]


codes_1k = {label: saved_codes(record) for label, record in sweep.items()}
curves = {label: precision_recall_curve(q, d, ql, dl) for label, (q, d) in codes_1k.items()}
plot_pr_curves(curves, title=f"DSH variants, {BITS} bits, cifar10-1k (cf. supplementary Fig. 2)",
               save="dsh_pr_regularizer_vs_sigmoid.png")
plt.show()

# %% [markdown]
# ## Table 2 and Figure 3: finetuning versus training from scratch
#
# DSH trains longer codes by taking the 12-bit model, replacing its last layer by a fresh
# $k$-unit layer, and finetuning. We compare, at 24, 36 and 48 bits: a model trained from
# scratch for `SWEEP_EPOCHS` epochs, and the 12-bit $\alpha = 0.01$ model above finetuned for
# a third of that (`finetune_init` copies every layer but the last). Note that the finetuned
# models have seen more training in total — that is the point of the scheme.

# %%
# NBVAL_IGNORE_OUTPUT
PAPER_T2 = {("scratch", 12): 0.5671, ("scratch", 24): 0.6774, ("scratch", 36): 0.6321,
            ("scratch", 48): 0.5690, ("finetuned", 24): 0.6731, ("finetuned", 36): 0.6377,
            ("finetuned", 48): 0.5791}  # supplementary Table 2, CIFAR-10, P@H≤2
LONG_BITS = [24, 36, 48]
base = sweep_models["α=0.01"]
base_spec = sweep_spec.replace(settings=SETTINGS["α=0.01"][1], label=SETTINGS["α=0.01"][0])
FT_EPOCHS = max(1, SWEEP_EPOCHS // 3)
ft_spec = base_spec.replace(epochs=FT_EPOCHS, settings={"finetune_from": base_spec.to_dict()})
ft_spec = ft_spec.replace(recipe=replace(ft_spec.recipe, lr=1e-3))  # a smaller step to finetune
t2_rows = [{"bits": BITS, "model": "scratch", "P@H≤2 (ours)": sweep["α=0.01"]["p_at_h2"],
            "P@H≤2 (paper)": PAPER_T2["scratch", BITS],
            "mAP (ours)": sweep["α=0.01"]["map_tie_aware"],
            "train min": sweep["α=0.01"]["train_seconds"] / 60}]
t2_records = {}
# Measured here (quick, 2 CPU cores): 0.7 min of training for the 3 scratch models, 0.2 min for
# the 3 finetuned ones.
print(training_plan(len(LONG_BITS), SWEEP_EPOCHS, backbone="dshnet", device=DEVICE))
print(training_plan(len(LONG_BITS), FT_EPOCHS, backbone="dshnet", device=DEVICE))
for k in LONG_BITS:
    for kind in ("scratch", "finetuned"):
        spec = (sweep_spec.replace(bits=k, label="dshnet") if kind == "scratch" else
                ft_spec.replace(bits=k, label="dshnet_ft"))
        r = run(spec, data=data, device=DEVICE).record
        t2_records[kind, k] = r
        t2_rows.append({"bits": k, "model": kind, "P@H≤2 (ours)": r["p_at_h2"],
                        "P@H≤2 (paper)": PAPER_T2[kind, k], "mAP (ours)": r["map_tie_aware"],
                        "train min": r["train_seconds"] / 60})
pd.DataFrame(t2_rows).set_index(["bits", "model"]).round(4)

# %%
# NBVAL_IGNORE_OUTPUT
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for ax, k in zip(axes, LONG_BITS, strict=True):
    pr = {}
    for kind in ("scratch", "finetuned"):
        pr[kind] = precision_recall_curve(*saved_codes(t2_records[kind, k]), ql, dl)
    plot_pr_curves(pr, ax=ax, title=f"{k} bits")
fig.suptitle("Finetuned from the 12-bit model vs trained from scratch (cf. supplementary Fig. 3)")
fig.tight_layout()
save_figure(fig, "dsh_finetune_vs_scratch.png")
plt.show()

# %% [markdown]
# **What Table 2 shows (the run shown).** At 36 and 48 bits the finetuned models are slightly
# ahead of the ones trained from scratch in mAP (0.228 vs 0.218, 0.231 vs 0.226) and clearly
# ahead in P@H≤2 (0.309 vs 0.215, 0.330 vs 0.128), after a third of the epochs on top of the
# 12-bit model; at 24 bits the scratch model is ahead (mAP 0.216 vs 0.209, P@H≤2 0.344 vs
# 0.268). The paper finds the two about level. Note the 48-bit scratch model: the best mAP of the
# scratch rows, yet the lowest P@H≤2 — radius 2 is a small ball for 48 bits (Table 3 shows why).
#
# ## Table 3: ensembles of 12-bit models
#
# Four 12-bit models that differ only in their random seed (initialization, batch order,
# augmentation): M1 is the $\alpha = 0.01$ model above, M2–M4 use seeds 1–3. An ensemble
# **concatenates** the codes: M1 + M3 is a 24-bit code whose first 12 bits come from M1. Row
# $i$ of every code matrix must be the same image, which `concatenate_codes` checks by shape
# (the query and database sets are the same for all four models).

# %%
# NBVAL_IGNORE_OUTPUT
PAPER_T3 = {  # supplementary Table 3, CIFAR-10: (mAP, P@H≤2)
    "M1": (0.6157, 0.5671), "M2": (0.6126, 0.6202), "M3": (0.6358, 0.6397), "M4": (0.6289, 0.6237),
    "M1+M2": (0.6685, 0.6814), "M1+M3": (0.6826, 0.6978), "M1+M4": (0.6755, 0.6886),
    "M2+M3": (0.6806, 0.6919), "M2+M4": (0.6740, 0.6857), "M3+M4": (0.6850, 0.6979),
    "M1+M2+M3": (0.6996, 0.6181), "M1+M2+M4": (0.6937, 0.6154), "M1+M3+M4": (0.7022, 0.6292),
    "M2+M3+M4": (0.7013, 0.6197), "M1+M2+M3+M4": (0.7106, 0.5486)}
members = {"M1": codes_1k["α=0.01"]}
# Measured here (quick, 2 CPU cores): the 3 models took 0.7 min of training.
print(training_plan(3, SWEEP_EPOCHS, backbone="dshnet", device=DEVICE))
for seed in (1, 2, 3):
    r = run(sweep_spec.replace(seed=seed, label=f"dshnet_seed{seed}"), data=data,
            device=DEVICE).record
    members[f"M{seed + 1}"] = saved_codes(r)
t3_rows = []
for size in range(1, 5):
    for combo in itertools.combinations(sorted(members), size):
        q = concatenate_codes(*[members[c][0] for c in combo])
        d = concatenate_codes(*[members[c][1] for c in combo])
        r = evaluate_codes(q, d, ql, dl)
        name = "+".join(combo)
        t3_rows.append({"models": name, "bits": q.shape[1], "mAP (ours)": r["map_tie_aware"],
                        "mAP (paper)": PAPER_T3[name][0], "P@H≤2 (ours)": r["p_at_h2"],
                        "P@H≤2 (paper)": PAPER_T3[name][1],
                        "empty@H≤2": r["p_at_h2_empty_fraction"]})
table3 = pd.DataFrame(t3_rows).set_index("models")
table3.round(4)

# %%
# NBVAL_IGNORE_OUTPUT
by_size = table3.groupby("bits")[["mAP (ours)", "P@H≤2 (ours)", "empty@H≤2"]].mean()
print("mean over the ensembles of each size:")
print(by_size.round(4).to_string())

# %% [markdown]
# **Why P@H≤2 drops for long ensembles (in the paper and, as the means above show, here).**
# mAP ranks the whole database, so more bits can only sharpen the ranking. Precision within
# Hamming radius 2 looks only inside a Hamming ball of radius 2, which holds
# $\sum_{i \le 2} \binom{k}{i}$ of the $2^k$ possible codes: 79 of 4,096 at 12 bits, but 1,177
# of $2^{48} \approx 2.8 \times 10^{14}$ at 48 bits. Concatenated codes of independently
# trained models disagree in a few bits each, so as $k$ grows more queries find *nothing* in
# their ball (`empty@H≤2` above) and score 0. Longer codes need a larger radius, or ranking.
#
# ## Table 4: classic hashing on DSH's learned features
#
# The supplementary fits LSH, CCA-ITQ and KSH (48 bits) on three kinds of features: hand-crafted
# (512-D GIST), the 500-D FC activations of a classification network, and the 500-D FC
# activations of DSH's own 12-bit model. Our rows: "Hand" and "CNN-cls" come from notebook 02
# (our GIST-like descriptor; the Pool3 features of the CNNBH classifier — a classification
# network, not DSH's); "CNN-ours" is new here: the L2-normalized FC-500 activations of our
# 12-bit DSH model M1. All on `cifar10-1k`; the paper used DSH's protocol.

# %%
# NBVAL_IGNORE_OUTPUT
PAPER_T4 = {("Hand", "LSH"): 0.1492, ("Hand", "CCA-ITQ"): 0.2176, ("Hand", "KSH"): 0.4167,
            ("CNN-cls", "LSH"): 0.1783, ("CNN-cls", "CCA-ITQ"): 0.5443, ("CNN-cls", "KSH"): 0.5949,
            ("CNN-ours", "LSH"): 0.3154, ("CNN-ours", "CCA-ITQ"): 0.6576,
            ("CNN-ours", "KSH"): 0.6498}  # supplementary Table 4, mAP at 48 bits
K4 = 48
HASHERS = {"LSH": ("lsh", LSH, {}, False), "CCA-ITQ": ("ccaitq", CCAITQ, {"n_iter": 50}, True),
           "KSH": ("ksh", KSH, {"n_anchors": 300}, True)}


def fc500(model, x):
    """DSH's 500-D fully connected activations (the layer before the codes)."""
    return model.fc(model.features(x))


feats = {part: torch.nn.functional.normalize(embed(base, data.images(part), fn=fc500), dim=1).numpy()
         for part in ("train", "query", "database")}
t4 = {}
with threadpool_limits(1):
    for label, (key, cls, kwargs, supervised) in HASHERS.items():
        hasher = cls(K4, random_state=SEED, **kwargs)
        start = time.perf_counter()
        hasher.fit(feats["train"], data.part_labels("train") if supervised else None)
        fit_seconds = time.perf_counter() - start
        r = save_results(f"{key}_dshfeat", K4, data.protocol, hasher.encode(feats["query"]),
                         hasher.encode(feats["database"]), data.split, data.labels,
                         train_seconds=fit_seconds, profile=PROFILE, seed=SEED,
                         features=f"L2-normalized FC-500 of dshnet_alpha0.01-{BITS}",
                         hyperparameters=kwargs)
        t4["CNN-ours", label] = r["map_tie_aware"]
saved = {(r["method"], r["bits"]): r["map_tie_aware"]
         for r in load_results(data.protocol, profile=PROFILE)}
for label, (key, *_rest) in HASHERS.items():
    t4["Hand", label] = saved.get((f"{key}_gist", K4))
    t4["CNN-cls", label] = saved.get((f"{key}_cnn", K4))
rows = []
for feat in ("Hand", "CNN-cls", "CNN-ours"):
    for label in HASHERS:
        rows.append({"features": feat, "method": label, "mAP (ours)": t4[feat, label],
                     "mAP (paper)": PAPER_T4[feat, label]})
rows.append({"features": "(end to end)", "method": "DSH 48 bits, scratch",
             "mAP (ours)": next(r["mAP (ours)"] for r in t2_rows
                                if r["bits"] == K4 and r["model"] == "scratch"),
             "mAP (paper)": 0.6755})
table4 = pd.DataFrame(rows).set_index(["features", "method"]).round(4)
for label in HASHERS:
    ours, classifier = t4["CNN-ours", label], t4["CNN-cls", label]
    if ours is not None and classifier is not None:
        direction = "as in the paper" if ours > classifier else "the paper's order reversed"
        print(f"{label}: DSH features {ours:.4f} vs classifier features {classifier:.4f} "
              f"({direction})")
table4.round(4)

# %% [markdown]
# (An empty "ours" cell means notebook 02 has not been run in this profile, so its saved
# results are missing.) The paper's finding (its Table 4): conventional methods improve a lot
# on CNN features, and most on the features of a network trained *for hashing* — its CNN-ours
# rows are above its CNN-cls rows for all three methods (LSH 0.3154 vs 0.1783, CCA-ITQ 0.6576
# vs 0.5443, KSH 0.6498 vs 0.5949, paper numbers).
#
# **Our Table 4 reverses the paper's finding, for all three methods.** On the features of our
# DSH model M1, LSH reaches 0.237, CCA-ITQ 0.359 and KSH 0.346, *below* the same methods on the
# classifier features (0.265, 0.573 and 0.592). The comparison is not the paper's, though. Our
# "CNN-cls" features come from a **different network** — the CNNBH classifier of notebook 03,
# trained 60 epochs with a modern recipe, whose accuracy notebook 02 prints (74.7 % on the
# queries, close to the 74.54 % that DSH reports for its classification network) — not from
# DSH's network trained as a classifier, as in the paper. And our "CNN-ours" model is the
# 12-bit sweep model M1, trained for only `SWEEP_EPOCHS` = 10 epochs on 5,000 images (Table 1:
# mAP 0.216), where the paper's learned from 50,000. So CNN-cls against CNN-ours here compares
# networks and training budgets as much as objectives: read it as "a well-trained classifier's
# features beat a briefly trained DSH model's", not as a verdict on the paper. Supervised
# hashing on DSH's features does beat the 48-bit DSH codes themselves (CCA-ITQ 0.359 and KSH
# 0.346 against 0.226, the last row).
#
# ## Retrieval examples
#
# Five queries of the headline model (12 bits, `cifar10-dsh`) with their top 10 by Hamming
# distance (ties in database order); wrong classes are framed red. With 12 bits many database
# images share a distance, so the order within a distance is arbitrary.

# %%
# NBVAL_IGNORE_OUTPUT
hq, hdb = saved_codes(headline)
hql, hdl = dsh_data.part_labels("query"), dsh_data.part_labels("database")
rng = np.random.default_rng(SEED)
for i, qi in enumerate(rng.choice(len(hq), size=5, replace=False)):
    res = retrieve(hq, hdb, int(qi), top_k=10, query_labels=hql, db_labels=hdl)
    plot_retrieval_grid(dsh_data.dataset.images[dsh_data.query_idx[qi]], dsh_data.dataset.images,
                        res, class_names=CLASSES, query_label=hql[qi], db_labels=hdl,
                        db_index=dsh_data.db_idx, title=f"query {qi}", save=f"dsh_retrieval_{i}.png")
    plt.show()


# %% [markdown]
# ## What to notice
#
# * **A little regularization helps, too much hurts** (Table 1). With $\alpha = 0$ the
#   contrastive term alone already spreads outputs away from 0 (the margin pushes dissimilar
#   pairs apart); a large $\alpha$ piles them at $\pm 1$ (Figure 1) but fights the similarity
#   term — compare the $\alpha = 0.1$ row with the others. The paper's best was
#   $\alpha = 0.001$; read our best row from the table.
# * **Sigmoid versus regularizer**: compare the sigmoid rows of Table 1 with the regularized
#   ones. The sigmoid outputs with large margins are the *most* binary in Figure 1 and among the
#   worst for retrieval: what matters is that training can still move them.
# * **Headline**: our 12-bit mAP on DSH's protocol beside the paper's M1, from a short CPU
#   schedule with augmentation and BatchNorm.
# * **Ensembles** raise mAP with every added model; P@H≤2 falls once the code is long, because
#   Hamming balls of radius 2 get empty — a property of the metric, not of the codes.
# * Our sweep models see 5,000 training images for 10 epochs (the paper's: 50,000 images and a
#   far longer schedule), so the absolute numbers in Tables 1–3 are much lower than the paper's,
#   and Table 4 compares features of other networks than the paper's; the comparisons inside
#   each table are the lesson.
#
# ## Exercises
#
# 1. **Write the DSH loss yourself** (below): mean over the pairs $i < j$ of the three terms,
#    margin and $\alpha$ as arguments, without a Python loop over pairs (work on the $(n, n)$
#    matrices of "Online pairs"). `check_dsh_loss` compares it with
#    `hashlib_edu.methods.dsh.dsh_loss` on five cases and names the common mistake it sees.
# 2. **Write the regularizer** $\lVert |b_i| - \mathbf{1} \rVert_1$ for each row of an $(n, k)$
#    output matrix (shape $(n,)$) and check it with `check_dsh_regularizer`; then say why its
#    subgradient pushes an output at $0.3$ outwards and one at $1.4$ inwards.
# 3. Why does the regularizer use the L1 norm $\lVert |b| - 1\rVert_1$ rather than the squared
#    L2 norm? Plot both penalties and their gradients for one output in $[-2, 2]$.
# 4. Set the margin to $m = k$ instead of $2k$ (`DSHLoss(12, margin=12)`) and retrain one sweep
#    model: what happens to the histogram and to P@H≤2?
# 5. Build the ensemble M1 + M2 with a Hamming radius of 4 instead of 2
#    (`hashlib_edu.metrics.precision_within_radius(..., radius=4)`): does the drop go away?
# 6. On a GPU (`PROFILE = "paper"`), train the headline for the paper's schedule and see how far
#    above 0.6157 a single model gets.

# %%
def my_dsh_loss(outputs, labels, alpha, margin):
    """Exercise 1: outputs (n, k) float, labels (n,) class ids -> scalar (mean over pairs i < j)."""
    raise NotImplementedError


check_dsh_loss(my_dsh_loss)


# %%
def my_dsh_regularizer(outputs):
    """Exercise 2: outputs (n, k) float -> (n,) values || |b_i| - 1 ||_1."""
    raise NotImplementedError


check_dsh_regularizer(my_dsh_regularizer)
