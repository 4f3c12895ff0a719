"""One grammar: every command spells the shared flags the same way and shows examples."""

from __future__ import annotations

import argparse

import pytest

from medlens.cli import build_parser, command_modules

# the shared flags each command must have (a command that does not run a model has no budget)
EXPECTED = {
    "explain": {"--option", "--batch-size", "--memory-mb", "--seed", "--quiet", "--multi-label"},
    "evaluate": {"--limit", "--option", "--batch-size", "--memory-mb", "--seed", "--quiet", "--multi-label"},
    "attention": {"--limit", "--batch-size", "--memory-mb", "--seed", "--quiet"},
    "concepts": {"--limit", "--option", "--batch-size", "--memory-mb", "--seed", "--quiet"},
    "basis": {"--option", "--batch-size", "--memory-mb", "--quiet"},
    "featurevis": {"--limit", "--batch-size", "--memory-mb", "--seed", "--quiet", "--multi-label"},
    "generate": {"--seed", "--quiet"},
    "train": {"--memory-mb", "--seed", "--quiet"},  # reads scans: the readers' limit only
    "demo": {"--seed", "--quiet"},
    "systems": {"--seed", "--quiet"},
    "imaging-report": {"--seed", "--quiet"},
    "report": {"--limit", "--option", "--batch-size", "--memory-mb", "--seed", "--quiet", "--multi-label"},
    "audit": {"--limit", "--option", "--batch-size", "--memory-mb", "--seed", "--quiet"},
    "predict": {"--limit", "--batch-size", "--quiet", "--multi-label"},
}
SHARED_HELP = {
    "--limit": "use only the first N cases",
    "--seed": "seed of every random choice",
    "--quiet": "no progress output",
    "--batch-size": "inputs the engine evaluates at once",
    "--memory-mb": "the most a reader may decode from one file",
    "--multi-label": "one sigmoid per finding",
}
# names that once meant the same thing as a shared flag, or two things at once
RETIRED = {"--n", "--cases", "--batch"}


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def flags(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {opt: a for a in p._actions for opt in a.option_strings}


def test_every_command_is_listed_here():
    assert len(command_modules()) == len(subparsers())  # one module per command
    assert set(subparsers()) == set(EXPECTED), "a command was added or removed: list its shared flags here"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_flags_have_one_spelling_and_one_meaning(name):
    p = subparsers()[name]
    have = flags(p)
    missing = EXPECTED[name] - set(have)
    assert not missing, f"{name} lacks {sorted(missing)}"
    assert not RETIRED & set(have), f"{name} still has {sorted(RETIRED & set(have))}"
    for flag, text in SHARED_HELP.items():
        if flag in have:
            assert text in (have[flag].help or ""), f"{name} {flag}: {have[flag].help!r}"
    if "--option" in have:
        assert have["--option"].metavar == "NAME=VALUE" and isinstance(have["--option"], argparse._AppendAction)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_help_ends_with_examples(name, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([name, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    examples = text.split("examples:", 1)
    assert len(examples) == 2, f"{name} --help shows no examples"
    assert f"medlens {name}" in examples[1] or name == "train"


def test_every_command_in_the_package_shows_examples(capsys):
    """A command added later gets the same grammar check for its examples."""
    for name, p in subparsers().items():
        assert p.epilog and p.epilog.startswith("examples:"), f"{name} has no examples in --help"


def test_option_scoping():
    from medlens.cli.common import method_options
    from medlens.errors import MedlensError

    got = method_options(["n_steps=16", "rise.n_masks=500", "abs=True"], ["rise", "integrated_gradients"])
    assert got == {"": {"n_steps": 16, "abs": True}, "rise": {"n_masks": 500}}
    with pytest.raises(MedlensError, match="names method 'occlusion'"):
        method_options(["occlusion.window=4"], ["rise"])


def test_switch_words_are_bools():
    """``abs=true`` from a shell is the bool True (methods refuse a switch given as a string)."""
    from medlens.cli.common import parse_options

    got = parse_options(["abs=true", "upsample=No", "incremental=YES", "per_channel=False", "baseline=blur"])
    assert got == {"abs": True, "upsample": False, "incremental": True, "per_channel": False, "baseline": "blur"}
