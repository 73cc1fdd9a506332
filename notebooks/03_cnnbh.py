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
# # 03 · CNNBH: a classifier's binarized "knob" layer as hash codes
#
# **Paper:** Jinma Guo and Jianmin Li, "CNN Based Hashing for Image Retrieval",
# arXiv:1509.01354, 2015. <https://arxiv.org/abs/1509.01354>
#
# The simplest deep hashing method there is: train an **ordinary classification CNN**, but put a
# narrow linear layer — the *knob* — with $k$ units right before the classifier. After training,
# the **signs** of the knob activations are the $k$-bit hash code. No pairwise loss, no
# relaxation, no special optimizer: cross-entropy alone. Yet in 2015 it beat the earlier deep
# hashing method CNNH+ on CIFAR-10. This notebook rebuilds it, reproduces the paper's tables on
# the `cifar10-1k` protocol, and asks *why* a classifier's signs carry retrieval information.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/hashlib-edu/hashlib_edu/blob/main/notebooks/03_cnnbh.ipynb)

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
EPOCHS = None  # None: the profile's default (smoke 1, quick 60, paper 900)
SWEEP_EPOCHS = None  # the dropout sweep on the validation split (smoke 1, quick 15)
SEED = 0
TRAIN = False  # True: train every model here; False: load the course's trained models if published
TRAIN_SWEEPS = False  # True: retrain the validation comparisons; False: read their saved results

# %%
# NBVAL_IGNORE_OUTPUT

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from hashlib_edu import (
    BatchLoader,
    Experiment,
    claim,
    count_parameters,
    embed,
    euclidean_precision_at_n,
    fit,
    load_protocol,
    precision_at_n_curve,
    precision_recall_curve,
    run,
    saved_or_run,
    seed_everything,
    select_device,
    sign,
    training_plan,
    use_profile,
    use_training,
    validation_protocol,
)
from hashlib_edu.exercises import check_knob_model, check_training_step
from hashlib_edu.methods.baselines import LSH
from hashlib_edu.methods.cnnbh import CNNBH_DROPOUT, CNNBHNet, CNNBHSettings
from hashlib_edu.plots import (
    plot_histograms,
    plot_metric_vs_bits,
    plot_pr_curves,
    plot_precision_at_n,
    save_figure,
)

PROFILE = use_profile(PROFILE)
EPOCHS = EPOCHS or Experiment("cnnbh", 48, profile=PROFILE).epochs
SWEEP_EPOCHS = SWEEP_EPOCHS or {"smoke": 1, "quick": 15, "paper": 450}[PROFILE]
DEVICE = select_device()
use_training(TRAIN)
data = load_protocol("cifar10-1k", PROFILE, seed=SEED)
val_data = validation_protocol(data, seed=SEED)  # settings are chosen here, never on the queries
print(f"profile {PROFILE}, {EPOCHS} epochs ({SWEEP_EPOCHS} for the sweeps on the validation "
      f"split), device {DEVICE}; split sizes {data.sizes()}, validation {val_data.sizes()}")
print(f"data source: {data.dataset.source}")

# %% [markdown]
# ## The method
#
# A CNN maps an image $x$ to features $f(x) \in \mathbb{R}^{d}$ (here the flattened "Pool3"
# maps, $d = 1024$). CNNBH adds the knob, a linear layer without nonlinearity, then dropout and
# the classifier:
#
# $$h = W_k f(x) + c_k \in \mathbb{R}^k, \qquad
#   p(y \mid x) = \operatorname{softmax}\big(W_{10}\, \operatorname{dropout}_p(h) + c_{10}\big),$$
#
# trained with plain cross-entropy $-\log p(y \mid x)$. The code is
#
# $$b(x) = \operatorname{sign}(h) \in \{-1, +1\}^k \quad (\text{with } \operatorname{sign}(0) = +1).$$
#
# **Why inserting a knob costs nothing.** Without the knob the classifier is $W f + c$ with
# $W \in \mathbb{R}^{10 \times d}$. With it, $W_{10}(W_k f + c_k) + c_{10}$: a product
# $W_{10} W_k$ of rank at most $\min(k, 10)$. When $k \ge 10$ every $10 \times d$ matrix $W$ can
# be written as such a product (take $W_k$'s first 10 rows $= W$, $W_{10} = [I \; 0]$), so the
# network loses no expressive power — the paper's "$m \ge n$ units" argument. The dropout on
# $h$ forces the classifier to read many bits, not a few, which keeps bits informative
# and less correlated; with few bits ($k < 20$) dropping half of them hurts, hence the paper's
# Table 2 of dropout rates by code length.
#
# The CIFAR-10 architecture, in the paper's notation:
# `3x32x32-32C3P1-32C1P0-MP3S2-D0.5-32C3P1-32C3P1-MP3S2-D0.5-64C3P1-64C3P1-MP3S2-D0.5-Hk-D(p)-H10`.

# %%
plain48 = CNNBHNet(48, batchnorm=False)
print(plain48)
print(f"\nparameters at k = 48: {count_parameters(plain48):,} (paper: '125K'); "
      f"with our BatchNorm: {count_parameters(CNNBHNet(48)):,}")
print("final dropout p by code length (paper Table 2):", CNNBH_DROPOUT)


# %% [markdown]
# Note the pooling: cuda-convnet rounds 3×3/2 pooling **up**, so maps go 32 → 16 → 8 → 4
# (`ceil_mode=True`); with PyTorch's default floor rounding they would end at 3×3 and the count
# would not match the paper's 125K.
#
# ## Training: the few lines that matter
#
# The loss is the classifier's cross-entropy; the codes are the signs of the knob:

# %%
def knob_codes(model: CNNBHNet, x: torch.Tensor) -> torch.Tensor:
    """(n, 3, 32, 32) normalized images -> (n, k) codes in {-1, +1}."""
    h = model.embed(x)  # knob activations, (n, k)
    return torch.where(h >= 0, 1, -1)


seed_everything(SEED)
demo = CNNBHNet(12)
x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
loss = nn.CrossEntropyLoss(label_smoothing=0.1)(demo(x), y)  # training: a classifier's loss
codes = knob_codes(demo, x)  # retrieval: the signs of the knob
print("loss:", tuple(loss.shape), "codes:", tuple(codes.shape), "values:", codes.unique().tolist())

# %% [markdown]
# **The training loop.** Training is the usual loop over mini-batches: forward, loss, backward,
# step. Here it is written out for one epoch on 512 training images, next to the package's
# `fit`, which `run` trains every model with (it adds checkpoints, timing and a progress bar). `fit` also
# has two speed-ups, on by default: mixed precision (bfloat16 or float16 arithmetic where the
# hardware has it) and the channels-last memory layout, in which dropout draws its random masks
# in a different order. Switch both off, start from the same weights and the same random
# state, and the two end with the same weights, up to float rounding: `fit` is this loop and
# nothing more.

# %%
def plain_epoch(model: nn.Module, loader, loss_fn, optimizer, scheduler) -> None:
    """One epoch of the textbook training loop."""
    model.train()
    for x, y in loader:
        loss = loss_fn(model(x), y)  # forward and loss
        optimizer.zero_grad()
        loss.backward()  # gradients
        optimizer.step()  # update
        scheduler.step()  # one-cycle learning rate: one step per batch


def demo_setup():
    """The same model, batches, optimizer and schedule every call."""
    seed_everything(SEED)
    net = CNNBHNet(12)
    loader = BatchLoader(data.images("train")[:512], data.part_labels("train")[:512],
                         batch_size=128, shuffle=True, augment=True, seed=SEED)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=len(loader))
    return net, loader, opt, sched


ce = nn.CrossEntropyLoss(label_smoothing=0.1)
by_hand, loader, opt, sched = demo_setup()
loader.set_epoch(0)
torch.manual_seed(SEED)
plain_epoch(by_hand, loader, ce, opt, sched)
by_fit, loader, opt, sched = demo_setup()
torch.manual_seed(SEED)
fit(by_fit, ce, loader, 1, opt, sched, device="cpu", progress=False, amp=False,
    channels_last=False)
same = all(torch.allclose(a, b, rtol=1e-4, atol=1e-5)
           for a, b in zip(by_hand.state_dict().values(), by_fit.state_dict().values(),
                           strict=True))
print(f"after one epoch ({len(loader)} batches): the plain loop and fit give the same weights: "
      f"{same}")

# %% [markdown]
#
# **What we changed from the paper, and why.** The paper trains 900 epochs with SGD at a step
# schedule (cuda-convnet2, no augmentation). A CPU cannot afford that, so the `quick` profile
# uses a modern recipe that gets further in 60 epochs: BatchNorm after every convolution,
# random pad-and-crop and flips, label smoothing 0.1, a one-cycle learning rate, and no dropout
# after the three pooling layers instead of 0.5 (with augmentation on top, 0.5 — and also 0.2 —
# left the models of an AdamW-based variant of this recipe underfitting their own training set;
# see the exercises). The optimizer is chosen below, on a validation split: SGD (momentum 0.9,
# weight decay 1e-3, learning rate up to 0.1), the recipe we start from, or AdamW (weight decay
# 5e-4, learning rate up to 3e-3). None of these changes the *method* — a classifier whose knob
# signs are the codes, with the paper's final knob dropout. Further below we also train the
# paper's plain recipe for the same number of epochs.
#
# **How the recipe is chosen: on a validation split.** Choosing a recipe by the mAP of the
# protocol's test queries would tune on the test set and flatter the number we report. So the
# cell below compares four recipes on a **validation split**: `validation_protocol(data)`
# holds out 10% of the 5,000 training images (class balanced) as validation queries, and each
# candidate trains on the other 4,500, which are also the database it searches. The candidates
# are the SGD recipe we start from (`cnnbh_sgd_recipe`), the same without label smoothing, the
# same with AdamW instead of SGD (`cnnbh_adamw_recipe`), and the paper's plain recipe, at 48 bits for
# `SWEEP_EPOCHS` epochs (a shorter budget than the headline's, so compare them with each other
# only). The protocol's 1,000 queries are never used to choose.

# %%
# NBVAL_IGNORE_OUTPUT
from IPython.display import Markdown, display

from hashlib_edu.selection import choose


def candidates(epochs: int) -> dict[str, tuple[str, Experiment]]:
    """Results name -> (description, experiment) of the four candidates: 48 bits on the
    validation split for ``epochs`` epochs; the first is the recipe we start from."""
    base = Experiment("cnnbh", 48, val_data.protocol, profile=PROFILE, seed=SEED, epochs=epochs)
    settings = {
        "cnnbh_recipe_sgd": ("SGD one-cycle (lr 0.1), label smoothing 0.1", {"recipe": "sgd"}),
        "cnnbh_recipe_sgd_nols": ("the same without label smoothing",
                                  {"recipe": "sgd", "label_smoothing": 0.0}),
        "cnnbh_recipe_adamw": ("AdamW one-cycle (lr 3e-3), label smoothing 0.1",
                               {"recipe": "adamw"}),
        "cnnbh_recipe_plain": ("the paper's plain recipe", {"recipe": "plain"}),
    }
    return {name: (text, base.replace(settings=change, label=name))
            for name, (text, change) in settings.items()}


def validation_map(name: str, spec: Experiment, seed: int = SEED) -> tuple[float, float]:
    """One candidate's (tie-aware validation mAP, train minutes): its saved results, or
    trained now when TRAIN_SWEEPS is True or nothing is saved for it."""
    label = name if seed == SEED else f"{name}_seed{seed}"
    r = saved_or_run(spec.replace(seed=seed, label=label), TRAIN_SWEEPS, data=val_data,
                     device=DEVICE)
    return r["map_tie_aware"], r["train_seconds"] / 60


CANDIDATES = candidates(EPOCHS)  # compared at the headline's budget
INCUMBENT = "cnnbh_recipe_sgd"  # the recipe we start from; a challenger must beat it
print(training_plan(len(CANDIDATES), EPOCHS, backbone="small", device=DEVICE),
      f"({len(val_data.train_idx):,} training images each)" if TRAIN_SWEEPS else
      "-- only if TRAIN_SWEEPS = True; else their saved results are read")
recipe_rows = {}
for name, (description, spec) in CANDIDATES.items():
    val_map, minutes = validation_map(name, spec)
    recipe_rows[name] = {"recipe": description, "validation mAP": val_map, "train min": minutes}
recipes = pd.DataFrame.from_dict(recipe_rows, orient="index")
best_recipe = recipes["validation mAP"].idxmax()
print(f"48 bits, {EPOCHS} epochs, validation split, seed {SEED}: best "
      f"{recipes.loc[best_recipe, 'recipe']!r} ({recipes.loc[best_recipe, 'validation mAP']:.3f}); "
      f"the SGD recipe we start from {recipes.loc[INCUMBENT, 'validation mAP']:.3f}.")
recipes.set_index("recipe").round(3)

# %% [markdown]
# One seed is not enough to choose: retraining with another seed moves a model by about as much
# as the gaps above. The course's rule (`hashlib_edu.selection.choose`, used for every setting
# the course chooses): a challenger replaces the recipe we start from only if, with two more
# seeds each, it is **ahead on average by more than 0.01 and on every seed**. The cell applies
# it to the best challenger, at the headline's budget (a challenger already behind with the
# first seed cannot pass, so the other seeds are then not trained).

# %%
# NBVAL_IGNORE_OUTPUT
SEEDS = [SEED, SEED + 1, SEED + 2]
challenger = recipes.drop(index=INCUMBENT)["validation mAP"].idxmax()
by_seed = {name: {SEED: recipes.loc[name, "validation mAP"]} for name in (INCUMBENT, challenger)}
if by_seed[challenger][SEED] > by_seed[INCUMBENT][SEED]:
    for name in by_seed:
        for seed in SEEDS[1:]:
            by_seed[name][seed] = validation_map(name, CANDIDATES[name][1], seed=seed)[0]
else:  # behind on one seed already: no other seed can make it pass "ahead on every seed"
    print(f"{challenger} is behind {INCUMBENT} with seed {SEED}: the rule cannot switch, so "
          "the other seeds are not trained.")
decision = choose(INCUMBENT, challenger, by_seed[INCUMBENT], by_seed[challenger])
print(decision.describe())
seeds_table = pd.DataFrame(by_seed)
seeds_table.index.name = "seed"
display(seeds_table.rename(columns=lambda n: CANDIDATES[n][0]).round(4))
chosen = decision.chosen
chosen_settings = CANDIDATES[chosen][1].settings
print(f"the rule's recipe: {CANDIDATES[chosen][0]!r}; the course's CNNBH recipe "
      f"(CNNBHSettings().recipe): {CNNBHSettings().recipe!r}")
claim(chosen_settings.recipe == CNNBHSettings().recipe
      and chosen_settings.label_smoothing is None,
      "the course's CNNBH recipe is the one the validation rule picks")

# %%
# NBVAL_IGNORE_OUTPUT
headline_spec = Experiment("cnnbh", 48, profile=PROFILE, seed=SEED, epochs=EPOCHS)
print(headline_spec.settings)
print(headline_spec.recipe)
PAPER_MAP = {12: 0.532, 24: 0.564, 32: 0.610, 48: 0.617}  # paper Table 1, CIFAR-10 row


# %% [markdown]
# The comparison runs at the headline's budget (`EPOCHS` epochs): which recipe is ahead can
# change with the budget, so a recipe chosen after a short schedule need not be the best one
# after the full schedule. The cell above prints the rule's verdict; the one below says what
# the tables show.

# %%
# NBVAL_IGNORE_OUTPUT
sgd_seeds = seeds_table[INCUMBENT]
smoothing = (recipes.loc["cnnbh_recipe_sgd", "validation mAP"]
             - recipes.loc["cnnbh_recipe_sgd_nols", "validation mAP"])
spread = (f" The seed alone moves the SGD recipe over {sgd_seeds.min():.3f}–{sgd_seeds.max():.3f}."
          if len(sgd_seeds) > 1 else "")
display(Markdown(
    f"**What the validation split says (this run).** {decision.describe()}{spread} Label smoothing changes "
    f"the SGD recipe by {smoothing:+.3f}. The paper's plain recipe reaches "
    f"{recipes.loc['cnnbh_recipe_plain', 'validation mAP']:.3f} after {EPOCHS} epochs: without "
    "BatchNorm, augmentation and the one-cycle schedule it learns much more slowly."))

# %% [markdown]
# ## Table 1: mAP of Hamming ranking at 12–48 bits
#
# One model per code length (a finished checkpoint in `checkpoints/` is loaded instead of
# training again; `train min` is the time training actually took). Our headline is the
# **tie-aware** mAP (notebook 01: the database is sorted by class, so ranking equal distances
# in database order would bias it); the paper does not say how it ranks ties.

# %%
# NBVAL_IGNORE_OUTPUT
models, results = {}, {}
# Measured here (quick, 2 CPU cores): 12, 24, 32 and 48 bits took 1.8, 1.9, 1.8 and 1.9 min of
# training; the 48-bit model is trained by notebook 02 and loads here in seconds after it. From a
# fresh clone this notebook ran in 15.6 min.
print(training_plan(len(BITS), EPOCHS, backbone="small", device=DEVICE))
for bits in BITS:
    result = run(headline_spec.replace(bits=bits), data=data, device=DEVICE)
    models[bits], results[bits] = result.model, result.record
table1 = pd.DataFrame([{"bits": b, "dropout p": models[b].dropout_p,
                        "tie-aware mAP (ours)": r["map_tie_aware"], "mAP (paper)": r["paper_map"],
                        "mAP, ties in database order": r["map"], "P@H≤2": r["p_at_h2"],
                        "train min": r["train_seconds"] / 60} for b, r in results.items()])
table1.set_index("bits").round(3)

# %%
# NBVAL_IGNORE_OUTPUT
ours = {b: results[b]["map_tie_aware"] for b in BITS}
above = [b for b in BITS if b in PAPER_MAP and ours[b] > PAPER_MAP[b]]
below = [b for b in BITS if b in PAPER_MAP and ours[b] <= PAPER_MAP[b]]
print(f"our tie-aware mAP is above the paper's at {above or 'no'} bits, at or below it at "
      f"{below or 'no'} bits")
for b in BITS:
    if b in PAPER_MAP:
        print(f"  {b} bits: ours {ours[b]:.3f}, paper {PAPER_MAP[b]:.3f} "
              f"({ours[b] - PAPER_MAP[b]:+.3f})")

# %% [markdown]
# How far one seed can be trusted: the validation seed table above shows how much the seed
# alone moves a model, and notebook 07 measures the spread over seeds at 48 bits. Where we fall
# short, the reasons are the budget (60 epochs instead of the paper's 900), a small CPU budget
# and a JPEG copy of CIFAR-10; exercise 6 runs the paper's number of epochs on a GPU with the
# `paper` profile.

# %%
# NBVAL_IGNORE_OUTPUT
gaps = {b: ours[b] - PAPER_MAP[b] for b in BITS if b in PAPER_MAP}
display(Markdown(
    f"**Against the paper (this run).** Our tie-aware mAP is above the paper's at "
    f"{', '.join(map(str, above)) or 'no'} bits and at or below it at "
    f"{', '.join(map(str, below)) or 'no'} bits; the gaps are "
    + ", ".join(f"{g:+.3f} at {b} bits" for b, g in gaps.items()) + "."))

# %% [markdown]
# ## The paper's plain recipe, for contrast
#
# Same architecture without BatchNorm, no augmentation, no label smoothing, SGD (momentum 0.9)
# at the paper's constant initial learning rate 0.01 — and our epoch budget instead of 900.
# (We keep PyTorch's default weight initialization rather than the paper's Gaussian σ = 0.04.)

# %%
# NBVAL_IGNORE_OUTPUT
PLAIN_BITS = BITS[-1]
print(training_plan(1, EPOCHS, backbone="small", device=DEVICE))
plain = run(headline_spec.replace(bits=PLAIN_BITS, settings={"recipe": "plain"},
                                  label="cnnbh_plain"), data=data, device=DEVICE).record
pd.DataFrame([
    {"recipe": "modern (ours)", "bits": PLAIN_BITS,
     "tie-aware mAP": results[PLAIN_BITS]["map_tie_aware"],
     "train min": results[PLAIN_BITS]["train_seconds"] / 60},
    {"recipe": "paper's plain recipe, our epochs", "bits": PLAIN_BITS,
     "tie-aware mAP": plain["map_tie_aware"], "train min": plain["train_seconds"] / 60},
    {"recipe": "paper's plain recipe, 900 epochs (paper number)", "bits": PLAIN_BITS,
     "tie-aware mAP": PAPER_MAP.get(PLAIN_BITS), "train min": None},
]).round(3)

# %% [markdown]
# Without BatchNorm, augmentation and the one-cycle schedule, our budget is far too few epochs
# for the plain recipe: most of what our models reach at this budget comes from the recipe,
# not from the method. The numbers of this run:

# %%
# NBVAL_IGNORE_OUTPUT
modern = results[PLAIN_BITS]["map_tie_aware"]
display(Markdown(
    f"The paper's plain recipe reaches a tie-aware mAP of {plain['map_tie_aware']:.3f} at "
    f"{PLAIN_BITS} bits after {EPOCHS} epochs, against {modern:.3f} for our recipe in the same "
    f"epochs and the paper's {PAPER_MAP[PLAIN_BITS]:.3f} after 900 (paper number)."))
claim(plain["map_tie_aware"] < modern - 0.05,
      "the plain recipe stays far below ours at our budget")

# %% [markdown]
# ## Table 2: final dropout vs code length
#
# The paper lowered the knob dropout for short codes because $p = 0.5$ "enlarged the error
# rate" below about 20 bits. Dropout by code length is a setting, so we choose it the way the
# recipe was chosen: on the validation split. We train $k \in \{8, 12\}$ with $p = 0$ and
# $p = 0.5$ for `SWEEP_EPOCHS` epochs (so these four models are comparable with each other,
# not with Table 1).

# %%
# NBVAL_IGNORE_OUTPUT
sweep_spec = headline_spec.replace(protocol=val_data.protocol, epochs=SWEEP_EPOCHS)
print(training_plan(4, SWEEP_EPOCHS, backbone="small", device=DEVICE),
      "-- only if TRAIN_SWEEPS = True; else their saved results are read")
rows = []
for bits in (8, 12):
    for p in (0.0, 0.5):
        r = saved_or_run(sweep_spec.replace(bits=bits, settings={"dropout": p},
                                            label=f"cnnbh_p{p:g}"),
                         TRAIN_SWEEPS, data=val_data, device=DEVICE)
        rows.append({"bits": bits, "dropout p": p, "paper's choice": CNNBH_DROPOUT[bits] == p,
                     "validation mAP": r["map_tie_aware"], "P@H≤2": r["p_at_h2"],
                     "train min": r["train_seconds"] / 60})
pd.DataFrame(rows).round(3)

# %%
# NBVAL_IGNORE_OUTPUT
t2 = pd.DataFrame(rows).set_index(["bits", "dropout p"])["validation mAP"]
for bits in (8, 12):
    gap = t2[bits, 0.0] - t2[bits, 0.5]
    better = ("a tie (within 0.01)" if abs(gap) <= 0.01 else
              "p = 0 is better here" if gap > 0 else "p = 0.5 is better here")
    print(f"{bits} bits: validation mAP {t2[bits, 0.0]:.3f} with p = 0, {t2[bits, 0.5]:.3f} "
          f"with p = 0.5 -> {better} (the paper's choice: p = "
          f"{CNNBH_DROPOUT[bits]:g})")

# %% [markdown]
# The paper chose its rates by *classification error on a validation split after 900 epochs*;
# we measure retrieval mAP after a short schedule. If the printed verdict disagrees with the
# paper's choice, that is a finding, not a bug: with few epochs, dropout on the knob also acts
# as a regularizer that spreads information over all bits, and the paper's concern (too few
# surviving units to classify) matters most once training has converged.
#
# In the run shown $p = 0.5$ is better than the paper's choice at both 8 and 12 bits on the
# validation split: by 0.027 at 8 bits (0.346 against 0.319 with the paper's $p = 0$) and by
# 0.051 at 12 bits (0.422 against 0.371 with $p = 0$; the paper's $p = 0.2$ lies between the
# two rates we tried). Even so, Table 1 trains with the paper's Table 2 rates ($p = 0.2$ at 12
# bits), not with the rate the validation split prefers, because this notebook reproduces the
# paper's setting. Exercise 3 asks whether the effect survives the full budget.

# %% [markdown]
# ## Table 3: is it the features or the signs?
#
# At 48 bits the paper compares, by precision of the top 500 and 1,500 of a ranking:
# the CNNBH codes (Hamming ranking); **L2_fc**, Euclidean distance on the real knob activations
# $h$; **L2_fc+**, Euclidean distance on $h + 0.5\,\operatorname{sign}(h)$, which pushes the two
# signs apart; and **Pool3 + LSH**, 48 random hyperplanes on the 1,024-D Pool3 features.

# %%
# NBVAL_IGNORE_OUTPUT
k = BITS[-1]
model = models[k]
NS = [500, 1500]
r = results[k]
h_q, h_db = embed(model, data.images("query")), embed(model, data.images("database"))
ql, dl = data.part_labels("query"), data.part_labels("database")


def pool3(m, x):
    return m.backbone(x)


f_q = embed(model, data.images("query"), fn=pool3)
f_db = embed(model, data.images("database"), fn=pool3)
lsh = LSH(k, random_state=SEED).fit(f_db.numpy())
rows = [
    ("CNNBH codes (Hamming, tie-aware)", [r["p_at_500_tie_aware"], r["p_at_1500_tie_aware"]],
     [None, 0.6817]),
    ("L2_fc (Euclidean on h)", euclidean_precision_at_n(h_q, h_db, ql, dl, NS), [0.6150, 0.5888]),
    ("L2_fc+ (h ± 0.5)", euclidean_precision_at_n(h_q + 0.5 * torch.sign(h_q),
                                                  h_db + 0.5 * torch.sign(h_db), ql, dl, NS),
     [0.6262, 0.6051]),
    ("Pool3 + LSH (tie-aware)", precision_at_n_curve(lsh.encode(f_q.numpy()),
                                                     lsh.encode(f_db.numpy()), ql, dl, NS,
                                                     ties="expected"), [0.3933, 0.3464]),
]
pd.DataFrame([{"method": name, "P@500 (ours)": ours[0], "P@1500 (ours)": ours[1],
               "P@500 (paper)": paper[0], "P@1500 (paper)": paper[1]}
              for name, ours, paper in rows]).round(4)

# %% [markdown]
# (The paper's Table 3 gives a single CNNBH figure, 68.17 %, not one for each N; we put it in
# the P@1500 column, so the paper's P@500 cell stays empty.)
#
# In the run shown the order is the paper's: the CNNBH codes lead (P@500 0.6755, P@1500
# 0.6745; 0.0072 below the paper's 0.6817), then L2_fc+ (0.6397, 0.6230), L2_fc (0.6219,
# 0.5969) and, far behind, Pool3 + LSH (0.4073, 0.3673). Our three comparison rows are a little
# above the paper's, our CNNBH codes a little below. Ranking by the 48 signs beats Euclidean
# ranking on the real activations by 0.054 at P@500 and 0.078 at P@1500.
#
# ## Figures 2/4 of the paper: precision within radius 2, PR curve, precision@N

# %%
# NBVAL_IGNORE_OUTPUT
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
plot_metric_vs_bits({"CNNBH": {b: results[b]["p_at_h2"] for b in BITS}},
                    ylabel="precision within Hamming radius 2", ax=axes[0],
                    title="(a) precision, Hamming radius 2")
q48, db48 = sign(h_q), sign(h_db)  # the codes: signs of the knob activations of Table 3
prec, rec = precision_recall_curve(q48, db48, ql, dl)
plot_pr_curves({f"CNNBH {k} bits": (prec, rec)}, ax=axes[1], title=f"(b) PR curve, {k} bits")
ns = np.unique(np.linspace(1, min(2000, len(db48)), 40).astype(int))
plot_precision_at_n({f"CNNBH {k} bits": (ns, precision_at_n_curve(q48, db48, ql, dl, ns))},
                    ax=axes[2], title=f"(c) precision@N, {k} bits")
save_figure(fig, "cnnbh_curves.png")
plt.show()

# %% [markdown]
# ## Are the knob activations near zero?
#
# Cross-entropy never asks $h$ to be far from the threshold 0. If many activations sit near 0,
# a small perturbation of the image flips bits — the motivation for DSH's regularizer, which
# pulls outputs towards $\pm 1$ (notebook 04).

# %%
# NBVAL_IGNORE_OUTPUT
acts = h_db.numpy()
scale = np.abs(acts).mean()
near = float((np.abs(acts) < 0.1 * scale).mean())
plot_histograms({f"knob activations, {k} bits (database)": acts}, bins=100,
                xlabel="activation h", save="cnnbh_knob_histogram.png",
                title=f"{near:.1%} of activations within ±10% of the mean |h| around 0")
plt.show()

# %% [markdown]
# ## What to notice
#
# * A classifier with a narrow linear layer is already a hashing model; codes come for free.
# * Table 1: in 60 CPU epochs the modern recipe beats the paper's 900-epoch result only at 24
#   bits (+0.032); it is 0.005 below at 12 bits and 0.023 and 0.027 below at 32 and 48 bits.
#   The plain-recipe row (0.368 at 48 bits) shows how much of what we reach is the recipe
#   rather than the method. Our images are the JPEG copy of CIFAR-10 (slightly lossy), the
#   backbone is the paper's, the protocol is the paper's.
# * Precision within Hamming radius 2 (figure (a)) does not simply rise with the number of bits:
#   a query whose Hamming ball retrieves nothing scores 0, and longer codes leave more balls
#   empty (`p_at_h2_empty_fraction` in `results/cifar10-1k/`). Here it rises from 0.577 at 12
#   bits to 0.649 at 24, then falls to 0.629 at 32 and 0.540 at 48 bits, where 29.7% of the
#   queries find their ball empty (4.9% at 32 bits).
# * Table 3: Hamming ranking on the signs beats Euclidean ranking on the real activations
#   (P@1500 0.6745 against 0.5969), as in the paper: the magnitude inside each sign carries
#   little extra class information. Figure (c) agrees: the 48-bit codes' precision@N stays
#   near 0.67 from a few hundred images out to N = 2,000.
# * The knob activations form a single bell centred at 0 (5.6% of them lie within ±10% of the
#   mean |h|): nothing in cross-entropy pushes them away from the threshold.
#
# ## Exercises
#
# 1. **Build the knob model yourself** from `torch.nn` layers (conv stack, knob, dropout,
#    classifier) as `MyKnobModel(n_bits)` below, with `forward` (the logits) and `embed` (the
#    knob activations); `check_knob_model(MyKnobModel)` compares the parameter count and
#    output shapes with the package's `CNNBHNet` and says what it recognizes.
# 2. **Write one training step**: `my_training_step(model, images, labels, optimizer, loss_fn)`
#    does forward, loss, backward and the update, in the right order, as in `plain_epoch`
#    above. `check_training_step` runs it twice against a reference and names the usual slips
#    (a forgotten `zero_grad`, a missing `step`).
# 3. Train the 12-bit model with $p = 0.5$ for the full budget: does Table 2's effect survive?
# 4. Replace the knob by a `tanh` layer and take signs: does mAP change? Why might it?
# 5. Compute `hashlib_edu.metrics.mean_average_precision(..., ties="stable")` and
#    `ties="expected"` for the 12-bit codes: why do they differ more at 12 bits than at 48?
# 6. On a GPU, run this notebook with `PROFILE = "paper"` (900 epochs, the paper's number):
#    how do the four code lengths move against the paper's Table 1? Then try `cnnbh_adamw_recipe`
#    with `extra["conv_dropout"] = 0.5` (the paper's value) at 60 epochs and compare.
# 7. **Does the budget change the choice?** Build the candidates for 15 epochs
#    (`candidates(15)`), score each with `validation_map(name, spec)` (still on the validation
#    split; about a CPU minute each) and apply `choose` as above. Does the rule pick the same
#    recipe as at the headline's budget? What does that say about choosing a setting on a
#    short schedule?

# %%
class MyKnobModel(nn.Module):
    """Exercise 1: the paper's CIFAR-10 network (no BatchNorm) with a k-unit knob."""

    def __init__(self, n_bits: int = 48):
        super().__init__()
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError

    def embed(self, x):
        raise NotImplementedError


check_knob_model(MyKnobModel)


# %%
def my_training_step(model, images, labels, optimizer, loss_fn):
    """Exercise 2: one step of training, in place."""
    raise NotImplementedError


check_training_step(my_training_step)
