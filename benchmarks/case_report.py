"""Acceptance run of the case report (issue 15): three real reports, their sizes, screenshots.

    python benchmarks/case_report.py --out case-report-out [--docs docs]

1. 2D: the reference CNN trained on PneumoniaMNIST (3 epochs unless ``--model-2d``) explains a
   test X-ray; the prediction basis comes from the training split.
2. 3D: the reference 3D CNN trained on the 3D lesion benchmark (32^3 volumes; ``--model-3d`` or
   trained here) explains a CT series of 128 DICOM slices of 256 x 256 (a test volume of the
   benchmark resampled to that grid, in HU, with every identifying DICOM tag set and files named
   by their UIDs). Three methods: the acceptance size is "under 15 MB".
3. Signal: the reference 1D CNN trained on ECG5000 explains a test heartbeat.
4. With ``--lesion-model M --lesion-data D --lesion-eval E`` (a 2D lesion benchmark, its model
   and a ``medlens evaluate`` run of it): a lesion case whose trust statement comes from the
   evaluation, with its prediction basis.

Each report is written by ``medlens report``; the script prints each report's size and the
time it took, checks that no identifying value of the DICOM series reached the HTML, and, when
Chromium is installed, opens each in the browser (no console error, no request), saves a
screenshot (``--docs``: also as docs/case-report-*.png) and prints the pages of its print-out.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cli(args: list[str]) -> None:
    from medlens.cli import main

    code = main(args)
    if code:
        raise SystemExit(f"medlens {' '.join(args)} failed with {code}")


def _model(path: Path, data: str, epochs: int) -> Path:
    if not path.exists():
        _cli(["train", "--data", data, "--out", str(path), "--epochs", str(epochs), "--quiet"])
    return path


def write_ct_series(npz: Path, folder: Path, *, slices: int = 128, size: int = 256) -> dict[str, str]:
    """A lesion volume of the benchmark's test split, resampled to ``slices x size x size``,
    written as a DICOM CT series with every identifying tag of the basic profile set."""
    import numpy as np
    import pydicom
    import torch
    import torch.nn.functional as F

    from tests.data.identified_dicom import write_identified_dicom

    with np.load(npz) as raw:
        images, labels = raw["test_images"], raw["test_labels"].reshape(-1)
    k = int(np.nonzero(labels == 1)[0][0])
    vol = torch.from_numpy(images[k].astype(np.float32)).reshape(1, 1, *images.shape[-3:])
    vol = F.interpolate(vol, size=(slices, size, size), mode="trilinear", align_corners=False)[0, 0].numpy()
    gen = np.random.default_rng(0)
    hu = (vol / max(float(vol.max()), 1e-6) * 1400 - 1000 + gen.normal(0, 15, vol.shape)).astype(np.int16)
    folder.mkdir(parents=True, exist_ok=True)
    template = folder.parent / "template.dcm"
    values = write_identified_dicom(template)
    base = pydicom.dcmread(template)
    template.unlink()
    for z in range(slices):
        ds = base.copy()
        ds.Rows = ds.Columns = size
        ds.PixelRepresentation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 16, 15
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = hu[z].tobytes()
        ds.ImagePositionPatient = [0.0, 0.0, float(z)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.8, 0.8]
        ds.InstanceNumber = z + 1
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.9.7.{z + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    return values


def _browse(report: Path, shot: Path) -> dict:
    """Open the report in Chromium: viewers drawn, console errors and requests (none allowed),
    pages of its print-out; a screenshot beside it."""
    from tests.report.browser import browser_page, chromium_path, pdf_pages

    if chromium_path() is None:
        return {"opened": False}
    with browser_page(report) as visit:
        n = visit.wait_for_viewers(timeout=120_000)
        visit.page.screenshot(path=str(shot), full_page=True)
        visit.page.locator("section.summary").screenshot(path=str(shot.with_name(shot.stem + "-summary.png")))
        pages = pdf_pages(visit.page.pdf(format="A4"))
        visit.assert_clean()  # raises on a console error or a request
    return {"opened": True, "viewers": n, "console_errors": 0, "requests": 0, "print_pages": pages}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="case-report-out")
    p.add_argument("--docs", default=None, help="also copy the screenshots here (e.g. docs)")
    p.add_argument("--model-2d"), p.add_argument("--model-3d"), p.add_argument("--model-signal")
    p.add_argument("--data-3d", help="3D lesion benchmark npz (written here when absent)")
    p.add_argument("--lesion-model"), p.add_argument("--lesion-data"), p.add_argument("--lesion-eval")
    p.add_argument("--lesion-index", type=int, default=1)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    m2 = Path(args.model_2d) if args.model_2d else _model(out / "pneumoniamnist.pt", "pneumoniamnist", 3)
    msig = Path(args.model_signal) if args.model_signal else _model(out / "ecg5000.pt", "ecg5000", 6)
    data3d = Path(args.data_3d) if args.data_3d else out / "lesions3d.npz"
    if not data3d.exists():
        _cli(["generate", "lesions", "--spatial-dims", "3", "--size", "32", "--n-train", "300", "--out", str(data3d)])
    m3 = Path(args.model_3d) if args.model_3d else _model(out / "lesions3d.pt", str(data3d), 12)
    series = out / "1.2.826.0.1.3680043.9.7"
    if not series.exists():
        values = write_ct_series(data3d, series)
    else:
        from tests.data.identified_dicom import write_identified_dicom

        values = write_identified_dicom(out / "values.dcm")
    runs = {
        "2d": ["--model", str(m2), "--input", "pneumoniamnist", "--index", "1", "--basis-data", "pneumoniamnist"],
        "3d": ["--model", str(m3), "--input", str(series)],
        "signal": ["--model", str(msig), "--input", "ecg5000", "--index", "3", "--methods", "gradient,integrated_gradients,occlusion"],
    }
    if args.lesion_model and args.lesion_data and args.lesion_eval:
        runs["2d-evaluated"] = ["--model", args.lesion_model, "--input", args.lesion_data, "--index",
                                str(args.lesion_index), "--evaluation", args.lesion_eval, "--basis-data", args.lesion_data]
    from benchmarks._runner import provenance, write_result

    origin = provenance(seed=0, config={"runs": list(runs)})
    ok, rows = True, []
    for name, cli in runs.items():
        t0 = time.perf_counter()
        _cli(["report", *cli, "--quiet", "--out", str(out / name)])
        seconds = time.perf_counter() - t0
        html = out / name / "report.html"
        size = html.stat().st_size / 2**20
        print(f"{name}: {html} {size:.2f} MB, written in {seconds:.1f} s")
        row = {"report": name, "html_mb": round(size, 3), "seconds": round(seconds, 1)}
        if name == "3d":
            page = html.read_text(encoding="utf-8")
            leaked = [v for v in values.values() if len(v) >= 6 and v in page]
            print(f"  identifying values in the HTML: {len(leaked)}; size under 15 MB: {size < 15}")
            ok &= not leaked and size < 15
            row["identifying_values_in_html"] = len(leaked)
        row["browser"] = _browse(html, out / f"case-report-{name}.png")
        print("  browser:", row["browser"])
        rows.append(row)
        if args.docs:
            import shutil

            Path(args.docs).mkdir(parents=True, exist_ok=True)
            if (out / f"case-report-{name}-summary.png").exists():  # the summary: what a clinician sees first
                shutil.copy(out / f"case-report-{name}-summary.png", Path(args.docs) / f"case-report-{name}.png")
    write_result("case_report", {"reports": rows, "passed": bool(ok)}, seed=0, origin=origin)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
