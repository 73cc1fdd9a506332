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
# # 01 · Retrieval basics
#
# **Papers referred to here:**
#
# * CNNBH — Jinma Guo and Jianmin Li, "CNN Based Hashing for Image Retrieval",
#   arXiv:1509.01354, 2015. <https://arxiv.org/abs/1509.01354> — the `cifar10-1k` protocol
#   of section 8, the precision@N of section 7, PR curves by Hamming radius (section 6).
# * DSH — Haomiao Liu, Ruiping Wang, Shiguang Shan, Xilin Chen, "Deep Supervised Hashing for
#   Fast Image Retrieval", CVPR 2016.
#   <https://openaccess.thecvf.com/content_cvpr_2016/html/Liu_Deep_Supervised_Hashing_CVPR_2016_paper.html>
#   — the mAP@K convention of section 3, PR curves by Hamming radius (section 6).
# * Tie-aware AP (section 4) — Kun He, Fatih Cakir, Sarah Adel Bargal, Stan Sclaroff,
#   "Hashing as Tie-Aware Learning to Rank", CVPR 2018.
#
# Every later notebook ends with the same few numbers: **mAP** of Hamming ranking,
# **precision within Hamming radius 2**, **precision-recall curves** and **precision@N**. They
# decide which method "wins", so we should know exactly what they measure — and where they can
# mislead. This notebook builds each one by hand on examples small enough to check on paper,
# shows two traps hidden in them (**ties** between equal distances, and **empty retrievals**),
# then runs them at CIFAR-10 scale and times Hamming search itself.
#
# Everything here uses `hashlib_edu.metrics` and `hashlib_edu.index`, the code every other
# notebook evaluates with.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/hashlib-edu/hashlib_edu/blob/main/notebooks/01_retrieval_basics.ipynb)

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
BITS = 48
SEED = 0

# %%
# NBVAL_IGNORE_OUTPUT
import itertools
import time
from math import comb

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hashlib_edu.codes import pack_codes, to_pm1
from hashlib_edu.data import load_protocol
from hashlib_edu.index import HammingIndex, faiss_available
from hashlib_edu.metrics import (
    hamming_distance,
    mean_average_precision,
    precision_at_n_curve,
    precision_recall_curve,
    precision_within_radius,
)
from hashlib_edu.plots import plot_pr_curves, plot_precision_at_n, save_figure
from hashlib_edu.profiles import use_profile

PROFILE = use_profile(PROFILE)
print(f"profile {PROFILE}; {BITS}-bit codes in the CIFAR-10 part; faiss installed: "
      f"{faiss_available()}")


# %% [markdown]
# ## 1 · Binary codes and Hamming distance
#
# A $k$-bit code is a vector $b \in \{-1, +1\}^k$ (the papers' form: $b = \operatorname{sign}(h)$
# of a network output $h$), or equivalently $k$ bits in $\{0, 1\}$ with bit $1 \Leftrightarrow +1$.
# On disk and in memory the bits are **packed**, 8 per byte: a 48-bit code takes 6 bytes, and
# 59,000 codes fit in 354 KB.
#
# The **Hamming distance** counts the bits where two codes differ,
# $d_H(b, b') = \#\{i : b_i \ne b'_i\}$. Two ways to compute it:
#
# * **XOR + popcount** on packed bits: XOR sets exactly the differing bits, popcount counts them,
#   $d_H(b, b') = \operatorname{popcount}(b \oplus b')$. One XOR and one popcount instruction per
#   64 bits — this is why hashing is fast.
# * **Inner product** of $\pm 1$ codes: every agreeing bit adds $+1$ to $b^\top b'$, every
#   differing bit adds $-1$, so $b^\top b' = (k - d_H) - d_H$, that is
#
# $$d_H(b, b') = \frac{k - b^\top b'}{2}.$$
#
# The identity is why hashing losses are so often written with inner products: during training
# the real-valued $h^\top h'$ of relaxed codes stands in for (minus twice) the distance.
#
# Two 12-bit codes, packed into 2 bytes each (the last 4 bits of the second byte are zero
# padding, identical in both codes, so they never count):

# %%
def popcount(x: np.ndarray) -> np.ndarray:
    """Number of 1 bits in each uint8 (np.bitwise_count needs numpy >= 2)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return np.unpackbits(x[..., None], axis=-1).sum(axis=-1)


k = 12
a_bits = np.array([[1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0]], dtype=np.uint8)
b_bits = np.array([[1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0]], dtype=np.uint8)
a_packed, b_packed = pack_codes(a_bits), pack_codes(b_bits)
xor = np.bitwise_xor(a_packed, b_packed)
for name, row in [("a", a_packed), ("b", b_packed), ("a XOR b", xor)]:
    print(f"{name:>8}: " + " ".join(f"{byte:08b}" for byte in row[0]))
print(f"popcount of each XOR byte: {popcount(xor)[0].tolist()} -> d = {int(popcount(xor).sum())}")

a_pm, b_pm = to_pm1(a_bits)[0].astype(int), to_pm1(b_bits)[0].astype(int)
inner = int(a_pm @ b_pm)
print(f"as ±1 codes: b^T b' = {inner} -> (k - b^T b') / 2 = ({k} - {inner}) / 2 = {(k - inner) // 2}")
print(f"hashlib_edu.metrics.hamming_distance: {int(hamming_distance(a_bits, b_bits)[0, 0])}")

# %% [markdown]
# The same three computations on 5 × 200 random 48-bit codes agree everywhere:

# %%
rng = np.random.default_rng(0)
Q = rng.choice([-1, 1], size=(5, 48)).astype(np.int8)
D = rng.choice([-1, 1], size=(200, 48)).astype(np.int8)
via_xor = popcount(pack_codes(Q)[:, None, :] ^ pack_codes(D)[None, :, :]).sum(axis=-1)
via_inner = (48 - Q.astype(int) @ D.T.astype(int)) // 2
via_package = hamming_distance(Q, D)
print("XOR+popcount == inner-product identity:", bool(np.array_equal(via_xor, via_inner)))
print("XOR+popcount == hamming_distance:      ", bool(np.array_equal(via_xor, via_package)))
print("distances seen:", np.unique(via_package).min(), "to", np.unique(via_package).max(),
      "(only k + 1 = 49 values are possible)")

# %% [markdown]
# ## 2 · Ranking a toy database by hand
#
# A query image of a **cat** has the 6-bit code `101100`. The database holds eight images, A to H.
# An item is **relevant** when it has the query's class. *Hamming ranking* sorts the database by
# increasing distance to the query; items at equal distance keep their database order (a
# *stable* sort — `ties="stable"`, the package's default, and what `np.argsort(...,
# kind="stable")` gives).

# %%
query_code = np.array([[1, 0, 1, 1, 0, 0]], dtype=np.uint8)
toy = pd.DataFrame({
    "item": list("ABCDEFGH"),
    "code": ["110011", "101110", "110001", "101000", "100101", "101100", "001010", "000100"],
    "label": ["car", "dog", "cat", "cat", "car", "cat", "dog", "cat"],
})
toy_codes = np.array([[int(c) for c in s] for s in toy["code"]], dtype=np.uint8)
toy_labels = toy["label"].map({"cat": 0, "dog": 1, "car": 2}).to_numpy()
query_label = np.array([0])  # cat
toy["distance"] = hamming_distance(query_code, toy_codes)[0]
toy["relevant"] = toy["label"] == "cat"
toy.set_index("item")

# %% [markdown]
# Sorting by distance (stable) gives the ranking; `HammingIndex.search` returns the same top of
# it, which is how you would retrieve in practice:

# %%
order = np.argsort(toy["distance"].to_numpy(), kind="stable")
ranked = toy.iloc[order].reset_index(drop=True)
ranked.index = pd.RangeIndex(1, len(ranked) + 1, name="rank")
print("ranking:", " ".join(ranked["item"]))

index = HammingIndex(6, backend="numpy")
index.add(toy_codes)
dist, idx = index.search(query_code, 4)
print("HammingIndex top 4:", " ".join(toy["item"].to_numpy()[idx[0]]), "at distances",
      dist[0].tolist())
ranked[["item", "code", "label", "distance", "relevant"]]

# %% [markdown]
# B (dog) and D (cat) tie at distance 1, E (car) and H (cat) at distance 2: the stable sort put
# B before D and E before H only because they come first in the database. Keep that in mind.
#
# ## 3 · Average precision, step by step
#
# Rank the database $x_1, x_2, \dots, x_n$ for one query. With $\operatorname{rel}(i) \in \{0, 1\}$
# the relevance of rank $i$, the precision of the top $i$ and the **average precision** are
#
# $$P@i = \frac{1}{i} \sum_{j=1}^{i} \operatorname{rel}(j), \qquad
#   \mathrm{AP} = \frac{1}{R} \sum_{i=1}^{n} P@i \, \operatorname{rel}(i), \qquad
#   R = \sum_{i=1}^{n} \operatorname{rel}(i).$$
#
# In words: walk down the list; each time you meet a relevant item, write down the precision of
# the list so far; AP is the mean of these $R$ numbers. It is 1 exactly when all relevant items
# come before all others, and every irrelevant item ranked above a relevant one costs something —
# more near the top. **mAP** is the mean of AP over the queries (a query with no relevant item
# scores 0). **mAP@K** only walks the top $K$ and, following the evaluation code of DSH and of
# DeepHash-pytorch (a widely used open-source collection of deep hashing methods), divides by
# the number of relevant items *found in the top K* instead of $R$.

# %%
steps = ranked[["item", "distance", "relevant"]].copy()
steps["precision@rank"] = steps["relevant"].cumsum() / steps.index
steps["P@i·rel(i)"] = steps["precision@rank"].where(steps["relevant"], 0.0)
steps.round(4)

# %%
R = int(steps["relevant"].sum())
ap_by_hand = steps["P@i·rel(i)"].sum() / R
terms = " + ".join(f"{p:.4f}" for p in steps.loc[steps["relevant"], "precision@rank"])
print(f"AP by hand:             ({terms}) / {R} = {ap_by_hand:.4f}")
ap_package = mean_average_precision(query_code, toy_codes, query_label, toy_labels)
print(f"mean_average_precision: {ap_package:.4f}")

top3 = steps.loc[:3]
ap3_by_hand = top3["P@i·rel(i)"].sum() / top3["relevant"].sum()
ap3_package = mean_average_precision(query_code, toy_codes, query_label, toy_labels, top_k=3)
print(f"AP@3 by hand: {ap3_by_hand:.4f}, package (top_k=3): {ap3_package:.4f}")
assert abs(ap_by_hand - ap_package) < 1e-12 and abs(ap3_by_hand - ap3_package) < 1e-12

# %% [markdown]
# ## 4 · Why ties matter
#
# With $k$ bits a distance takes one of only $k + 1$ values. A database of 59,000 images ranked
# with 48-bit codes therefore comes in at most 49 blocks of equal distance, often thousands of
# images each — and with 8 or 12 bits, far bigger. Inside a block the Hamming distance says
# nothing, yet AP depends on the order there. A stable sort uses the **database storage order**,
# which has nothing to do with the query (or worse, *is* related to the labels: our CIFAR-10
# database is stored sorted by class).
#
# In the toy, store the same database in reverse order (H to A) and the score changes, with
# exactly the same codes:

# %%
ap_forward = mean_average_precision(query_code, toy_codes, query_label, toy_labels)
ap_reverse = mean_average_precision(query_code, toy_codes[::-1], query_label, toy_labels[::-1])
print(f"stable AP, database stored A..H: {ap_forward:.4f}")
print(f"stable AP, database stored H..A: {ap_reverse:.4f}")

# %% [markdown]
# **Tie-aware AP** (He, Cakir, Bargal & Sclaroff, *Hashing as Tie-Aware Learning to Rank*,
# CVPR 2018) removes the arbitrariness: it is the **expected** AP when the order inside every
# block of equal distance is uniformly random,
#
# $$\mathrm{AP}_{\text{tie}} = \mathbb{E}_{\pi}\big[\mathrm{AP}(\pi)\big], \quad
#   \pi \text{ sorts by distance and orders each tie block uniformly at random.}$$
#
# It needs no sampling. Take a block of $n$ tied items, $r$ of them relevant, ranked after $N$
# items of which $R$ are relevant. A relevant item of the block lands at block position $t$ with
# probability $1/n$; on average $(t - 1)\frac{r-1}{n-1}$ of the block's other relevant items are
# then ahead of it, so its expected precision is
#
# $$\mathbb{E}[\text{precision}] = \frac{R + 1 + (t - 1)\frac{r - 1}{n - 1}}{N + t}.$$
#
# Averaging over $t$ and summing over the $r$ relevant items gives a closed form (harmonic
# numbers), so a query costs one pass over its $k + 1$ blocks — as cheap as the stable AP
# (`ties="expected"`; the formula is in the docstring of `hashlib_edu.metrics`). He et al. go
# further and *train* with tie-aware metrics; here we only evaluate with them.
#
# The toy has $2 \times 2 = 4$ equally likely tie orders. Averaging the stable AP over all four
# gives the tie-aware AP exactly:

# %%
distance = toy["distance"].to_numpy()
blocks = [np.flatnonzero(distance == d) for d in np.unique(distance)]
rows = []
for choice in itertools.product(*[itertools.permutations(b) for b in blocks]):
    order = np.concatenate([np.array(c, dtype=int) for c in choice])
    rows.append({"ranking": " ".join(toy["item"].to_numpy()[order]),
                 "AP": mean_average_precision(query_code, toy_codes[order], query_label,
                                              toy_labels[order])})
orders_table = pd.DataFrame(rows)
ap_expected = mean_average_precision(query_code, toy_codes, query_label, toy_labels,
                                     ties="expected")
print(f"mean over the {len(rows)} tie orders:  {orders_table['AP'].mean():.4f}")
print(f'ties="expected" (tie-aware AP): {ap_expected:.4f}')
orders_table.round(4)


# %% [markdown]
# ### Ties at scale: 8 to 48 bits
#
# A toy retrieval problem with class structure stands in for a trained hashing model: 10
# classes, each with a random *prototype* code; every image's code is its class prototype with
# each bit flipped with probability 0.15. There are 10 queries and 200 database items per class,
# and the database is **stored sorted by class**, like CIFAR-10's. For each code length we
# compare the stable mAP (class-sorted storage, and reversed), the mAP under 100 random
# database orders, the tie-aware mAP, and the two extremes: every query's relevant items first in
# their tie blocks (best case) or last (worst case).

# %%
def class_codes(bits: int, seed: int = 0, flip: float = 0.15, n_query: int = 10,
                n_db: int = 200, n_classes: int = 10):
    """Toy codes with class structure: (query codes, db codes, query labels, db labels)."""
    rng = np.random.default_rng([seed, bits])
    prototypes = rng.integers(0, 2, (n_classes, bits), dtype=np.uint8)
    q_labels = np.repeat(np.arange(n_classes), n_query)
    db_labels = np.repeat(np.arange(n_classes), n_db)  # stored sorted by class

    def draw(labels):
        return prototypes[labels] ^ (rng.random((len(labels), bits)) < flip).astype(np.uint8)

    return draw(q_labels), draw(db_labels), q_labels, db_labels


def tie_extremes(q, db, ql, dl):
    """mAP when each query's relevant items come first (best) or last (worst) in tie blocks."""
    best, worst = [], []
    for c in np.unique(ql):
        mine = ql == c
        first = np.argsort(dl != c, kind="stable")  # class c stored first
        last = np.argsort(dl == c, kind="stable")   # class c stored last
        best.append(mean_average_precision(q[mine], db[first], ql[mine], dl[first]))
        worst.append(mean_average_precision(q[mine], db[last], ql[mine], dl[last]))
    weights = np.bincount(ql)[np.unique(ql)]
    return np.average(best, weights=weights), np.average(worst, weights=weights)


TIE_BITS = [8, 16, 32, 48]
N_ORDERS = 100
shuffled, rows = {}, []
for bits in TIE_BITS:
    q, db, ql, dl = class_codes(bits)
    perm_rng = np.random.default_rng(1)
    shuffled[bits] = np.array([mean_average_precision(q, db[p], ql, dl[p]) for p in
                               (perm_rng.permutation(len(dl)) for _ in range(N_ORDERS))])
    best, worst = tie_extremes(q, db, ql, dl)
    rows.append({"bits": bits,
                 "worst tie order": worst,
                 "stable (class-sorted db)": mean_average_precision(q, db, ql, dl),
                 "stable (reversed db)": mean_average_precision(q, db[::-1], ql, dl[::-1]),
                 "random orders: mean": shuffled[bits].mean(),
                 "random orders: std": shuffled[bits].std(),
                 "tie-aware (expected)": mean_average_precision(q, db, ql, dl, ties="expected"),
                 "best tie order": best})
tie_table = pd.DataFrame(rows).set_index("bits")
tie_table.round(4)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
ax = axes[0]
expected = tie_table["tie-aware (expected)"]
for column, style in [("best tie order", "^--"), ("stable (class-sorted db)", "o-"),
                      ("stable (reversed db)", "s-"), ("worst tie order", "v--")]:
    ax.plot(TIE_BITS, tie_table[column] - expected, style, label=column)
spread = 2 * tie_table["random orders: std"]
ax.fill_between(TIE_BITS, -spread, spread, color="grey", alpha=0.3,
                label="random orders (±2 std)")
ax.axhline(0, color="k", lw=0.8)
ax.set_xticks(TIE_BITS)
ax.set_xlabel("bits")
ax.set_ylabel("mAP − tie-aware mAP")
ax.set_title("How much mAP hangs on the tie order")
ax.legend(fontsize=7)
ax.grid(alpha=0.3)

ax = axes[1]
b0 = TIE_BITS[0]
ax.hist(shuffled[b0], bins=20, color="grey", alpha=0.7,
        label=f"{N_ORDERS} random database orders")
ax.axvline(tie_table.loc[b0, "tie-aware (expected)"], color="k", lw=2, label="tie-aware (expected)")
ax.axvline(tie_table.loc[b0, "stable (class-sorted db)"], color="C1", lw=2,
           label="stable, class-sorted db")
ax.axvline(tie_table.loc[b0, "stable (reversed db)"], color="C2", lw=2, label="stable, reversed db")
ax.locator_params(axis="x", nbins=5)
ax.set_xlabel(f"mAP, {b0} bits")
ax.set_ylabel("count")
ax.set_title(f"{b0} bits: one set of codes, many scores")
ax.legend(fontsize=7)
fig.tight_layout()
save_figure(fig, "retrieval_tie_effect.png")
plt.show()

# %% [markdown]
# At 8 bits the tie order alone moves mAP by more than ±0.1 between the extremes, although the
# codes are the same, and both stable scores (class-sorted storage and reversed) land outside, or
# at the edge of, the spread of random orders. By 48 bits the blocks are small and all versions
# nearly agree. The random orders scatter tightly around the tie-aware value: that is what it
# is — their average, computed exactly.
#
# The extreme case makes the danger plain: a "hash function" that gives **every image the same
# code** ties everything. Any honest metric should call it chance; the stable mAP on a
# class-sorted database does not:

# %%
q, db, ql, dl = class_codes(8)
same_q, same_db = np.zeros((len(ql), 8), np.uint8), np.zeros((len(dl), 8), np.uint8)
print(f"constant codes, stable, class-sorted db:  "
      f"{mean_average_precision(same_q, same_db, ql, dl):.4f}")
print(f"constant codes, stable, reversed db:      "
      f"{mean_average_precision(same_q, same_db[::-1], ql, dl[::-1]):.4f}")
print(f"constant codes, tie-aware:                "
      f"{mean_average_precision(same_q, same_db, ql, dl, ties='expected'):.4f}")
print(f"fraction of relevant items (chance level): {np.mean(dl[None, :] == ql[:, None]):.4f}")

# %% [markdown]
# The course reports both: `map` (stable, what published evaluation code computes, so comparable
# with papers) and `map_tie_aware`. When they differ noticeably, the codes are too short or
# collapsed, and the stable number should not be trusted.
#
# ## 5 · Precision within Hamming radius 2, and the empty-retrieval trap
#
# *Hash lookup* retrieves every database item within Hamming radius $r$ of the query — for
# $r = 2$ one can enumerate the $V(k, 2) = 1 + k + \binom{k}{2}$ codes in the ball and look each
# up in a hash table, with no scan at all. The metric is the precision of that set, averaged
# over queries:
#
# $$P@H{\le}r = \frac{1}{|Q|} \sum_{q \in Q}
#   \frac{|\{x : d_H(q, x) \le r,\ x \text{ relevant to } q\}|}{|\{x : d_H(q, x) \le r\}|},
#   \qquad \text{with } 0/0 := 0.$$
#
# In the toy, radius 2 retrieves F, B, D, E, H:

# %%
hits_d, hits_i = index.radius_search(query_code, 2)[0]
print("retrieved:", " ".join(f"{toy['item'][i]}(d={d})" for d, i in zip(hits_d, hits_i, strict=True)))
p2 = precision_within_radius(query_code, toy_codes, query_label, toy_labels, radius=2)
print(f"precision within radius 2: {p2:.4f}")
p0, empty0 = precision_within_radius(query_code[:, ::-1], toy_codes, query_label, toy_labels,
                                     radius=0, return_empty_fraction=True)
print(f"query 001101 at radius 0 retrieves nothing: precision {p0:.4f}, empty fraction {empty0:.4f}")

# %% [markdown]
# That last line is the **trap**: a query whose ball is empty scores 0 (the convention of the
# papers' evaluation code, and ours). The ball holds $V(k, 2)$ of the $2^k$ possible codes, a
# fraction that vanishes fast with $k$: with 48 bits it is $1177 / 2^{48} \approx 4 \cdot
# 10^{-12}$. Unless the codes of similar images are very close, long codes retrieve nothing, and
# P@H≤2 *falls* as codes get longer — even when the ranking gets better.
#
# With **random** codes, a database item lands in a query's ball with probability
# $V(k,2)/2^k$, so a ball is empty with probability $(1 - V(k,2)/2^k)^{n_{db}}$:

# %%
ql_rand = np.repeat(np.arange(10), 10)
dl_rand = np.repeat(np.arange(10), 200)
rows = []
for bits in [8, 12, 16, 20, 24, 32, 48]:
    rng = np.random.default_rng(bits)
    q_r = rng.integers(0, 2, (len(ql_rand), bits), dtype=np.uint8)
    db_r = rng.integers(0, 2, (len(dl_rand), bits), dtype=np.uint8)
    ball = 1 + bits + comb(bits, 2)
    p, empty = precision_within_radius(q_r, db_r, ql_rand, dl_rand, radius=2,
                                       return_empty_fraction=True)
    rows.append({"bits": bits, "codes in the ball V(k,2)": ball,
                 "expected items in the ball": len(dl_rand) * ball / 2**bits,
                 "empty fraction (theory)": (1 - ball / 2**bits) ** len(dl_rand),
                 "empty fraction (measured)": empty, "P@H≤2": p})
pd.DataFrame(rows).set_index("bits").round(4)

# %% [markdown]
# Random codes give chance precision (0.1) while balls are full, then 0 once they are empty —
# here between 16 and 24 bits for 2,000 database items. Codes with class structure (the toy
# model of section 4) show the trap next to mAP:

# %%
rows = []
for bits in TIE_BITS:
    q, db, ql, dl = class_codes(bits)
    p, empty = precision_within_radius(q, db, ql, dl, radius=2, return_empty_fraction=True)
    rows.append({"bits": bits, "mAP": mean_average_precision(q, db, ql, dl),
                 "P@H≤2": p, "empty fraction": empty,
                 "P@H≤2 over non-empty queries": p / (1 - empty) if empty < 1 else np.nan})
pd.DataFrame(rows).set_index("bits").round(4)

# %% [markdown]
# mAP keeps rising with the code length while P@H≤2 peaks at 16 bits and collapses: at 48 bits
# the ranking is nearly perfect, yet almost no query finds anything within radius 2. Always
# read P@H≤2 together with its empty fraction (the results files store both:
# `p_at_h2`, `p_at_h2_empty_fraction`). Averaging only over non-empty queries (last column)
# hides the problem the other way round: it is undefined when no query retrieves anything, and
# a method could score well there by answering very few queries.
#
# ## 6 · Precision-recall curve by Hamming radius
#
# Growing the radius $r = 0, 1, \dots, k$ traces a precision-recall curve with one point per
# radius (as in DSH's and CNNBH's figures). We **micro-average**: with $\mathcal{R}_q(r)$ the
# items within radius $r$ of query $q$ and $\mathcal{G}_q$ its relevant items, counts are summed
# over all queries before dividing,
#
# $$P(r) = \frac{\sum_q |\mathcal{R}_q(r) \cap \mathcal{G}_q|}{\sum_q |\mathcal{R}_q(r)|},
#   \qquad
#   \mathrm{Rec}(r) = \frac{\sum_q |\mathcal{R}_q(r) \cap \mathcal{G}_q|}{\sum_q |\mathcal{G}_q|}.$$
#
# Queries that retrieve more weigh more, and an empty ball adds nothing instead of a zero (unlike
# P@H≤2 above); a radius at which no query retrieves anything has no precision (`nan`, left out
# of the plot). At $r = k$ everything is retrieved: recall 1, precision = fraction of relevant
# items. The toy query, radius by radius:

# %%
prec, rec = precision_recall_curve(query_code, toy_codes, query_label, toy_labels)
pd.DataFrame({"retrieved": np.cumsum(np.bincount(distance, minlength=7)),
              "precision": prec, "recall": rec},
             index=pd.RangeIndex(0, 7, name="radius")).round(4)

# %%
curves = {}
for bits in TIE_BITS[1:]:
    q, db, ql, dl = class_codes(bits)
    curves[f"{bits} bits"] = precision_recall_curve(q, db, ql, dl)
plot_pr_curves(curves, title="Toy class codes: PR curve by Hamming radius",
               save="retrieval_toy_pr_curve.png")
plt.show()
prec48, rec48 = curves["48 bits"]
pd.DataFrame({"precision": prec48[:13], "recall": rec48[:13]},
             index=pd.RangeIndex(0, 13, name="radius (48 bits)")).round(4).transpose()

# %% [markdown]
# ## 7 · Precision@N
#
# $P@N$ is the fraction of relevant items among the first $N$ of the ranking (CNNBH reports
# $N$ = 500 and 1,500). It never has an empty list, and it ignores everything past rank $N$.
# Ties matter as for mAP when rank $N$ falls inside a tie block: `ties="expected"` takes the
# expected number of relevant items that make the cut.

# %%
ns = [1, 10, 50, 100, 200, 500, 1000]
p_at_n, rows = {}, {}
for bits in (8, BITS):
    q, db, ql, dl = class_codes(bits)
    all_ns = np.arange(1, len(dl) + 1)
    p_at_n[f"{bits} bits"] = (all_ns, precision_at_n_curve(q, db, ql, dl, all_ns))
    rows[f"{bits} bits, stable"] = precision_at_n_curve(q, db, ql, dl, ns)
    rows[f"{bits} bits, tie-aware"] = precision_at_n_curve(q, db, ql, dl, ns, ties="expected")
plot_precision_at_n(p_at_n, title="Toy class codes: precision of the top N")
plt.show()
pd.DataFrame(rows, index=pd.Index(ns, name="N")).round(4)

# %% [markdown]
# Each class has 200 database items, so P@N can stay near 1 up to N = 200 and must fall after:
# P@1000 ≤ 200/1000 = 0.2. Compare P@N only at the same N, database and class sizes.
#
# Look at N = 1 with 8 bits: the stable top-1 is the *first stored* item of the closest tie
# block, and since the database is sorted by class that is usually an item of the lowest class
# id in the block — relevant only for queries of that class. The stable P@1 is far below the
# tie-aware one for no reason but storage order.
#
# ## 8 · At scale: CIFAR-10 with random codes
#
# The `cifar10-1k` protocol has 1,000 queries and a database of 59,000 images (100 and 2,000
# under the `smoke` profile). Before training anything, **random codes** set the floor every
# method must beat: a ranking that knows nothing puts relevant items anywhere, and its AP is
# about the fraction of relevant items in the database — 5,900 / 59,000 = 0.1 on CIFAR-10. (Its
# exact expectation is a little higher, by less than $H_n / n$ with $H_n = 1 + \frac12 + \dots +
# \frac1n$ and $n$ the database size: about 0.0002 for 59,000 items. Giving every item the *same*
# code and using the tie-aware AP computes it exactly.)

# %%
# NBVAL_IGNORE_OUTPUT
data = load_protocol("cifar10-1k", PROFILE, seed=SEED)
ql, dl = data.part_labels("query"), data.part_labels("database")
print(f"profile {PROFILE}: {data.sizes()}")

rng = np.random.default_rng(SEED)
q_rand = rng.integers(0, 2, (len(ql), BITS), dtype=np.uint8)
db_rand = rng.integers(0, 2, (len(dl), BITS), dtype=np.uint8)

chance = float((np.bincount(dl, minlength=10)[ql] / len(dl)).mean())
no_info = mean_average_precision(np.zeros((len(ql), 1), np.uint8),
                                 np.zeros((len(dl), 1), np.uint8), ql, dl, ties="expected")
p2, empty2 = precision_within_radius(q_rand, db_rand, ql, dl, 2, return_empty_fraction=True)
pd.DataFrame([
    {"quantity": "chance level: fraction of relevant items", "value": chance},
    {"quantity": "expected AP of a random ranking (all codes equal, tie-aware)", "value": no_info},
    {"quantity": f"random {BITS}-bit codes: mAP@all (stable)",
     "value": mean_average_precision(q_rand, db_rand, ql, dl)},
    {"quantity": f"random {BITS}-bit codes: mAP@all (tie-aware)",
     "value": mean_average_precision(q_rand, db_rand, ql, dl, ties="expected")},
    {"quantity": f"random {BITS}-bit codes: mAP@1000",
     "value": mean_average_precision(q_rand, db_rand, ql, dl, top_k=1000)},
    {"quantity": f"random {BITS}-bit codes: P@H≤2", "value": p2},
    {"quantity": f"random {BITS}-bit codes: P@H≤2 empty fraction", "value": empty2},
]).set_index("quantity").round(4)

# %% [markdown]
# mAP@all of random codes sits at the chance level, as it must. (mAP@1000 of random codes is
# also near 0.1, but note that with its convention — dividing by the relevant items *found* —
# it is not bounded below by the chance level in general.)
#
# ### How fast is Hamming search?
#
# Top-10 neighbours of every query in the whole database, four ways:
#
# 1. **brute force, inner products**: the full $n_q \times n_{db}$ matrix $(k - QD^\top)/2$ with
#    float32 BLAS, then a full `argsort` of every row;
# 2. **brute force, XOR+popcount**: the full distance matrix from `hamming_distance`, then a
#    full `argsort`;
# 3. **`HammingIndex`, numpy backend**: packed 64-bit words, XOR + popcount in blocks of queries,
#    an `argsort` of small integers (radix sort) per query — never the whole matrix at once;
# 4. **`HammingIndex`, faiss backend** (`faiss.IndexBinaryFlat`, multi-threaded), when faiss is
#    installed.
#
# All four break ties by database index, so they must return exactly the same neighbours.

# %%
# NBVAL_IGNORE_OUTPUT
TOP = 10


def best_time(fn, repeat: int = 3):
    """(shortest wall time in seconds over `repeat` calls, result of the last call)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def brute_inner_product():
    dist = (BITS - q_pm @ db_pm.T) / 2  # (nq, nd) float32, every distance
    idx = np.argsort(dist, axis=1, kind="stable")[:, :TOP]
    return np.take_along_axis(dist, idx, axis=1).astype(np.int32), idx


def brute_popcount():
    dist = hamming_distance(q_rand, db_rand)  # (nq, nd) int32, every distance
    idx = np.argsort(dist, axis=1, kind="stable")[:, :TOP]
    return np.take_along_axis(dist, idx, axis=1), idx


def build_index(backend: str) -> HammingIndex:
    index = HammingIndex(BITS, backend=backend)
    index.add(db_packed)
    index.search(q_packed[:1], TOP)  # first search prepares the database layout
    return index


q_pm, db_pm = to_pm1(q_rand).astype(np.float32), to_pm1(db_rand).astype(np.float32)
q_packed, db_packed = pack_codes(q_rand), pack_codes(db_rand)
nq, nd = len(ql), len(dl)
print(f"{nq:,} queries x {nd:,} database codes of {BITS} bits; packed database "
      f"{db_packed.nbytes / 1e3:,.0f} KB, as float32 ±1 {db_pm.nbytes / 1e6:,.1f} MB; "
      f"a full distance matrix takes {nq * nd * 4 / 1e6:,.0f} MB")

runs = {"brute force: inner products + argsort": (0.0, brute_inner_product),
        "brute force: hamming_distance + argsort": (0.0, brute_popcount)}
for backend in ("numpy", "faiss"):
    if backend == "faiss" and not faiss_available():
        print("faiss is not installed (pip install faiss-cpu): no faiss row.")
        continue
    build_s, idx_obj = best_time(lambda b=backend: build_index(b), repeat=1)
    runs[f"HammingIndex ({backend})"] = (build_s, lambda i=idx_obj: i.search(q_packed, TOP))

ref_d, ref_i = None, None
rows = []
for name, (build_s, fn) in runs.items():
    seconds, (d, i) = best_time(fn, repeat=1 if name.startswith("brute") else 3)
    if ref_i is None:
        ref_d, ref_i = d, i
    rows.append({"method": name, "build s": build_s, "search s": seconds,
                 "ms / query": 1e3 * seconds / nq,
                 "same distances": bool(np.array_equal(d, ref_d)),
                 "same neighbours": bool(np.array_equal(i, ref_i))})
timing = pd.DataFrame(rows).set_index("method")
timing["speed-up"] = timing["search s"].iloc[0] / timing["search s"]
from IPython.display import Markdown, display

index_rows = timing[timing.index.str.startswith("HammingIndex")]["search s"]
if len(index_rows) == 2:
    faster, slower = index_rows.idxmin(), index_rows.idxmax()
    display(Markdown(f"On this machine {faster} searched {index_rows.max() / index_rows.min():.1f}× "
                     f"faster than {slower} (which one wins depends on the cores and the "
                     "library versions; under `smoke` the timings are noise)."))
timing.round(4)

# %% [markdown]
# The brute-force rows spend most of their time sorting 59,000 distances per query (and hold the
# whole distance matrix, hundreds of MB); the index only needs the top 10 and sorts small
# integers. The two index backends are both exact and agree (the last two columns); which is
# faster depends on the machine. Under the `smoke` profile the database is tiny and all
# timings are noise. The lesson for the
# rest of the course: **evaluation is cheap** — scanning 59,000 codes costs well under a
# millisecond per query — so we never subsample the database to save time.
#
# ## What to notice
#
# * Hamming distance is XOR + popcount on packed bits, and equals $(k - b^\top b')/2$ on
#   $\pm 1$ codes: the bridge between binary codes and the inner products that losses use.
# * AP is the mean, over the relevant items, of the precision at their ranks; mAP@K in this
#   course divides by the relevant items found in the top K.
# * With short codes most of the ranking is ties, and the stable mAP depends on how the database
#   happens to be stored — on a class-sorted database it can even reward a hash that gives
#   every image the same code. The tie-aware mAP (He et al., CVPR 2018) is the exact average over
#   tie orders; report it beside the stable one.
# * P@H≤2 scores empty retrievals as 0, so it collapses for long codes even when the ranking is
#   excellent; read it with its empty fraction. The micro-averaged PR curve and P@N have no empty
#   trap, but each has its own weighting.
# * Random codes give mAP ≈ the fraction of relevant items (0.1 on CIFAR-10): every method's
#   floor.
#
# ## Exercises
#
# 1. For $\{0, 1\}$ bits (not $\pm 1$), show that $d_H(b, b') = |b| + |b'| - 2\, b^\top b'$ with
#    $|b|$ the number of ones, and check it on the random codes of section 1 turned into bits
#    (`(codes > 0).astype(np.int64)`: they are $\pm 1$ codes).
# 2. Find by hand a storage order of the toy database A–H that gives the **lowest** stable AP for
#    the cat query, and one that gives the highest. Check both with `mean_average_precision` and
#    that the tie-aware AP lies between them.
# 3. For random 48-bit codes and the full CIFAR-10 database of 59,000 items, compute the expected
#    number of database items within Hamming radius 2 of a query and the probability that the
#    ball is empty. At how many bits does an empty ball become more likely than not?
# 4. Repeat the tie table of section 4 with `flip=0.3` (noisier codes). Does the gap between the
#    stable and the tie-aware mAP grow or shrink? Why?
