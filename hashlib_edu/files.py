"""Files written whole or not at all: through a temporary file in the same folder, renamed
into place.

A reader (a notebook, ``reproduce --skip-existing``, a second process) then sees either the
old file or the complete new one, never a half-written file, even when the writer is killed
mid-way: the temporary file carries a dot-name beside the target (``.<name>.<random>.tmp``)
and is removed when the writing fails. The bytes are flushed to disk (``fsync``) before the
rename, so a power cut does not leave an empty file under the final name either.

    atomic_write_text(path, json.dumps(record))
    atomic_savez_compressed(path, query_codes=packed, n_bits=np.int64(bits))
    atomic_save(path, lambda f: torch.save(state, f))

This module is pure standard library plus numpy: no torch at import time.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["atomic_open", "atomic_save", "atomic_write_bytes", "atomic_write_text",
           "atomic_savez_compressed", "atomic_savez"]

#: The suffix of a temporary file being written (a leftover one is safe to delete).
TMP_SUFFIX = ".tmp"


def _new_file_mode(target: Path) -> int:
    """The permissions the target would get from a plain ``open``: those of the file it
    replaces, else read/write for all minus the process umask."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Flush the rename itself to disk where the system allows opening a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb",
                encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it is flushed to
    disk and renamed to ``path`` (replacing any old file), on an exception it is removed and
    ``path`` is left as it was.

    Args:
        path: the final file; its folder is created if missing.
        mode: ``"wb"`` or ``"w"`` (text).
        encoding: the text encoding for ``"w"`` (default ``"utf-8"``).

    Yields:
        The open temporary file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole new file: mode 'w' or 'wb', not {mode!r}.")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX,
                                    dir=target.parent)
    tmp = Path(tmp_name)
    try:
        if mode == "w":
            f = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline="")
        else:
            f = os.fdopen(fd, "wb")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


def atomic_save(path: str | os.PathLike, writer: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``path`` atomically with ``writer(f)``, which writes the whole content into the
    binary file ``f`` (e.g. ``lambda f: torch.save(state, f)``). Returns ``path``."""
    with atomic_open(path, "wb") as f:
        writer(f)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically. Returns ``path``."""
    return atomic_save(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (newlines as given). Returns ``path``."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def atomic_savez_compressed(path: str | os.PathLike, **arrays: Any) -> Path:
    """``np.savez_compressed(path, **arrays)``, atomically; ``path`` is used exactly as given
    (no ``.npz`` is appended). Returns ``path``."""
    return atomic_save(path, lambda f: np.savez_compressed(f, **arrays))


def atomic_savez(path: str | os.PathLike, **arrays: Any) -> Path:
    """``np.savez(path, **arrays)`` (uncompressed: fast to write and read), atomically; ``path``
    is used exactly as given. Returns ``path``."""
    return atomic_save(path, lambda f: np.savez(f, **arrays))
