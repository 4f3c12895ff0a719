"""A picture of a screen in an export (an RGB secondary capture converted from a workstation's
screen or drawn, or ImageType SCREEN SAVE) is left out of a folder walk and counted; a radiograph
stored as secondary capture (greyscale, as RSNA Pneumonia's, ConversionType WSD) stays a case
(tour32). Given by name, a screen capture is still read."""

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medlens.data.formats.folders import scan_cases, walk_cases

SC = "1.2.840.10008.5.1.4.1.1.7"


def _capture(path, photometric="MONOCHROME2", conversion="WSD", image_type=("ORIGINAL", "PRIMARY")):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SC, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SC, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.ConversionType, ds.ImageType = "OT", conversion, list(image_type)
    ds.SeriesInstanceUID = generate_uid()
    samples = 3 if photometric == "RGB" else 1
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 7, 0, samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.PixelData = np.zeros((4, 4, samples), dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_screen_grabs_are_left_out_and_a_greyscale_radiograph_stays(tmp_path):
    _capture(tmp_path / "xray")  # a radiograph stored as secondary capture (RSNA Pneumonia's form)
    _capture(tmp_path / "grab", photometric="RGB", conversion="WSD")
    _capture(tmp_path / "drawn", photometric="RGB", conversion="SYN")
    _capture(tmp_path / "saved", image_type=("DERIVED", "SECONDARY", "SCREEN SAVE"))
    _capture(tmp_path / "photo", photometric="RGB", conversion="DV")  # a digitised video frame (a photograph)
    cases, left_out = walk_cases(tmp_path)
    assert [c.name for c in cases] == ["photo", "xray"]
    assert "screen capture (secondary capture of a screen): 3" in left_out


def test_a_screen_grab_given_by_name_is_still_a_case(tmp_path):
    grab = _capture(tmp_path / "grab", photometric="RGB")
    assert [c.name for c in scan_cases(grab)] == ["grab"]
