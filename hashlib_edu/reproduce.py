"""One command that trains and evaluates every method on one protocol and one backbone.

    python -m hashlib_edu.reproduce [--methods lsh itq cnnbh dsh dpah orthohash]
        [--bits 12 24 32 48] [--protocol cifar10-1k] [--profile quick] [--seed 0]
        [--epochs N] [--regime scratch] [--backbone NAME] [--skip-existing]
    python -m hashlib_edu.reproduce --stale     # retrain every stale headline result

A thin command line over :class:`~hashlib_edu.experiment.Experiment` and
:func:`~hashlib_edu.experiment.run`: each (method, bits) is one experiment with the method's
own settings, budget and recipe (its module in :mod:`hashlib_edu.methods` holds them), trained
or loaded, evaluated and saved exactly as a notebook does it -- a model trained by a notebook
is reused here and vice versa, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from .backbones import PRETRAINED_BACKBONES
from .data import ProtocolData
from .experiment import (
    METHODS,
    PROTOCOLS,
    TRAINED_METHODS,
    Experiment,
    headline_experiment,
    run,
    stale_results,
)
from .profiles import PROFILES, get_profile, use_profile
from .regimes import REGIMES, check_regime
from .report import COMPARISON_BITS
from .results import result_is_complete
from .training import progress_enabled

__all__ = ["DEFAULT_METHODS", "DEFAULT_BITS", "experiments", "reproduce", "retrain_stale",
           "main"]

#: What ``reproduce`` runs when no methods are named (KSH is opt-in: it is slow to fit).
DEFAULT_METHODS = ("lsh", "itq", "cnnbh", "dsh", "dpah", "orthohash")
DEFAULT_BITS = COMPARISON_BITS  # notebook 07 and the README figures show these


def experiments(methods: Sequence[str] = DEFAULT_METHODS, bits: Sequence[int] = DEFAULT_BITS,
                protocol: str = "cifar10-1k", profile: str | None = None, seed: int = 0,
                epochs: int | None = None, regime: str = "scratch",
                backbone: str | None = None) -> list[Experiment]:
    """One :class:`Experiment` per (method, bits); ``epochs`` applies to the trained methods
    (naming a fitted one with it is an error)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}.")
    if epochs is not None:
        fitted = [m for m in methods if m not in TRAINED_METHODS]
        if fitted:
            raise ValueError(f"epochs applies to the trained methods ({', '.join(TRAINED_METHODS)})"
                             f"; {', '.join(fitted)} are fitted, not trained: leave them out.")
    return [Experiment(m, b, protocol, regime, backbone, profile, seed,
                       epochs if m in TRAINED_METHODS else None)
            for m in methods for b in bits]


def reproduce(methods: Sequence[str] = DEFAULT_METHODS, bits: Sequence[int] = DEFAULT_BITS,
              protocol: str = "cifar10-1k", profile: str | None = None, seed: int = 0,
              device=None, progress: bool | None = None, data: ProtocolData | None = None,
              skip_existing: bool = False, epochs: int | None = None,
              regime: str = "scratch", backbone: str | None = None) -> list[dict]:
    """:func:`~hashlib_edu.experiment.run` every (method, bits); returns the saved records.

    Args:
        skip_existing: leave out the experiments whose results are complete (JSON and codes
            present and readable; notebook 07 runs only what is missing).
        data: the protocol's data when already loaded (e.g. a test's small dataset).
    """
    profile = use_profile(profile)
    todo = experiments(methods, bits, data.protocol if data is not None else protocol, profile,
                       seed, epochs, regime, backbone)
    if skip_existing:
        todo = [e for e in todo if not result_is_complete(e.json_path())]
    from tqdm.auto import tqdm

    show = progress_enabled() if progress is None else progress
    records = []
    bar = tqdm(todo, desc="reproduce", disable=not show)
    for experiment in bar:
        bar.set_postfix_str(f"{experiment.method}-{experiment.bits}")
        records.append(run(experiment, data=data, device=device, progress=show).record)
    return records


def retrain_stale(root=None, device=None, progress: bool | None = None) -> tuple[list[dict],
                                                                                 list[str]]:
    """Retrain every headline result :func:`~hashlib_edu.experiment.stale_results` lists, with
    today's experiment; returns ``(records, what is left)`` -- stale files that are not
    headlines (a notebook's sweeps) are re-made by re-running their notebook."""
    import json

    records, left = [], []
    for path, why in stale_results(root):
        try:
            current = headline_experiment(json.loads(path.read_text()))
        except ValueError:
            current = None
        if current is None:
            left.append(f"{path}: {why}")
            continue
        records.append(run(current, device=device, progress=progress).record)
    return records, left


def _print(records: list[dict]) -> None:
    width = max([10] + [len(r["method"]) for r in records])
    print(f"{'method':{width}s} {'bits':>4s} {'mAP':>7s} {'P@H<=2':>7s} {'train min':>9s}"
          "   (mAP: tie-aware mAP@all)")
    for r in records:
        train = r.get("train_seconds")
        print(f"{r['method']:{width}s} {r['bits']:4d} {r['map_tie_aware']:7.4f} "
              f"{r['p_at_h2']:7.4f} {'-' if train is None else f'{train / 60:9.1f}'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashlib_edu.reproduce",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    parser.add_argument("--bits", nargs="+", type=int, default=list(DEFAULT_BITS))
    parser.add_argument("--protocol", default="cifar10-1k", choices=PROTOCOLS)
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="smoke | quick | paper (default: $HASHLIB_EDU_PROFILE, else quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="train every method for this many epochs instead of its budget "
                             "(trained methods only); results are saved as <method>_ep<epochs>")
    parser.add_argument("--regime", choices=REGIMES, default="scratch",
                        help="scratch (small backbone) | frozen | finetune-last | finetune "
                             "(pretrained backbone)")
    parser.add_argument("--backbone", default=None,
                        help="the method's own network for scratch (default); a pretrained "
                             f"backbone otherwise ({', '.join(PRETRAINED_BACKBONES)}; default "
                             "efficientnet_lite0, which works offline)")
    parser.add_argument("--skip-existing", action="store_true",
                        help="leave out every (method, bits) whose results already exist for "
                             "this profile, regime and backbone")
    parser.add_argument("--stale", action="store_true",
                        help="retrain every committed headline result that `report --check` "
                             "finds stale, and nothing else")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.stale:
        records, left = retrain_stale()
        _print(records)
        for line in left:
            print(f"not a headline result (re-run its notebook): {line}")
        return 0
    if any(b < 1 for b in args.bits):
        parser.error("--bits must be positive integers")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be a positive integer")
    profile = get_profile(args.profile)
    try:
        if args.backbone is not None:
            check_regime(args.regime, args.backbone)
        todo = experiments(args.methods, args.bits, args.protocol, profile, args.seed,
                           args.epochs, args.regime, args.backbone)
    except ValueError as err:
        parser.error(str(err))
    records = reproduce(args.methods, args.bits, args.protocol, profile, args.seed,
                        epochs=args.epochs, regime=args.regime, backbone=args.backbone,
                        skip_existing=args.skip_existing)
    _print(records)
    folders = sorted({str(e.results_folder()) for e in todo})
    print(f"{len(records)} results written to {', '.join(folders)} (profile {profile}) "
          f"in {(time.perf_counter() - start) / 60:.1f} min of wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
