"""Small data sets of every kind, written by the tests themselves: notes, WFDB records, scans, npz."""

from __future__ import annotations

import csv
import math

import numpy as np
from PIL import Image

FILLER = ("the", "lungs", "are", "clear", "no", "acute", "findings", "stable", "chest", "xxxx", "view", "lateral",
          "pa", "and", "bony", "structures", "intact", "mediastinum", "within", "limits")


def write_notes(path, n: int = 80, seed: int = 0, *, text_column: str = "text", label_column: str = "label") -> list[dict]:
    """Notes whose label is told by one finding word ("cardiomegaly"/"enlarged" vs "normal heart size"),
    in random filler; a ``group`` column pairs notes by patient."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = list(rng.choice(FILLER, size=int(rng.integers(6, 14))))
        abnormal = i % 2 == 1
        finding = ["mild", "cardiomegaly"] if abnormal and i % 4 == 1 else ["heart", "enlarged"] if abnormal else ["normal", "heart", "size"]
        at = int(rng.integers(0, len(words) + 1))
        words[at:at] = finding
        text = " ".join(words).capitalize() + "."
        if i % 5 == 0:
            text = text.replace("xxxx", "XXXX")
        rows.append({"case": f"n{i:03d}", text_column: text, label_column: "abnormal" if abnormal else "normal",
                     "group": f"p{i // 2:03d}"})
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def write_beats_record(folder, name: str = "rec", fs: int = 250, seconds: float = 160.0) -> list[tuple[int, str]]:
    """Two leads with a beat every 0.8 s: N beats narrow upward spikes, every fourth beat a wide
    inverted V beat; annotations 'N'/'V' and one rhythm mark '+'. Returns the annotations."""
    import wfdb

    n = int(seconds * fs)
    t = np.arange(n) / fs
    sig = np.zeros((n, 2))
    beats = []
    rng = np.random.default_rng(1)
    for k, at in enumerate(np.arange(0.6, seconds - 0.6, 0.8)):
        v = k % 4 == 3
        width, amp = (0.06, -1.2) if v else (0.015, 1.0)
        bump = amp * np.exp(-0.5 * ((t - at) / width) ** 2)
        sig[:, 0] += bump
        sig[:, 1] += 0.5 * bump
        beats.append((int(round(at * fs)), "V" if v else "N"))
    sig += 0.02 * rng.standard_normal(sig.shape)
    wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=sig, fmt=["16", "16"],
                adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(folder))
    marks = sorted(beats + [(beats[3][0] + 10, "+")])
    wfdb.wrann(name, "atr", np.array([s for s, _ in marks]), np.array([b for _, b in marks]), write_dir=str(folder))
    return beats


def write_scans(folder, labels_csv, n: int = 24, *, groups: bool = True) -> list[dict]:
    """PNG scans, a bright square for "lesion"; labels as words; two scans per patient in ``group``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n):
        image = (rng.random((20, 24)) * 60).astype(np.uint8)
        bright = (k // 2) % 2 == 1  # both scans of a patient share the label
        if bright:
            image[5:15, 6:18] += 150
        Image.fromarray(image).save(folder / f"c{k:02d}.png")
        row = {"case": f"c{k:02d}.png", "label": "lesion" if bright else "normal"}
        if groups:
            row["group"] = f"patient{k // 2:02d}"
        rows.append(row)
    with open(labels_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def write_npz(path, n: int = 40, seed: int = 0) -> None:
    """Images 12x12 with a bright square for class "b", in the layout ``medlens train`` reads."""
    rng = np.random.default_rng(seed)
    arrays = {"class_names": np.asarray(["a", "b"])}
    for split, m in (("train", n), ("val", n // 2), ("test", n // 2)):
        labels = np.arange(m) % 2
        images = rng.random((m, 12, 12)).astype(np.float32) * 0.5
        images[labels == 1, 3:9, 3:9] += 0.5 * rng.random() + 0.3
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels
    np.savez(path, **arrays)


def read_predictions(path) -> tuple[list[dict], list[str]]:
    """The rows of predictions.csv and its class names (from the probability columns)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    names = [c.split(".", 1)[1] for c in rows[0] if c.startswith("probability.")]
    return rows, names


def metrics_from_rows(rows: list[dict], names: list[str]) -> dict:
    """Accuracy, AUROC (scikit-learn) and the ten-bin expected calibration error, from the CSV's own columns."""
    from sklearn.metrics import roc_auc_score

    labelled = [r for r in rows if r["label"]]
    probs = np.array([[float(r[f"probability.{c}"]) for c in names] for r in labelled])
    y = np.array([names.index(r["label"]) for r in labelled])
    predicted = np.array([names.index(r["predicted"]) for r in labelled])
    assert (predicted == probs.argmax(1)).all()
    accuracy = float((predicted == y).mean())
    auroc = (roc_auc_score(y, probs[:, 1]) if len(names) == 2
             else roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    conf = probs.max(1)
    which = np.digitize(conf, np.linspace(0, 1, 11)[1:-1])
    ece = 0.0
    for b in range(10):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs((predicted[sel] == y[sel]).mean() - conf[sel].mean())
    return {"accuracy": accuracy, "auroc": float(auroc), "expected_calibration_error": float(ece),
            "n_labelled": len(labelled)}


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=0, abs_tol=tol)


BEAT_WINDOWS = {"fs": 250.0, "before": 0.25, "after": 0.45, "leads": ["MLII", "V5"], "normalize": "none",
                "kind": "beats", "annotation_labels": {"N": "normal", "V": "ventricular"}, "step": None}


def write_beat_model_and_record(folder):
    """A tiny untrained beat model (N vs V, two leads at 250 Hz, 0.25 s before and 0.45 s after each
    beat) and an 8-s record ``folder/rec`` with its beats: ``(model path, record, beats)``."""
    from medlens.models import save_model
    from medlens.models.attention_rnn import AttentionRNN

    beats = write_beats_record(folder, seconds=8.0)
    net = AttentionRNN(2, in_channels=2, hidden_size=6, attention_size=5, front_channels=4).eval()
    recipe = {"fs": 250.0, "leads": ["MLII", "V5"], "units": ["mV", "mV"], "size": [175]}
    model = save_model(net, folder / "beats.pt", {"class_names": ["normal", "ventricular"], "input_shape": [2, 175],
                                                  "windows": BEAT_WINDOWS, "recipe": recipe})
    return model, folder / "rec", beats
