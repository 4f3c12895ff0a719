"""Every reader's identifying fields, in one folder named after the patient (tour 21 audit).

Written with the real libraries: a DICOM ultrasound (name, IDs, institution, referring physician,
a study description naming the patient, a private element, accession number, age and dates), a
NIfTI (``descrip``, ``aux_file``, ``intent_name``, a comment extension), an EDF+ (pyedflib's
patient and recording fields, an annotation naming the patient), a WFDB record (``# name:``
comments, an annotation's aux note), a PNG with tEXt chunks, a TIFF with an ImageDescription and
Artist, a JPEG with EXIF; and a labels file with a ``patient_name`` column. None of it may reach
any file ``explain`` or ``predict`` writes (``identifiers.csv`` aside), nor what they print.
Found clean when written: a guard for every reader at once.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model

SECRETS = ("Smithfield", "Johnathan", "MRN7731", "1950", "Gotham", "Quimby", "OTHERID991", "ACC55123", "076Y",
           "20240311", "PRIVATE99")


def _write_folder(folder: Path) -> None:
    import nibabel as nib
    import pydicom
    import pyedflib
    import wfdb

    from tests.data.burned_in_dicom import write_ultrasound

    folder.mkdir()
    write_ultrasound(folder / "us.dcm", "NO")
    ds = pydicom.dcmread(folder / "us.dcm")
    ds.PatientName, ds.PatientID, ds.OtherPatientIDs = "Smithfield^Johnathan", "MRN7731", "OTHERID991"
    ds.InstitutionName, ds.ReferringPhysicianName = "Gotham Mercy Hospital", "Quimby^Harold"
    ds.StudyDescription, ds.SeriesDescription = "US abdomen Johnathan Smithfield", "Smithfield liver"
    ds.AccessionNumber, ds.PatientAge, ds.StudyDate, ds.PatientBirthDate = "ACC55123", "076Y", "20240311", "19500102"
    ds.add_new(0x00091010, "LO", "GOTHAM CREATOR")
    ds.add_new(0x00091011, "LO", "PRIVATE99 Johnathan")
    ds.save_as(folder / "us.dcm")
    img = nib.Nifti1Image(np.random.default_rng(0).normal(size=(32, 32)).astype(np.float32), np.eye(4))
    img.header["descrip"], img.header["aux_file"], img.header["intent_name"] = b"Smithfield MRN7731", b"Johnathan", b"Quimby"
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"patient Smithfield Johnathan 19500102"))
    nib.save(img, folder / "slice.nii.gz")
    edf = pyedflib.EdfWriter(str(folder / "eeg.edf"), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    edf.setSignalHeaders([{"label": "Fp1", "dimension": "uV", "sample_frequency": 100, "physical_max": 100,
                           "physical_min": -100, "digital_max": 32767, "digital_min": -32768}])
    edf.setPatientName("Smithfield_Johnathan")
    edf.setPatientCode("MRN7731")
    edf.setBirthdate("02.01.1950")
    edf.setAdmincode("ACC55123")
    edf.setTechnician("Quimby")
    edf.setRecordingAdditional("Gotham")
    edf.writeSamples([np.random.default_rng(1).uniform(-50, 50, 1000)])
    edf.writeAnnotation(1.0, -1, "Johnathan Smithfield woke up")
    edf.close()
    wfdb.wrsamp("ecg", fs=100, units=["mV"], sig_name=["MLII"], p_signal=np.random.default_rng(2).uniform(-1, 1, (1000, 1)),
                fmt=["16"], write_dir=str(folder), comments=["name: Johnathan Smithfield", "age: 076Y MRN7731"])
    wfdb.wrann("ecg", "atr", np.array([50, 450]), symbol=["N", '"'], aux_note=["", "Smithfield called"],
               write_dir=str(folder))
    pixels = (np.random.default_rng(3).random((32, 32)) * 255).astype(np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("Patient", "Smithfield Johnathan MRN7731")
    Image.fromarray(pixels).save(folder / "xray.png", pnginfo=info)
    Image.fromarray(pixels).save(folder / "xray.tif", tiffinfo={270: "Smithfield Johnathan", 315: "Quimby"})
    exif = Image.Exif()
    exif[0x010E], exif[0x013B] = "Smithfield Johnathan", "Quimby"
    Image.fromarray(pixels).save(folder / "photo.jpg", exif=exif)


def _leaks(out: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(out.rglob("*")):
        hits = [s for s in SECRETS if s in path.relative_to(out).as_posix()]
        if path.is_file() and path.name != "identifiers.csv":
            data = path.read_bytes()
            data = gzip.decompress(data) if path.suffix == ".gz" else data
            hits += [s for s in SECRETS if s.encode() in data]
        if hits:
            found[path.relative_to(out).as_posix()] = hits
    return found


@pytest.fixture(scope="module")
def patient_folder(tmp_path_factory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("hostile")
    folder = tmp / "Smithfield_Johnathan_1950-01-02"
    _write_folder(folder)
    torch.manual_seed(0)
    model = save_model(CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 32, 32)), tmp / "m.pt",
                       {"input_shape": [1, 32, 32], "class_names": ["a", "b"],
                        "recipe": Recipe(normalize="minmax", channels=1, size=(32, 32))})
    labels = tmp / "labels.csv"
    labels.write_text("case,label,patient_name\n" + "".join(
        f"{name},{k % 2},Johnathan Smithfield\n" for k, name in enumerate(("us.dcm", "xray.png", "xray.tif", "photo.jpg"))))
    return folder, model, labels


def test_explain_on_the_folder_writes_and_prints_no_identifier(patient_folder, tmp_path, capsys):
    folder, model, _ = patient_folder
    out = tmp_path / "out"
    main(["explain", "--model", str(model), "--input", str(folder), "--method", "gradient", "--out", str(out), "--quiet"])
    assert len(list(out.glob("case-*/overlay.png"))) >= 4  # the images were explained, the signals refused
    assert _leaks(out) == {}
    printed = capsys.readouterr()
    assert not [s for s in SECRETS if s in printed.out + printed.err]


def test_predict_with_a_patient_name_column_writes_and_prints_no_identifier(patient_folder, tmp_path, capsys):
    folder, model, labels = patient_folder
    out = tmp_path / "out"
    main(["predict", "--model", str(model), "--data", str(folder), "--labels", str(labels), "--out", str(out), "--quiet"])
    assert (out / "predictions.csv").is_file() and _leaks(out) == {}
    printed = capsys.readouterr()
    assert not [s for s in SECRETS if s in printed.out + printed.err]
