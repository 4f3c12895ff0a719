"""summary.json's geometry names a volume a volume (tour32)."""

from medlens.data.recipe.prepare import Geometry


def _geometry(shape):
    return Geometry("image", shape, None, shape, tuple((0, 0) for _ in shape), shape)


def test_a_volume_geometry_says_volume_and_an_image_says_image():
    assert _geometry((4, 8, 8)).to_dict()["kind"] == "volume"
    assert _geometry((8, 8)).to_dict()["kind"] == "image"
    assert _geometry((4, 8, 8)).kind == "image"  # the grid is carried back as before
