"""Checkers for the notebooks' exercises: compare a student's function with the package's.

Each checker runs the student's function on a few fixed random inputs (a private
seeded generator, so the cases are the same every time), compares it with the
reference implementation in its method module (:mod:`hashlib_edu.methods.dsh`, ...), prints a
friendly verdict with a hint when it can guess the mistake, and returns ``True``/``False``.
A student's function (or class) that still raises ``NotImplementedError`` gets one line,
``Not yet implemented: <what to write>; fill it in and run this cell again.``, and ``False``.

    >>> from hashlib_edu.exercises import check_dsh_loss
    >>> check_dsh_loss(my_dsh_loss)          # doctest: +SKIP
    All 5 cases match hashlib_edu.methods.dsh.dsh_loss. Well done!
    True

The checkers live in one module per notebook (``baselines``: notebook 02, ``cnnbh``: 03,
``dsh``: 04, ``dpah``: 05, ``orthohash``: 06) over the shared ``checking`` helpers; import them
from here.
"""

from .baselines import check_itq_rotation_step, check_lsh_codes
from .cnnbh import check_knob_model, check_training_step
from .dpah import check_dpah_bound, check_relaxed_hamming_distance
from .dsh import check_dsh_loss, check_dsh_regularizer
from .orthohash import check_maxhd_targets, check_orthohash_loss

__all__ = ["check_lsh_codes", "check_itq_rotation_step", "check_knob_model",
           "check_training_step", "check_dsh_loss", "check_dsh_regularizer", "check_dpah_bound",
           "check_relaxed_hamming_distance", "check_orthohash_loss", "check_maxhd_targets"]
