"""Regenerate the README's results table from the results JSON files (never typed by hand).

    python -m hashlib_edu.report            # rewrite the table between the README markers
    python -m hashlib_edu.report --print    # print it instead
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .profiles import project_root
from .results import load_results

__all__ = ["results_table", "update_readme"]

BEGIN, END = "<!-- results-table:begin -->", "<!-- results-table:end -->"
#: Headline methods shown in the README, in course order (ablations stay in the notebooks).
HEADLINE = ("lsh_gist", "ccaitq_cnn", "cnnbh", "dsh", "dpah", "orthohash")


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def results_table(protocol: str = "cifar10-1k", root: Path | None = None) -> str:
    """A Markdown table: mAP@all (ours, and the paper's where the JSON has one) per method
    and bit length, plus P@H≤2 and training minutes, from ``results/<protocol>/*.json``."""
    base = root if root is not None else project_root() / "results"
    records = [r for r in load_results(protocol, root=base) if r["method"] in HEADLINE]
    if not records:
        return f"_No results for {protocol} yet: run the notebooks._"
    lines = [f"Protocol `{protocol}`; profile and device as recorded in each JSON file.", "",
             "| method | bits | mAP (ours) | mAP (paper) | tie-aware mAP | P@H≤2 | train min | profile |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    order = {m: i for i, m in enumerate(HEADLINE)}
    for r in sorted(records, key=lambda r: (order[r["method"]], r["bits"])):
        train = r.get("train_seconds")
        lines.append(
            f"| {r['method']} | {r['bits']} | {_fmt(r['map'])} | {_fmt(r.get('paper_map'))} | "
            f"{_fmt(r['map_tie_aware'])} | {_fmt(r['p_at_h2'])} | "
            f"{'—' if train is None else f'{train / 60:.1f}'} | {r.get('profile')} |")
    return "\n".join(lines)


def update_readme(readme: Path | None = None, protocol: str = "cifar10-1k") -> bool:
    """Replace the text between the results markers in README.md; True if it changed."""
    path = readme or project_root() / "README.md"
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has no {BEGIN} ... {END} markers.")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{results_table(protocol)}\n{END}{tail}"
    path.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashlib_edu.report", description=__doc__)
    parser.add_argument("--protocol", default="cifar10-1k")
    parser.add_argument("--print", action="store_true", help="print the table, change nothing")
    args = parser.parse_args(argv)
    if args.print:
        print(results_table(args.protocol))
    else:
        print("README.md updated" if update_readme(protocol=args.protocol) else "README.md unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
