"""The report's viewer draws a volume's planes as a radiologist reads them, from the affine
(tour16): a bright voxel at the patient's left-anterior-superior corner lands top right of the
axial and coronal panels and top left of the sagittal one, whatever the stored axis order, while
the sliders, the slice labels and the slice shown stay on the stored grid (the voxel of the map's
maximum)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from medlens.data import read
from medlens.data.formats.orientation import Panel
from medlens.errors import InputError
from medlens.report.html import Report
from medlens.report.viewer import viewer_html
from tests.viz.oriented_volumes import CORNER, NIFTI_CASES, corner_of, write_dicom_series, write_nifti


def _volumes(tmp_path):
    """name -> (the volume as read, the stored index of its marker)."""
    out = {}
    for case in sorted(NIFTI_CASES):
        path, marker = write_nifti(tmp_path / f"{case}.nii.gz", case)
        out[case] = (read(path), marker)
    for plane in ("axial", "sagittal"):
        volume = read(write_dicom_series(tmp_path / f"dicom-{plane}", plane))
        out[f"dicom-{plane}"] = (volume, np.unravel_index(int(volume.array.argmax()), volume.spatial_shape))
    return out


def _viewer(name, volume):
    base = volume.array.numpy()
    return viewer_html(base, {"marker": base}, spacing=volume.spacing, plane_names=volume.plane_names,
                       affine=volume.affine, opacity=0.0, viewer_id=f"v-{name}", title=name)


def _payload(fragment):
    return json.loads(re.search(r'<script type="application/json" class="ml-data">(.*?)</script>', fragment).group(1))


def test_viewer_layout_puts_the_marker_in_the_radiological_corner(tmp_path):
    for name, (volume, marker) in _volumes(tmp_path).items():
        fragment = _viewer(name, volume)
        payload = _payload(fragment)
        assert re.findall(r'aria-label="[^"]*, (\w+) plane"', fragment) == ["axial", "coronal", "sagittal"], name
        assert payload["slices"] == [int(i) for i in marker], name  # stored indices of the map's peak
        for spec in payload["panels"]:
            panel = Panel(**spec)
            drawn = panel.draw(volume.array.numpy(), payload["slices"][panel.axis])
            assert corner_of(drawn) == CORNER[panel.name], (name, panel.name)


def test_viewer_in_chromium_draws_the_marker_in_the_radiological_corner(tmp_path):
    from tests.report.browser import browser_page, require_browser

    require_browser()
    volumes = _volumes(tmp_path)
    report = Report("Orientation", "markers")
    section = report.section("Volumes")
    for name, (volume, _marker) in volumes.items():
        section.add_viewer(_viewer(name, volume))
    page_path = tmp_path / "orientation.html"
    page_path.write_text(report.render(), encoding="utf-8")
    with browser_page(page_path) as visit:
        assert visit.wait_for_viewers() == len(volumes)
        drawn = visit.page.evaluate("""() => [...document.querySelectorAll('.ml-viewer')].map(v => ({
            id: v.id,
            panes: [...v.querySelectorAll('canvas.ml-pane')].map(c => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let best = -1, at = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i] > best) { best = d[i]; at = i / 4; }
                return {label: c.getAttribute('aria-label'), slice: +c.dataset.slice, plane: +c.dataset.plane,
                        rows: c.height, cols: c.width, r: Math.floor(at / c.width), c: at % c.width};
            })}))""")
        visit.assert_clean()
    for viewer in drawn:
        name = viewer["id"][2:]
        volume, marker = volumes[name]
        names = [re.search(r"(\w+) slice \d+ of", p["label"]).group(1) for p in viewer["panes"]]
        assert names == ["axial", "coronal", "sagittal"], name
        for pane, plane in zip(viewer["panes"], names):
            assert pane["slice"] == marker[pane["plane"]], (name, plane)  # the stored slice through the marker
            picture = np.zeros((pane["rows"], pane["cols"]))
            picture[pane["r"], pane["c"]] = 1
            assert corner_of(picture) == CORNER[plane], (name, plane)


@pytest.mark.parametrize("affine", [None, ((0.0, 0.0, 0.0, 0.0),) * 4])
def test_viewer_without_a_usable_affine_draws_the_stored_axes(affine):
    base = np.arange(60, dtype=float).reshape(3, 4, 5)
    payload = _payload(viewer_html(base, {"m": base}, affine=affine))
    assert [(p["axis"], p["rows"], p["cols"], p["flip_rows"], p["flip_cols"]) for p in payload["panels"]] == [
        (0, 1, 2, False, False), (1, 0, 2, False, False), (2, 0, 1, False, False)]


@pytest.mark.parametrize("affine, problem", [(np.eye(3), "4 x 4 matrix, got shape (3, 3)"),
                                             ([[1, 2], [3]], "4 x 4 matrix of numbers")])
def test_viewer_refuses_an_affine_that_is_not_4_by_4_in_one_line(affine, problem):
    base = np.zeros((3, 4, 5))
    with pytest.raises(InputError, match=re.escape(problem)) as err:
        viewer_html(base, {"m": base}, affine=affine)
    assert "\n" not in str(err.value)
