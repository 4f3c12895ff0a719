"""A paired interval that excludes 0 never prints a bound of 0 beside a "more than" or "better than".

Seen: "more than the 3% that an edge detector ... puts there (gradcam: difference +1 points, 95% CI
[+0, +3] over 50 cases)" on the lesions-shortcut benchmark, and "paired difference -0.000, 95% CI
[-0.000, -0.000]" on an untrained CNN's deletion test.
"""

from __future__ import annotations

import re

import pytest

from medlens.evaluation.leaderboard.wording import _interval


def _bounds(text: str) -> list[float]:
    return [float(v) for v in re.search(r"\[([^,]+), ([^\]]+)\]", text).groups()]


@pytest.mark.parametrize("diff, pct", [
    ({"mean": 0.012, "ci_low": 0.002, "ci_high": 0.031, "n": 50}, True),
    ({"mean": -1.2e-5, "ci_low": -1.9e-5, "ci_high": -5.4e-6, "n": 40}, False),
    ({"mean": 0.0004, "ci_low": 0.0001, "ci_high": 0.0007, "n": 40}, False),
])
def test_a_bound_that_is_not_zero_does_not_print_as_zero(diff, pct):
    low, high = _bounds(_interval(diff, pct=pct))
    assert low != 0 and high != 0
    assert (low > 0) == (diff["ci_low"] > 0) and (high > 0) == (diff["ci_high"] > 0)  # the printed side of 0 is the true one


def test_ordinary_intervals_keep_their_digits():
    assert _interval({"mean": 0.14, "ci_low": 0.12, "ci_high": 0.17, "n": 93}, pct=True) == \
        "difference +14 points, 95% CI [+12, +17] over 93 cases"
    assert _interval({"mean": -0.092, "ci_low": -0.104, "ci_high": -0.08, "n": 40}) == \
        "difference -0.092, 95% CI [-0.104, -0.080] over 40 cases"
