"""Run the course's notebooks headless, in place: ``python -m hashlib_edu.course run``.

Examples::

    python -m hashlib_edu.course list
    python -m hashlib_edu.course run                      # every notebook, default profile
    python -m hashlib_edu.course run --profile quick notebooks/03_cnnbh.ipynb

Each notebook runs top to bottom in a fresh kernel with ``HASHLIB_EDU_PROFILE`` set,
so its parameters cell picks the profile up; outputs and ``figures/`` are rewritten. Nobody
watches a headless run, so progress bars are switched off (``HASHLIB_EDU_NO_PROGRESS``) and
any left in the stored outputs are removed (:func:`strip_progress_bars`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

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
                 kernel_name: str = "python3") -> float:
    """Execute one notebook in place with nbclient; returns the wall time in seconds."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}; see `python -m hashlib_edu.course list`.")
    profile = get_profile(profile)
    nb = nbformat.read(path, as_version=4)
    settings = {"HASHLIB_EDU_PROFILE": profile, "HASHLIB_EDU_NO_PROGRESS": "1"}
    old = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    strip_progress_bars(nb)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashlib_edu.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the notebooks")
    run = sub.add_parser("run", help="execute notebooks in place")
    run.add_argument("notebooks", nargs="*", help="notebook paths (default: all)")
    run.add_argument("--profile", choices=PROFILES, default=None,
                     help="smoke | quick | paper (default: $HASHLIB_EDU_PROFILE, else quick)")
    run.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: none)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for p in notebook_paths():
            print(p.relative_to(project_root()))
        return 0
    paths = [Path(p) for p in args.notebooks] or notebook_paths()
    profile = get_profile(args.profile)
    for p in paths:
        print(f"running {p} (profile {profile}) ...", flush=True)
        seconds = run_notebook(p, profile, timeout=args.timeout)
        print(f"  done in {seconds / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
