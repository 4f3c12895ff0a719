"""``medlens predict`` on 2,270 ECG beat windows took 36 s with the familiarity check against 10 s
without: every window ran its own model pass for its features. ``check_cases`` now reads the cases in
chunks and passes each shape's cases through the model at once, giving the one-case check's rows."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import pytest
import torch

from medlens.app import audit_familiarity
from medlens.app.audit_familiarity import check_cases
from medlens.core.engine import Budget
from medlens.data.kinds import facts_of_model
from medlens.errors import InputError
from medlens.evaluation.familiarity import familiarity, familiarity_reference
from medlens.models.cnn import CNN


def _smooth(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.avg_pool2d(torch.rand(n, 1, size + 2, size + 2, generator=g), 3, 1)


@pytest.fixture(scope="module")
def model_and_meta():
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 8, 8)).eval()
    train = _smooth(50, 8, 0)
    return model, {"input_shape": [1, 8, 8], "familiarity": familiarity_reference(model, train[:40], train[40:])}


def _cohort() -> list[tuple[str, object]]:
    """Images of two sizes (the larger from a 48 x 48 file), an unreadable case, a blank one, noise."""
    small, large = _smooth(6, 8, 1), _smooth(4, 12, 2)
    cases = [(f"s{k}", x[None], [8, 8]) for k, x in enumerate(small[:3])]
    cases += [(f"l{k}", x[None], [48, 48]) for k, x in enumerate(large)]
    cases += [("blank", torch.zeros(1, 1, 8, 8), [8, 8]), ("noise", torch.rand(1, 1, 8, 8), [8, 8])]
    cases += [(f"t{k}", x[None], [8, 8]) for k, x in enumerate(small[3:])]
    entries = [(name, SimpleNamespace(x=x, reading={"kind": "image", "native_shape": native,
                                                    "model_shape": list(x.shape[2:])})) for name, x, native in cases]
    entries.insert(4, ("gone", None))
    return entries


def _reader(case):
    def read():
        if case is None:
            raise InputError("the file is gone")
        return case
    return read


def _one_by_one(model, meta, entries) -> list[dict[str, str]]:
    """The rows the one-case check gives, case by case."""
    rows = []
    for name, case in entries:
        if case is None:
            rows.append({"case": name, "unlike_training_data": "", "score": "", "warnings": "unreadable", "reasons": ""})
            continue
        f = familiarity(model, case.x, meta["familiarity"], reading=case.reading, facts=facts_of_model(meta))
        rows.append({"case": name, "unlike_training_data": "" if f.unlike is None else str(int(f.unlike)),
                     "score": "" if f.score is None else f"{f.score:.3f}",
                     "warnings": ",".join(w["code"] for w in f.warnings), "reasons": "; ".join(f.reasons)})
    return rows


def test_one_model_pass_per_shape_gives_the_one_case_rows(tmp_path, model_and_meta):
    model, meta = model_and_meta
    entries = _cohort()
    passes = []
    handle = model.register_forward_pre_hook(lambda _m, args: passes.append(len(args[0])))
    try:
        cohort = check_cases(model, meta, [(n, _reader(c)) for n, c in entries], tmp_path, budget=Budget(batch_size=64))
    finally:
        handle.remove()
    assert sorted(passes) == [4, 8]  # the 8 x 8 cases (blank and noise among them) and the 12 x 12 ones
    rows = list(csv.DictReader((tmp_path / "familiarity.csv").open()))
    expected = _one_by_one(model, meta, entries)
    assert rows == expected
    assert {r["case"]: r["unlike_training_data"] for r in rows}["blank"] == "1"
    assert {r["case"]: r["unlike_training_data"] for r in rows}["noise"] == "1"
    assert (cohort.judged, cohort.unlike) == (12, sum(r["unlike_training_data"] == "1" for r in expected))


def test_small_chunks_keep_the_order_and_the_rows(tmp_path, model_and_meta, monkeypatch):
    model, meta = model_and_meta
    entries = _cohort()
    monkeypatch.setattr(audit_familiarity, "MOST_CASES_PER_CHUNK", 3)
    check_cases(model, meta, [(n, _reader(c)) for n, c in entries], tmp_path)
    assert list(csv.DictReader((tmp_path / "familiarity.csv").open())) == _one_by_one(model, meta, entries)


def _window_model_and_a_flat_lead():
    """A two-lead (MLII, V5) window model with its familiarity reference, and a window whose V5 is flat."""
    torch.manual_seed(0)
    model = CNN(1, 2, 2, widths=(4, 8), input_shape=(2, 140)).eval()
    t = torch.linspace(0, 6.28, 140)
    train = torch.sin(t * torch.linspace(1, 3, 40)[:, None, None] + torch.tensor([0.0, 1.0])[:, None])
    meta = {"input_shape": [2, 140], "windows": {"fs": 50.0, "leads": ["MLII", "V5"]},
            "familiarity": familiarity_reference(model, train[::2], train[1::2])}
    flat = train[3:4].clone()
    flat[0, 1] = 0.0
    return model, meta, flat


def test_the_leads_of_a_window_model_name_the_flat_lead(tmp_path):
    model, meta, flat = _window_model_and_a_flat_lead()
    check_cases(model, meta, [("w0", lambda: SimpleNamespace(x=flat, reading={}))], tmp_path)
    row = next(csv.DictReader((tmp_path / "familiarity.csv").open()))
    assert row["unlike_training_data"] == "1" and "lead 2 (V5) is flat" in row["reasons"]


def test_explain_and_the_case_report_name_the_flat_lead_too(tmp_path):
    """They called familiarity without the model's leads: "lead 2 is flat", not "lead 2 (V5)"."""
    from medlens.app.case_report import case_report
    from medlens.app.explain_file import _familiarity

    model, meta, flat = _window_model_and_a_flat_lead()
    explained = _familiarity(model, meta, SimpleNamespace(x=flat, reading={}), distances=True)
    assert any("lead 2 (V5) is flat" in r for r in explained.reasons)
    _, summary = case_report(model, flat, meta=meta, methods=["gradient"])
    assert "lead 2 (V5) is flat" in json.dumps(summary)
