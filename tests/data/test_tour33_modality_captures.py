"""An RGB secondary capture converted WSD/SYN is a screen grab only when its Modality says no
imaging modality (OT, SC or none): a legacy ultrasound export stores its real frames that way,
Modality US, and they stay cases unless ImageType says SCREEN SAVE (tour 33)."""

import pytest
from pydicom.dataset import Dataset

from medlens.data.formats.dicom_kinds import not_a_case

SC = "1.2.840.10008.5.1.4.1.1.7"
GRAB = "screen capture (secondary capture of a screen)"


def _rgb_capture(modality, conversion="WSD", image_type=("ORIGINAL", "PRIMARY")):
    ds = Dataset()
    ds.SOPClassUID, ds.PhotometricInterpretation, ds.ConversionType = SC, "RGB", conversion
    ds.ImageType = list(image_type)
    if modality is not None:
        ds.Modality = modality
    return ds


@pytest.mark.parametrize("modality", ["US", "XA", "ES", "CR", "MR"])
def test_an_rgb_capture_of_an_imaging_modality_stays_a_case(modality):
    assert not_a_case(_rgb_capture(modality)) is None
    assert not_a_case(_rgb_capture(modality, conversion="SYN")) is None


@pytest.mark.parametrize("modality", ["OT", "SC", "", None])
def test_an_rgb_capture_of_no_imaging_modality_is_a_screen_grab(modality):
    assert not_a_case(_rgb_capture(modality)) == GRAB


def test_an_ultrasound_screen_save_is_a_screen_grab():
    assert not_a_case(_rgb_capture("US", image_type=("DERIVED", "SECONDARY", "SCREEN SAVE"))) == GRAB
