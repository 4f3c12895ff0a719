"""``medlens systems --help`` called ``--quick`` "a smoke test in seconds"; it takes about 40 s to a
minute (66 s measured on a shared 2-core machine). The help now says so."""

from __future__ import annotations

from medlens.cli import main


def test_systems_help_gives_the_quick_runs_real_duration(capsys):
    main(["systems", "--help"])  # argparse's exit, caught by main
    text = " ".join(capsys.readouterr().out.split())
    assert "in seconds" not in text and "smoke test (about 40 s to a minute" in text
