"""Regenerate the README's results table and the ``figures/comparison_*.png`` figures from
the results files (never typed by hand).

    python -m hashlib_edu.report                    # rewrite the README table and the figures
    python -m hashlib_edu.report --print            # print the table instead, change nothing
    python -m hashlib_edu.report --refresh-results  # recompute results/*/*.json from the codes

Every mAP shown (tables and figures) is the tie-aware mAP@all (``map_tie_aware``: items at
equal Hamming distance in random order); the database is sorted by class, so the database
order of the stable ``map`` biases it. A JSON file without ``map_tie_aware`` falls back to
``map``, and the table says so.

The comparison figures (notebook 07 shows the same ones) cover the methods of
``python -m hashlib_edu.reproduce``: mAP vs bits (paper numbers dashed), PR and precision@N
curves at one code length, intra/inter-class Hamming distance histograms with the
separability, and training time vs mAP.

A results file that cannot be read is named, with what to do: the report stops on a headline
method's file (:data:`HEADLINE`) and skips any other with a warning naming it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from .analysis import intra_inter_distances, separability
from .files import atomic_write_text
from .metrics import precision_at_n_curve, precision_recall_curve
from .profiles import project_root, results_dir, time_budget_table
from .results import REGIMES, ResultsFileError, codes_path, load_codes, load_results, refresh

__all__ = ["results_table", "update_readme", "COMPARISON_METHODS", "COMPARISON_BITS",
           "runs_table", "comparison_records", "reproduce_runs",
           "comparison_map_vs_bits", "comparison_curves", "comparison_histograms",
           "comparison_time_vs_map", "comparison_figures"]

BEGIN, END = "<!-- results-table:begin -->", "<!-- results-table:end -->"
#: Markers of the README's "Time budget" table (:func:`hashlib_edu.profiles.time_budget_table`).
BUDGET_BEGIN, BUDGET_END = "<!-- time-budget:begin -->", "<!-- time-budget:end -->"
#: Headline methods shown in the README, in course order (ablations stay in the notebooks).
#: The rows of the README tables, in order: every baseline notebook 02 headlines (four hash
#: functions on pixels, GIST-like and CNN features), then ``reproduce``'s baselines and the deep
#: methods.
BASELINE_ROWS = tuple(f"{method}_{features}" for features in ("pixels", "gist", "cnn")
                      for method in ("lsh", "pcaitq", "ccaitq", "ksh"))
HEADLINE = (*BASELINE_ROWS, "lsh", "itq", "ksh", "cnnbh", "dsh", "dpah", "orthohash")


#: Where each protocol's paper numbers come from, and what ours are.
PROTOCOL_NOTES = {
    "cifar10-1k": "Paper numbers: CNNBH and LSH on GIST from CNNBH's Table 1 (its network, 900 "
                  "epochs); DPAH from its appendix Table 1 (an ImageNet-pretrained backbone). "
                  "Ours: the small backbone from scratch on a CPU budget.",
    "cifar10-dsh": "Paper number: DSH's supplementary Table 3, model M1. Ours, from scratch on "
                   "a CPU budget: DSH on DSH's CIFAR network (+ BatchNorm), CNNBH, DPAH and "
                   "OrthoHash on the course's small backbone.",
}


#: Marks a table cell holding the stable mAP because its JSON has no tie-aware one.
FALLBACK = "†"


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def _headline_map(record: dict) -> tuple[float, bool]:
    """``(mAP@all, tie_aware)``: ``map_tie_aware`` where the record has it, else ``map``."""
    value = record.get("map_tie_aware")
    return (record["map"], False) if value is None else (value, True)


def _fallback_note(fell_back: bool) -> str:
    return (f" Values marked {FALLBACK} are the stable mAP@all (ties in database order): "
            "their JSON file has no `map_tie_aware`." if fell_back else "")


#: What each pretrained regime trains (captions of the README tables).
REGIME_NOTES = {
    "frozen": "heads trained on the frozen backbone's pooled features (LSH/ITQ/KSH fitted on "
              "the same L2-normalized features)",
    "finetune-last": "the backbone's last stage and the method's head trained on cached "
                     "activations of the frozen earlier stages (mirror images as augmentation)",
    "finetune": "the whole backbone fine-tuned end to end with the method's head",
}


def regime_folders(protocol: str, root: Path | None = None) -> list[tuple[str, str, str]]:
    """The ``(profile, regime, backbone)`` of every results folder of ``protocol`` other than
    the from-scratch ``quick`` one (see :func:`~hashlib_edu.results.results_folder`), sorted."""
    base = (root if root is not None else project_root() / "results") / protocol
    found = []
    for folder in sorted(p for p in base.glob("*-*") if p.is_dir() and p.name != "codes"):
        profile, _, rest = folder.name.partition("-")
        regime = next((r for r in sorted(REGIMES, key=len, reverse=True)
                       if rest.startswith(r + "-")), None)
        if regime is not None:
            found.append((profile, regime, rest[len(regime) + 1:]))
    return found


def results_table(protocol: str = "cifar10-1k", root: Path | None = None,
                  regime: str = "scratch", backbone: str = "small",
                  profile: str = "quick") -> str:
    """A Markdown table of the tie-aware mAP@all per method (rows) and bit length (columns),
    from ``results/<protocol>/*.json``: ours, with the paper's number beside it where the JSON
    records one, and the mean training minutes per model. A JSON without ``map_tie_aware``
    shows its stable ``map``, marked :data:`FALLBACK` and explained in the caption."""
    base = root if root is not None else project_root() / "results"
    records = [r for r in load_results(protocol, root=base, regime=regime, backbone=backbone,
                                       profile=profile, headline=HEADLINE)
               if r["method"] in HEADLINE]
    if not records:
        return f"_No results for {protocol} yet: run the notebooks._"
    setting = ("" if regime == "scratch" else
               f", backbone `{backbone}` (ImageNet-pretrained), regime `{regime}`: "
               f"{REGIME_NOTES[regime]}")
    all_bits = sorted({r["bits"] for r in records})
    fell_back = any(not _headline_map(r)[1] for r in records)
    lines = [f"Tie-aware mAP@all on `{protocol}`{setting} (ours: exactly averaged over random orders of "
             "the items at equal Hamming distance — the database is sorted by class, so its "
             "order would bias the mAP; *paper* in italics where a paper reports this "
             "protocol, as computed there); profile and device as recorded in each JSON file."
             f"{_fallback_note(fell_back)} "
             f"{PROTOCOL_NOTES.get(protocol, '') if regime == 'scratch' else ''}",
             "",
             "| method | " + " | ".join(f"{b} bits" for b in all_bits)
             + " | train min / model | profile |",
             "|---|" + "---:|" * len(all_bits) + "---:|---|"]
    for method in HEADLINE:
        by_bits = {r["bits"]: r for r in records if r["method"] == method}
        if not by_bits:
            continue
        cells = []
        for b in all_bits:
            r = by_bits.get(b)
            if r is None:
                cells.append("")
                continue
            paper = r.get("paper_map")
            value, tie_aware = _headline_map(r)
            cells.append(_fmt(value) + ("" if tie_aware else FALLBACK)
                         + ("" if paper is None else f" (*{paper:.3f}*)"))
        train = [r["train_seconds"] for r in by_bits.values() if r.get("train_seconds") is not None]
        minutes = "—" if not train else f"{np.mean(train) / 60:.1f}"
        profiles = ", ".join(sorted({str(r.get("profile")) for r in by_bits.values()}))
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {minutes} | {profiles} |")
    return "\n".join(lines)


def runs_table(protocol: str = "cifar10-1k", bits: int = 48, profile: str | None = None,
               root: Path | None = None) -> str:
    """A Markdown table of the repeated runs of :func:`reproduce_runs` at ``bits`` (other seeds,
    other budgets): one row per method and budget, with the tie-aware mAP@all of each seed,
    their mean and range; the methods with only their seed-0 run on the profile's schedule are
    left out (``""`` when that is all of them).

    Reads ``root``, else ``profile``'s results folder when a profile is given (that profile's
    runs only), else every run in the committed ``results/`` (as the README table)."""
    if root is None:
        root = results_dir(profile) if profile is not None else project_root() / "results"
    rows = reproduce_runs(protocol, bits, profile=profile, root=root)
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["budget"]), []).append(row)
    repeated = {method for (method, budget), group in groups.items()
                if len(group) > 1 or budget != "profile"}
    if not repeated:
        return ""
    fell_back = any(not row["tie_aware"] for row in rows if row["method"] in repeated)
    lines = [f"Repeated runs on `{protocol}` at {bits} bits (`python -m hashlib_edu.reproduce "
             "--seed S` / `--epochs E`), tie-aware mAP@all: how much of a gap between methods "
             f"is seed-to-seed noise, and what a longer budget buys.{_fallback_note(fell_back)}",
             "",
             "| method | budget | tie-aware mAP@all per seed | mean | max − min "
             "| train min / model |",
             "|---|---|---|---:|---:|---:|"]
    for (method, budget), group in groups.items():
        if method not in repeated:
            continue
        maps = [r["map"] for r in group]
        epochs = group[0]["epochs"]
        label = f"{budget} ({epochs} epochs)" if budget == "profile" and epochs else budget
        per_seed = ", ".join(f"{r['map']:.3f}{'' if r['tie_aware'] else FALLBACK} "
                             f"(seed {r['seed']})" for r in group)
        spread = f"{max(maps) - min(maps):.3f}" if len(maps) > 1 else "—"
        lines.append(f"| {method} | {label} | {per_seed} | {np.mean(maps):.3f} | {spread} | "
                     f"{np.mean([r['train_min'] for r in group]):.1f} |")
    return "\n".join(lines)


def _between(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with what stands between the markers ``begin`` and ``end`` replaced by ``body``."""
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"


def update_readme(readme: Path | None = None, protocol: str = "cifar10-1k",
                  also: tuple[str, ...] = ("cifar10-dsh",)) -> bool:
    """Replace the text between the results markers in README.md with the table of
    ``protocol``, followed by those of the ``also`` protocols that have results, and the
    "Time budget" table between its markers (when present); True if it changed."""
    path = readme or project_root() / "README.md"
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has no {BEGIN} ... {END} markers.")
    root = project_root() / "results"
    tables = [results_table(protocol), runs_table(protocol)]
    tables += [results_table(p) for p in also
               if any(r["method"] in HEADLINE
                      for r in load_results(p, root=root, profile="quick", headline=HEADLINE))]
    tables += [results_table(p, regime=regime, backbone=backbone, profile=prof)
               for p in (protocol, *also)
               for prof, regime, backbone in regime_folders(p, root)]
    new = _between(text, BEGIN, END, "\n\n".join(t for t in tables if t))
    if BUDGET_BEGIN in new and BUDGET_END in new:
        new = _between(new, BUDGET_BEGIN, BUDGET_END, time_budget_table())
    if new != text:
        atomic_write_text(path, new)
    return new != text


#: The methods of ``python -m hashlib_edu.reproduce``, in course order, with display names.
COMPARISON_METHODS = {"lsh": "LSH (CNN features)", "itq": "PCA-ITQ (CNN features)",
                      "cnnbh": "CNNBH", "dsh": "DSH", "dpah": "DPAH", "orthohash": "OrthoHash"}


#: The code lengths of the comparison (``python -m hashlib_edu.reproduce``'s default).
COMPARISON_BITS = (12, 24, 32, 48)


def comparison_records(protocol: str = "cifar10-1k", profile: str | None = None,
                       root: Path | None = None, bits=COMPARISON_BITS
                       ) -> dict[str, dict[int, dict]]:
    """``{method: {bits: record}}`` of the comparison methods found in the results folder, at
    the code lengths ``bits`` (an ablation at another length, e.g. OrthoHash at 64 bits, stays
    out so the README figures match notebook 07's)."""
    out: dict[str, dict[int, dict]] = {}
    for r in load_results(protocol, profile=profile, root=root, headline=HEADLINE):
        if r["method"] in COMPARISON_METHODS and r["bits"] in bits:
            out.setdefault(r["method"], {})[r["bits"]] = r
    return {m: out[m] for m in COMPARISON_METHODS if m in out}


def reproduce_runs(protocol: str = "cifar10-1k", bits: int = 48, profile: str | None = None,
                   root: Path | None = None) -> list[dict]:
    """Every run of a comparison method at ``bits`` that ``python -m hashlib_edu.reproduce``
    saved, whatever its seed and budget: the committed ``<method>`` results and the
    ``<method>_seed<seed>`` / ``<method>_ep<epochs>`` ones written by ``--seed`` / ``--epochs``.

    Args:
        profile: keep only the runs recorded under this profile; ``None`` keeps every run
            found.

    Returns:
        One dict per run, sorted: ``method`` (e.g. ``"dpah"``), ``seed``, ``budget``
        (``"profile"`` for the profile's schedule, else ``"<epochs> epochs"``), ``epochs``
        (as trained; ``None`` for LSH/ITQ), ``map`` (the tie-aware mAP@all, or the stable one
        where the JSON has no ``map_tie_aware``), ``tie_aware`` (which of the two) and
        ``train_min`` (for LSH/ITQ with the feature network's training).
    """
    pattern = re.compile(rf"^({'|'.join(COMPARISON_METHODS)})(?:_ep(\d+))?(?:_seed(\d+))?$")
    order = list(COMPARISON_METHODS)
    keyed = []  # (course order, budget epochs -- 0 for the profile's schedule, seed), row
    for r in load_results(protocol, profile=profile, root=root, headline=HEADLINE):
        match = pattern.match(r["method"])
        if match is None or r["bits"] != bits or (profile is not None
                                                   and r.get("profile") != profile):
            continue
        method, budget, seed = match.group(1), int(match.group(2) or 0), int(match.group(3) or 0)
        value, tie_aware = _headline_map(r)
        keyed.append(((order.index(method), budget, seed), {
            "method": method, "seed": seed,
            "budget": f"{budget} epochs" if budget else "profile",
            "epochs": r.get("epochs"), "map": value, "tie_aware": tie_aware,
            "train_min": ((r.get("train_seconds") or 0)
                          + (r.get("feature_train_seconds") or 0)) / 60}))
    return [row for _, row in sorted(keyed, key=lambda item: item[0])]


def comparison_map_vs_bits(records: dict, ax=None, save: str | None = None):
    """Tie-aware mAP@all against bits for every method; paper mAP (same protocol) dashed."""
    from .plots import new_axes, plot_metric_vs_bits, save_figure

    series = {COMPARISON_METHODS[m]: {b: _headline_map(r)[0] for b, r in by.items()}
              for m, by in records.items()}
    paper = {COMPARISON_METHODS[m]: {b: r["paper_map"] for b, r in by.items() if r.get("paper_map")}
             for m, by in records.items()}
    paper = {k: v for k, v in paper.items() if v}
    _, ax = new_axes(ax, figsize=(8, 4.2))
    plot_metric_vs_bits(series, ylabel="tie-aware mAP@all", paper=paper, ax=ax,
                        title="mAP vs code length, one protocol, one backbone")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))  # keep lines visible
    save_figure(ax.figure, save)
    return ax


def comparison_curves(records: dict, bits: int = 48, protocol: str = "cifar10-1k",
                      profile: str | None = None, root: Path | None = None, axes=None,
                      save: str | None = None, max_n: int = 2000):
    """PR curves and precision@N curves at ``bits`` from the saved codes (two axes)."""
    import matplotlib.pyplot as plt

    from .plots import plot_pr_curves, plot_precision_at_n, save_figure

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    fig = axes[0].figure
    pr, pn = {}, {}
    for m, by in records.items():
        if bits not in by:
            continue
        z = load_codes(codes_path(protocol, m, bits, profile, root))
        args = (z["query_codes"], z["db_codes"], z["query_labels"], z["db_labels"])
        pr[COMPARISON_METHODS[m]] = precision_recall_curve(*args)
        ns = np.unique(np.linspace(1, min(max_n, len(z["db_codes"])), 40).astype(int))
        pn[COMPARISON_METHODS[m]] = (ns, precision_at_n_curve(*args, ns))
    plot_pr_curves(pr, ax=axes[0], title=f"PR curves, {bits} bits")
    plot_precision_at_n(pn, ax=axes[1], title=f"precision@N, {bits} bits")
    fig.tight_layout()
    save_figure(fig, save)
    return axes


def comparison_histograms(records: dict, bits: int = 48, protocol: str = "cifar10-1k",
                          profile: str | None = None, root: Path | None = None,
                          max_items: int = 2000, save: str | None = None) -> dict[str, float]:
    """Intra- and inter-class Hamming distance histograms of the database codes at ``bits``
    (a 2,000-item subsample), one panel per method, separability in each title.

    Returns:
        ``{method: E[D_inter] - E[D_intra]}``.
    """
    import matplotlib.pyplot as plt

    from .plots import save_figure

    methods = [m for m, by in records.items() if bits in by]
    if not methods:
        return {}
    ncols = min(3, len(methods))
    nrows = -(-len(methods) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.3 * nrows), squeeze=False)
    seps = {}
    edges = np.arange(bits + 2) - 0.5
    for ax, m in zip(axes.ravel(), methods, strict=False):
        z = load_codes(codes_path(protocol, m, bits, profile, root))
        intra, inter = intra_inter_distances(z["db_codes"], z["db_labels"], max_items=max_items)
        seps[m] = separability(intra, inter)
        ax.hist(intra, bins=edges, density=True, alpha=0.6, label="intra-class")
        ax.hist(inter, bins=edges, density=True, alpha=0.6, label="inter-class")
        ax.set_title(f"{COMPARISON_METHODS[m]}: separability {seps[m]:.1f}", fontsize=10)
        ax.set_xlabel("Hamming distance")
        ax.legend(fontsize=8)
    for ax in axes.ravel()[len(methods):]:
        ax.axis("off")
    fig.suptitle(f"{bits}-bit codes, {min(max_items, len(z['db_codes'])):,} database items")
    fig.tight_layout()
    save_figure(fig, save)
    return seps


def comparison_time_vs_map(records: dict, bits: int = 48, ax=None, save: str | None = None):
    """Training minutes (for LSH/ITQ: the feature network's training plus the fit) vs the
    tie-aware mAP@all."""
    from .plots import finish_axes, new_axes

    _, ax = new_axes(ax, figsize=(5.5, 4))
    for i, (m, by) in enumerate(records.items()):
        if bits not in by:
            continue
        r = by[bits]
        minutes = ((r.get("train_seconds") or 0.0) + (r.get("feature_train_seconds") or 0.0)) / 60
        ax.scatter(minutes, _headline_map(r)[0], s=50, color=f"C{i}", label=COMPARISON_METHODS[m])
    return finish_axes(ax.figure, ax, "training minutes (as recorded)", "tie-aware mAP@all",
                   f"cost vs quality, {bits} bits", save)


def comparison_figures(protocol: str = "cifar10-1k", bits: int = 48, profile: str | None = None,
                       root: Path | None = None) -> list[str]:
    """Write every ``figures/comparison_*.png``; returns the names written."""
    import matplotlib.pyplot as plt

    records = comparison_records(protocol, profile, root)
    if not records:
        return []
    names = ["comparison_map_vs_bits.png", f"comparison_curves_{bits}.png",
             f"comparison_hamming_{bits}.png", f"comparison_time_vs_map_{bits}.png"]
    comparison_map_vs_bits(records, save=names[0])
    comparison_curves(records, bits, protocol, profile, root, save=names[1])
    comparison_histograms(records, bits, protocol, profile, root, save=names[2])
    comparison_time_vs_map(records, bits, save=names[3])
    plt.close("all")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashlib_edu.report", description=__doc__)
    parser.add_argument("--protocol", default="cifar10-1k")
    parser.add_argument("--print", action="store_true", help="print the table, change nothing")
    parser.add_argument("--check", action="store_true",
                        help="list every results file that is stale or wrong (not made by the "
                             "experiment today's code runs for it, or not matching its codes); "
                             "exit 1 if any (python -m hashlib_edu.reproduce --stale retrains "
                             "the headline ones)")
    parser.add_argument("--refresh-results", action="store_true",
                        help="recompute every committed results JSON from its codes file, add "
                             "the metrics it lacks and report stored values that differ "
                             "(hashlib_edu.results.refresh); README and figures unchanged")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ResultsFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    """The command of :func:`main` (a results file that cannot be read raises
    :class:`~hashlib_edu.results.ResultsFileError`, naming it)."""
    if args.check:
        from .experiment import stale_results  # here: report's tables do not need it

        stale = stale_results()
        root = project_root()
        for path, why in stale:
            print(f"{path.relative_to(root) if path.is_relative_to(root) else path}: {why}")
        print(f"{len(stale)} stale or wrong results" if stale else
              "every result is current: made by today's experiment and matching its codes")
        return 1 if stale else 0
    if args.refresh_results:
        problems = refresh()
        print("\n".join(problems) if problems else "every stored metric matches its codes")
        return 1 if problems else 0
    if args.print:
        print(results_table(args.protocol))
        repeated = runs_table(args.protocol)
        if repeated:
            print(f"\n{repeated}")
    else:
        changed = update_readme(protocol=args.protocol)
        print("README.md updated" if changed else "README.md unchanged")
        for name in comparison_figures(args.protocol):
            print(f"figures/{name} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
