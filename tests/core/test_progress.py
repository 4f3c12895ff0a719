"""The one progress mechanism: lines and bars on stderr, nothing when quiet."""

from medlens.core.progress import SILENT, Progress, as_progress


def test_progress_writes_lines_and_is_silent_when_quiet(capsys):
    Progress()("hello")
    Progress(quiet=True)("hidden")
    assert list(Progress(quiet=True).over([1, 2], "x")) == [1, 2]
    err = capsys.readouterr().err
    assert "hello" in err and "hidden" not in err


def test_as_progress_accepts_callables_and_none():
    seen = []
    as_progress(seen.append)("a line")
    assert seen == ["a line"]
    assert as_progress(None) is SILENT
    p = Progress()
    assert as_progress(p) is p
