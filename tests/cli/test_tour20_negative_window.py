"""``--window -600,1500`` (the lung window as a user types it) is read as the window: argparse took
it for an option and said "argument --window: expected one argument" (tour20)."""

from __future__ import annotations

from medlens.cli import build_parser, signed_values


def test_a_window_below_zero_is_its_value_and_nothing_else_changes():
    argv = ["explain", "--model", "m.pt", "--input", "ct", "--out", "o", "--window", "-600,1500", "--window", "lung",
            "--option", "n_steps=8"]
    args = build_parser().parse_args(signed_values(argv))
    assert args.window == ["-600,1500", "lung"]
    assert signed_values(["--overlap", "-1", "--window", "40,400"]) == ["--overlap", "-1", "--window", "40,400"]
