"""The shared argument checks: what they accept, what they refuse, and the one-line message
that names the field and what is allowed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latentbench.models.registry import InputError, check_int, check_number


def test_check_int_accepts_python_and_numpy_integers_in_bounds():
    assert check_int(3, "k", minimum=1) == 3
    assert type(check_int(np.int64(3), "k", minimum=1)) is int
    assert check_int(2**63 - 1, "seed", minimum=0, maximum=2**63 - 1) == 2**63 - 1


@pytest.mark.parametrize(("value", "bounds", "message"), [
    (0, {"minimum": 1}, "eval.k: must be a positive integer, got 0"),
    (True, {}, "eval.k: must be an integer, got True"),
    (1.0, {}, "eval.k: must be an integer, got 1.0"),
    ("3", {"minimum": 1}, "eval.k: must be a positive integer, got '3'"),
    (5, {"minimum": 1, "maximum": 4}, "eval.k: must be an integer in [1, 4], got 5"),
    (-1, {"minimum": 0, "maximum": 2**63 - 1},
     "eval.k: must be an integer in [0, 9223372036854775807], got -1"),
])
def test_check_int_refuses_with_one_line_naming_the_field(value, bounds, message):
    with pytest.raises(InputError) as error:
        check_int(value, "eval.k", **bounds)
    assert str(error.value) == message


def test_check_number_bounds_and_non_finite_values():
    assert check_number(1e-3, "train.lr", minimum=0, above=True) == 1e-3
    assert check_number(0, "model.beta", minimum=0) == 0.0
    for value in (0, -1.0, math.nan, math.inf, True, "1"):
        with pytest.raises(InputError, match=r"^train\.lr: must be a number > 0, got "):
            check_number(value, "train.lr", minimum=0, above=True)
    with pytest.raises(InputError, match=r"must be a finite number, got nan"):
        check_number(math.nan, "x")
    with pytest.raises(InputError, match=r"must be a number in \[0, 1\], got 2"):
        check_number(2, "x", minimum=0, maximum=1)
