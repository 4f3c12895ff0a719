"""Nearly flat leads and the familiarity check: the share of the least median absolute deviation of
any training window below which a lead is named nearly flat
(``medlens.evaluation.familiarity.NEARLY_FLAT_SHARE``).

    OMP_NUM_THREADS=1 python benchmarks/familiarity_flat_lead.py \
        --wfdb /work/realdata/wfdb/sample-data --eeg /work/realdata/eeg/mne-testing-data \
        [--out benchmarks/results/familiarity_flat_lead.json]

Each record's windows as ``medlens train`` cuts them; the first half is the reference (the least
spread per lead over its windows), the second half is judged. Per record, spread measure (standard
deviation, median absolute deviation) and share (0.5, 0.25, 0.1):

* false alarms: the share of the held-out windows with any lead named;
* detections: the share of the held-out windows in which one lead, changed, is named: scaled to
  1/5, 1/10, 1/20, 1/50 of its amplitude about its median, held at its median for 80% of the
  window, at its median but for one spike, or replaced by noise of 1% of its typical spread.

DESIGN (MIT-BIH 100, beat windows) chose the share; HELDOUT (PTB s0010, 15 leads; MNE's 64-channel
EEG test_edf_overlapping_annotations.edf; the 19-channel BDF multiple_annotation_chans.bdf, 2 s
windows) were scored once with it. The records are not bundled (no quick configuration).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _runner import options, run_and_report

from medlens.data.records import windows_from_folder

SHARES = (0.5, 0.25, 0.1)


def _records(wfdb: Path, eeg: Path) -> dict[str, tuple[str, torch.Tensor]]:
    """``{name: (DESIGN or HELDOUT, windows)}``."""
    def fixed(path: Path, step: float) -> torch.Tensor:
        return windows_from_folder(path, windows="fixed", record_labels={path.stem: "x"}, length=2.0, step=step).inputs

    beats = windows_from_folder(wfdb / "100.hea", windows="beats", annotation_labels="N:normal,V:ventricular,A:atrial")
    return {"mitdb100": ("DESIGN", beats.inputs), "ptb_s0010": ("HELDOUT", fixed(wfdb / "s0010_re.hea", 0.5)),
            "eeg64": ("HELDOUT", fixed(eeg / "test_edf_overlapping_annotations.edf", 1.0)),
            "bdf19": ("HELDOUT", fixed(eeg / "multiple_annotation_chans.bdf", 1.0))}


def _mad(x: torch.Tensor) -> torch.Tensor:
    return (x - x.median(-1, keepdim=True).values).abs().median(-1).values


def _variants(x: torch.Tensor, c: int, seed: int) -> dict[str, torch.Tensor]:
    """``x`` with lead ``c`` made nearly flat in each of the ways the module's notes list."""
    gen = torch.Generator().manual_seed(seed)
    lead = x[:, c]
    med = lead.median(-1, keepdim=True).values
    length = x.shape[-1]
    made = {f"scaled 1/{f}": med + (lead - med) / f for f in (5, 10, 20, 50)}
    made["80% at one value"] = torch.where(torch.arange(length) < length // 5, lead, med)
    spike = med.expand_as(lead).clone()
    spike[:, length // 2] += lead.std(-1).mean()
    made["one value but one spike"] = spike
    made["noise 1%"] = med + 0.01 * lead.std(-1, keepdim=True).median() * torch.randn(lead.shape, generator=gen,
                                                                                      dtype=lead.dtype)
    out = {}
    for name, changed in made.items():
        y = x.clone()
        y[:, c] = changed
        out[name] = y
    return out


def run(args: argparse.Namespace) -> dict:
    results = {}
    for name, (role, x) in _records(Path(args.wfdb), Path(args.eeg)).items():
        x = x.double()
        train, held = x[: len(x) // 2], x[len(x) // 2:]
        leads = x.shape[1]
        row: dict = {"role": role, "windows_held_out": len(held), "leads": leads}
        for measure, spread in (("std", lambda v: v.std(-1)), ("mad", _mad)):
            least = spread(train).amin(0)
            usable = least > 0
            ratio = spread(held) / least.clamp_min(1e-30)
            ratio[:, ~usable] = float("inf")
            row[measure] = {"least_held_out_ratio": float(ratio.amin())}
            chosen = range(leads) if leads <= 4 else range(0, leads, max(1, leads // 8))
            for share in SHARES:
                found: dict[str, list[float]] = {}
                for c in (c for c in chosen if bool(usable[c])):
                    for what, y in _variants(held, c, args.seed).items():
                        found.setdefault(what, []).append(float((spread(y)[:, c] / least[c] < share).double().mean()))
                row[measure][str(share)] = {"false_alarms": float((ratio < share).any(1).double().mean()),
                                            **{k: sum(v) / len(v) for k, v in found.items()}}
        results[name] = row
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options(p, "familiarity_flat_lead")
    p.add_argument("--wfdb", required=True, help="folder with MIT-BIH 100 and PTB s0010_re (wfdb-python's sample-data)")
    p.add_argument("--eeg", required=True, help="folder with MNE's test_edf_overlapping_annotations.edf and "
                                                "multiple_annotation_chans.bdf (mne-testing-data)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    return run_and_report(lambda _log: run(args), args.out, name="familiarity_flat_lead", seed=args.seed,
                          config=vars(args))


if __name__ == "__main__":
    raise SystemExit(main())
