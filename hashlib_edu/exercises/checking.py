"""What every exercise checker shares: calling a student's function safely, comparing
tensors, and printing one verdict (see :mod:`hashlib_edu.exercises`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["RTOL", "ATOL", "NotImplementedYet", "as_tensor", "close", "not_implemented",
           "call_student", "run_student", "report"]

RTOL, ATOL = 1e-4, 1e-6


def as_tensor(value: Any) -> torch.Tensor | None:
    try:
        return torch.as_tensor(value.detach() if torch.is_tensor(value) else value,
                               dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return None


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=RTOL, atol=ATOL))


class NotImplementedYet(str):
    """The message for a student's function that still raises ``NotImplementedError``.

    :func:`report` prints it as it is (one fixed line, no "Not yet." prefix, nothing from the
    exception), so the output is the same every time.
    """


def not_implemented(todo: str) -> NotImplementedYet:
    return NotImplementedYet(f"Not yet implemented: {todo}; fill it in and run this cell again.")


def call_student(student_fn: Callable, args: tuple, case: str, todo: str) -> tuple[Any, str | None]:
    """Call the student's function; return (its result as it is, error message).

    ``todo`` says what the student still has to write, for a function that raises
    ``NotImplementedError`` (the notebooks' placeholder).
    """
    try:
        return student_fn(*args), None
    except NotImplementedError:
        return None, not_implemented(todo)
    except Exception as exc:  # the student's code may fail in any way: report it, do not crash
        return None, f"{case}: your function raised {type(exc).__name__}: {exc}"


def run_student(student_fn: Callable, args: tuple, case: str,
                todo: str) -> tuple[torch.Tensor | None, str | None]:
    """Call the student's function; return (result as float64 tensor, error message).

    ``todo`` says what the student still has to write, for a function that raises
    ``NotImplementedError`` (the notebooks' placeholder).
    """
    out, error = call_student(student_fn, args, case, todo)
    if error:
        return None, error
    value = as_tensor(out)
    if value is None:
        return None, f"{case}: your function returned {type(out).__name__}, not a number or tensor."
    return value, None


def report(ok: bool, n_cases: int, reference: str, message: str) -> bool:
    if ok:
        print(f"All {n_cases} cases match {reference}. Well done!")
    elif isinstance(message, NotImplementedYet):
        print(message)
    else:
        print(f"Not yet. {message}")
    return ok


