"""Run the course's notebooks headless: ``python -m hashlib_edu.course run``.

Examples::

    python -m hashlib_edu.course list
    python -m hashlib_edu.course run                      # every notebook, default profile
    python -m hashlib_edu.course run --profile quick notebooks/03_cnnbh.ipynb
    python -m hashlib_edu.course run --profile smoke      # copies in a temporary folder

Each notebook runs top to bottom in a fresh kernel with ``HASHLIB_EDU_PROFILE`` set,
so its parameters cell picks the profile up. Under ``quick`` and ``paper`` the notebooks are
rewritten in place with their new outputs (and ``figures/``); under ``smoke`` (a check that
every cell runs, with tiny subsets) the executed copies go to a temporary folder and the
committed notebooks are left untouched, unless ``--in-place`` asks otherwise. Nobody
watches a headless run, so progress bars are switched off (``HASHLIB_EDU_NO_PROGRESS``) and
any left in the stored outputs are removed (:func:`strip_progress_bars`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from .files import atomic_open
from .profiles import PROFILES, get_profile, project_root

__all__ = ["notebook_paths", "strip_progress_bars", "run_notebook", "main"]

#: A tqdm progress bar as it lands in a stored stderr output: "<desc>: 40%|####  | 4/10 [...]".
_PROGRESS_BAR = re.compile(r"^[^\n]*\d+%\|[^\n]*\|\s*\d+/\d+ \[[^\n]*\]?\s*$")


def notebook_paths() -> list[Path]:
    """The course notebooks, in order."""
    return sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _is_progress_bar(output) -> bool:
    """A stored output that is only a tqdm bar: a stderr stream of bar lines, or a Jupyter
    widget (``tqdm.auto``) whose plain-text form is one."""
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        text = output.get("text", "")
    elif (output.get("output_type") == "display_data"
          and "application/vnd.jupyter.widget-view+json" in output.get("data", {})):
        text = output["data"].get("text/plain", "")
    else:
        return False
    lines = [ln for ln in re.split(r"[\r\n]+", text) if ln.strip()]
    return bool(lines) and all(_PROGRESS_BAR.match(ln) for ln in lines)


def strip_progress_bars(nb) -> int:
    """Remove the outputs of ``nb`` (an ``nbformat`` notebook) that hold nothing but tqdm
    progress bars, and the widget state they leave in the metadata; returns how many outputs
    were removed. Numbers and messages are kept."""
    removed = 0
    for cell in nb.cells:
        if "outputs" in cell:
            kept = [out for out in cell["outputs"] if not _is_progress_bar(out)]
            removed += len(cell["outputs"]) - len(kept)
            cell["outputs"] = kept
    nb.metadata.pop("widgets", None)
    return removed


def run_notebook(path: str | Path, profile: str | None = None, timeout: int | None = None,
                 kernel_name: str = "python3", out: str | Path | None = None) -> float:
    """Execute one notebook with nbclient and write the executed notebook to ``out`` (default:
    ``path`` itself, in place; written whole, via a temporary file). The kernel runs in
    ``out``'s folder. Returns the wall time in seconds."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}; see `python -m hashlib_edu.course list`.")
    out = path if out is None else Path(out).resolve()
    profile = get_profile(profile)
    nb = nbformat.read(path, as_version=4)
    settings = {"HASHLIB_EDU_PROFILE": profile, "HASHLIB_EDU_NO_PROGRESS": "1"}
    if out != path:  # a copy elsewhere still belongs to this checkout
        settings["HASHLIB_EDU_ROOT"] = os.environ.get("HASHLIB_EDU_ROOT") or str(project_root())
    old = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                       resources={"metadata": {"path": str(out.parent)}}).execute()
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    strip_progress_bars(nb)
    with atomic_open(out, "w") as f:
        nbformat.write(nb, f)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashlib_edu.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the notebooks")
    run = sub.add_parser("run", help="execute notebooks (in place under quick and paper; "
                                     "copies in a temporary folder under smoke)")
    run.add_argument("notebooks", nargs="*", help="notebook paths (default: all)")
    run.add_argument("--profile", choices=PROFILES, default=None,
                     help="smoke | quick | paper (default: $HASHLIB_EDU_PROFILE, else quick)")
    run.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: none)")
    run.add_argument("--in-place", action="store_true",
                     help="under smoke too, write the outputs into the notebooks themselves "
                          "(quick and paper always do)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for p in notebook_paths():
            print(p.relative_to(project_root()))
        return 0
    paths = [Path(p) for p in args.notebooks] or notebook_paths()
    if not paths:
        print(f"error: no notebooks to run: none given and none found in "
              f"{project_root() / 'notebooks'} (NN_name.ipynb). Run from a clone of the course, "
              "set HASHLIB_EDU_ROOT to one, or name the notebooks.", file=sys.stderr)
        return 2
    profile = get_profile(args.profile)
    copies = None
    if profile == "smoke" and not args.in_place:
        copies = Path(tempfile.mkdtemp(prefix="hashlib_edu-course-"))
        print(f"profile smoke: the executed copies go to {copies}; the notebooks are left as "
              "they are (--in-place writes into them).", flush=True)
    for p in paths:
        out = None if copies is None else copies / Path(p).name
        print(f"running {p} (profile {profile}) ...", flush=True)
        seconds = run_notebook(p, profile, timeout=args.timeout, out=out)
        print(f"  done in {seconds / 60:.1f} min" + ("" if out is None else f": {out}"),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
