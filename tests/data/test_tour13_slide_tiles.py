"""A whole-slide microscopy DICOM holds the tiles of one picture (its total pixel matrix) as
frames: it is read as that 2-D picture, not as a volume of tiles, and a file holding several
focal planes is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medlens.data import read
from medlens.errors import FileFormatError

WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"
TILE, MATRIX = 4, (6, 10)  # 2 x 3 tiles of 4 x 4, the last row and column cut at the matrix edge


def _slide(path, *, focal_planes=1, sparse=False):
    across, down = 3, 2
    frames = np.zeros((across * down * focal_planes, TILE, TILE, 3), np.uint8)
    for f in range(len(frames)):
        frames[f] = (10 * (f + 1), 0, 5)  # colour: the red channel numbers the tile
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = WSI, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = WSI, meta.MediaStorageSOPInstanceUID, "SM"
    ds.PatientName = "Slide^Patient"
    ds.Rows = ds.Columns = TILE
    ds.NumberOfFrames = len(frames)
    ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = MATRIX
    ds.TotalPixelMatrixFocalPlanes = focal_planes
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    measures = Dataset()
    measures.PixelSpacing = [0.0005, 0.0005]
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    if sparse:  # each tile says where it lies (1-based), in reverse order
        order = list(range(len(frames)))[::-1]
        items = []
        for f in order:
            pos = Dataset()
            pos.RowPositionInTotalImagePixelMatrix = (f // across) * TILE + 1
            pos.ColumnPositionInTotalImagePixelMatrix = (f % across) * TILE + 1
            item = Dataset()
            item.PlanePositionSlideSequence = Sequence([pos])
            items.append(item)
        ds.PerFrameFunctionalGroupsSequence = Sequence(items)
        ds.DimensionOrganizationType = "TILED_SPARSE"
        frames = frames[order]
    else:
        ds.DimensionOrganizationType = "TILED_FULL"
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _expected():
    want = np.zeros(MATRIX, np.float32)
    for f in range(6):
        r, c = (f // 3) * TILE, (f % 3) * TILE
        want[r : r + TILE, c : c + TILE] = 10 * (f + 1)
    return want


@pytest.mark.parametrize("sparse", [False, True])
def test_tiles_are_assembled_into_the_slide_picture(tmp_path, sparse):
    volume = read(_slide(tmp_path / "slide.dcm", sparse=sparse))
    assert volume.channels == 3 and volume.spatial_shape == MATRIX
    assert np.array_equal(volume.array[0].numpy(), _expected())
    assert volume.spacing == (0.0005, 0.0005)
    assert "PatientName" in volume.identifiers


def test_several_focal_planes_are_refused_in_one_line(tmp_path):
    with pytest.raises(FileFormatError, match="one focal plane") as err:
        read(_slide(tmp_path / "planes.dcm", focal_planes=2))
    assert "\n" not in str(err.value)
