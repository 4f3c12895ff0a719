"""Pictures: PNG and JPEG (Pillow) and TIFF (tifffile), 8- or 16-bit, grey or colour.

Values are returned as stored (0..255 for 8 bit, 0..65535 for 16 bit), nothing rescaled; the
model's preprocessing recipe (:mod:`medlens.data.recipe`) decides the scaling. A colour file
whose channels are identical (a radiograph saved as RGB) is read as grey. ``Pillow`` and
``tifffile`` are imported inside the functions that need them.
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch

from medlens.data.formats.common import PathLike, Volume, _existing_file, _one_line, colour_channels_first
from medlens.errors import FileFormatError

#: Bytes each picture format starts with.
MAGIC = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "TIFF": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
}

_MM_PER_UNIT = {2: 25.4, 3: 10.0}  # TIFF ResolutionUnit: inch, centimetre


def _volume(arr: np.ndarray, p: pathlib.Path, fmt: str, bits: int, spacing: tuple[float, float] | None,
            extra: dict[str, str]) -> Volume:
    """``(H, W)``, ``(H, W, C)`` or ``(pages, H, W)`` -> a :class:`Volume`."""
    metadata = {"Format": fmt.replace("-stack", ""), "BitDepth": str(bits), **extra}
    if arr.dtype.kind in "iu":  # float samples have no fixed range
        metadata["MaxValue"] = str(2**bits - 1)
    channels = 1
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and fmt != "TIFF-stack":
        if arr.shape[-1] == 4:  # alpha carries no intensity
            arr = arr[..., :3]
        arr, channels, metadata["Colour"] = colour_channels_first(arr)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and channels == 1 and fmt != "TIFF-stack"):
        raise FileFormatError(f"{p} holds an image of unsupported shape {tuple(arr.shape)}")
    n_spatial = arr.ndim - (1 if channels > 1 else 0)
    spacing_t = (1.0,) * (n_spatial - 2) + (spacing or (1.0, 1.0))
    if spacing is None:
        metadata["PixelSpacing"] = "unknown"
    data = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return Volume(data, spacing_t, metadata, {}, None, channels, fmt.replace("-stack", ""), str(p))


def load_picture(path: PathLike) -> Volume:
    """Read a PNG or JPEG file with Pillow.

    Parameters
    ----------
    path : str or os.PathLike
        The picture. Modes ``L`` and ``I;16`` (8- and 16-bit grey), ``RGB``/``RGBA``, palette and
        bilevel images are read; palette images become RGB.

    Returns
    -------
    Volume
        ``array`` float32 ``(H, W)`` in stored grey levels, or ``(3, H, W)`` for colour
        (``channels=3``); ``metadata["BitDepth"]`` and ``["MaxValue"]`` (255 or 65535);
        ``spacing`` from the file's dots per inch when given, else 1.0 (and
        ``metadata["PixelSpacing"] == "unknown"``). ``identifiers`` is empty: text chunks are
        not read.

    Raises
    ------
    FileFormatError
        Missing, truncated or corrupt file, or not a picture Pillow reads.
    """
    from PIL import Image, UnidentifiedImageError

    p = _existing_file(path, "image file")
    try:
        with Image.open(p) as img:
            img.load()  # decodes now: a truncated file fails here, not later
            fmt = str(img.format or p.suffix.lstrip(".").upper())
            mode = img.mode
            dpi = img.info.get("dpi")
            if mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            elif mode in ("1", "LA", "PA"):
                img = img.convert("L")
            elif mode == "CMYK" or mode == "YCbCr":
                img = img.convert("RGB")
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FileFormatError(f"{p} is not a readable image file ({type(exc).__name__}: {_one_line(exc)})") from exc
    if mode.startswith("I;16") or arr.dtype == np.uint16:
        bits = 16
    elif arr.dtype.kind in "iu" and arr.dtype.itemsize > 1:
        bits = 16 if arr.max(initial=0) <= 65535 else 32
    else:
        bits = 8
    spacing = None
    if dpi and all(float(d) > 0 for d in dpi[:2]):
        spacing = (25.4 / float(dpi[1]), 25.4 / float(dpi[0]))  # rows, columns
    return _volume(arr, p, fmt, bits, spacing, {"Mode": mode})


def load_tiff(path: PathLike) -> Volume:
    """Read a TIFF file with tifffile: one page, or a stack of same-sized pages as a volume.

    Parameters
    ----------
    path : str or os.PathLike
        The TIFF file (8-, 16- or 32-bit integer or float samples).

    Returns
    -------
    Volume
        ``array`` float32 ``(H, W)``, ``(3, H, W)`` for colour, or ``(pages, H, W)`` for a
        multi-page grey file; ``spacing`` from ``XResolution``/``YResolution`` and
        ``ResolutionUnit`` (inch or centimetre) when given.

    Raises
    ------
    FileFormatError
        Missing, truncated or corrupt file.
    """
    import tifffile

    p = _existing_file(path, "TIFF file")
    try:
        with tifffile.TiffFile(p) as tif:
            arr = tif.asarray()
            page = tif.pages[0]
            n_pages = len(tif.pages)
            rgb_planar = (page.photometric == tifffile.PHOTOMETRIC.RGB and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE)
            tags = {t.name: t.value for t in page.tags.values()
                    if t.name in ("XResolution", "YResolution", "ResolutionUnit", "BitsPerSample")}
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error, OSError...
        raise FileFormatError(f"{p} is not a readable TIFF file ({type(exc).__name__}: {_one_line(exc)})") from exc
    if rgb_planar and arr.ndim == 3 and arr.shape[0] in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # colour stored as separate planes: channels last like Pillow
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise FileFormatError(f"{p} holds samples of type {arr.dtype}; expected integer or float grey levels")
    bits = 8 * arr.dtype.itemsize if arr.dtype.kind in "iu" else 32
    spacing = None
    unit = int(getattr(tags.get("ResolutionUnit"), "value", tags.get("ResolutionUnit") or 1))
    xres, yres = tags.get("XResolution"), tags.get("YResolution")
    if unit in _MM_PER_UNIT and xres and yres:
        px, py = (float(r[0]) / float(r[1]) if isinstance(r, tuple) else float(r) for r in (xres, yres))
        if px > 0 and py > 0:
            spacing = (_MM_PER_UNIT[unit] / py, _MM_PER_UNIT[unit] / px)
    fmt = "TIFF-stack" if n_pages > 1 and arr.ndim == 3 and arr.shape[-1] not in (3, 4) else "TIFF"
    if fmt == "TIFF" and arr.ndim == 3 and arr.shape[-1] not in (3, 4):
        fmt = "TIFF-stack"
    return _volume(arr, p, fmt, bits, spacing, {"Pages": str(n_pages)})
