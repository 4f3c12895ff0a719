"""Pictures: PNG and JPEG (Pillow) and TIFF (tifffile), 8- or 16-bit, grey or colour.

Values are returned as stored (0..255 for 8 bit, 0..65535 for 16 bit), nothing rescaled; the
model's preprocessing recipe (:mod:`medlens.data.recipe`) decides the scaling. A colour file
whose channels are identical (a radiograph saved as RGB) is read as grey. ``Pillow`` and
``tifffile`` are imported inside the functions that need them.
"""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import torch

from medlens.data.formats.common import PathLike, Volume, _existing_file, _one_line, colour_channels_first, one_line_errors
from medlens.data.formats.limits import DecodeLimitError, _mb, check_decoded_size
from medlens.errors import FileFormatError, MedlensError

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


def _mode_layout(mode: str) -> tuple[int, int]:
    """(bands, bytes per band) of the array Pillow decodes a picture of ``mode`` into (after the
    conversions :func:`load_picture` makes)."""
    from PIL import Image

    if mode.startswith("I;16"):
        return 1, 2
    if mode in ("I", "F") or mode.startswith("I;32"):
        return 1, 4
    if mode == "P":
        return 4, 1  # palette -> RGB(A)
    try:
        return int(Image.getmodebands(mode)), 1
    except (KeyError, ValueError):
        return 4, 1


def _picture_header(p: pathlib.Path) -> tuple[tuple[int, int], str] | None:
    """``((width, height), mode)`` from the picture's header, read by Pillow's own plugin
    without its decompression-bomb check (which refuses before saying the size)."""
    from PIL import Image

    Image.init()
    with open(p, "rb") as fh:
        prefix = fh.read(16)
        for fmt in ("PNG", "JPEG", *Image.ID):
            if fmt not in Image.OPEN:
                continue
            factory, accept = Image.OPEN[fmt]
            try:
                if accept is not None and not accept(prefix):
                    continue
                fh.seek(0)
                im = factory(fh, str(p))
                return im.size, im.mode
            except Exception:  # noqa: BLE001 - not this plugin's format
                continue
    return None


def _check_picture(p: pathlib.Path, size: tuple[int, int], mode: str, memory_mb: float | None) -> None:
    bands, nbytes = _mode_layout(mode)
    width, height = size
    check_decoded_size(p, (height, width, bands), nbytes, memory_mb=memory_mb,
                       detail=f"{width} x {height} pixels x {bands} band{'s' if bands > 1 else ''} "
                              f"of {nbytes} byte{'s' if nbytes > 1 else ''}, mode {mode}")


@one_line_errors("image")
def load_picture(path: PathLike, *, memory_mb: float | None = None) -> Volume:
    """Read a PNG or JPEG file with Pillow.

    Parameters
    ----------
    path : str or os.PathLike
        The picture. Modes ``L`` and ``I;16`` (8- and 16-bit grey), ``RGB``/``RGBA``, palette and
        bilevel images are read; palette images become RGB.
    memory_mb : float, optional
        Memory budget; a picture whose header declares more decoded bytes than
        :func:`~medlens.data.formats.limits.decode_limit_bytes` allows is refused before decoding.

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
    DecodeLimitError
        The header declares more pixels than the memory budget allows (or than Pillow's
        decompression-bomb limit).
    """
    from PIL import Image

    p = _existing_file(path, "image file")
    try:
        with warnings.catch_warnings():
            # Pillow's warning threshold is a pixel count; the decoding limit (bytes, from the
            # memory budget) is checked below from the same header.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img_cm = Image.open(p)  # lazy: reads the header only
    except Image.DecompressionBombError as exc:
        header = _picture_header(p)
        if header is None:
            raise DecodeLimitError(f"{p} is refused by Pillow's decompression-bomb check ({_one_line(exc)})") from None
        (width, height), mode = header
        _check_picture(p, (width, height), mode, memory_mb)
        limit = 2 * int(Image.MAX_IMAGE_PIXELS or 0)
        per_pixel = _mode_layout(mode)[0] * _mode_layout(mode)[1]
        raise DecodeLimitError(
            f"{p}: its header declares {width} x {height} = {width * height:,} pixels "
            f"({_mb(width * height * per_pixel)} MB decoded), above Pillow's decompression-bomb limit of "
            f"{limit:,} pixels ({_mb(limit * per_pixel)} MB)"
        ) from None
    except MedlensError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on corrupt headers
        raise FileFormatError(f"{p} is not a readable image file ({type(exc).__name__}: {_one_line(exc)})") from None
    try:
        with img_cm as img:
            _check_picture(p, img.size, img.mode, memory_mb)
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
    except MedlensError:
        raise
    except Exception as exc:  # noqa: BLE001 - OSError, SyntaxError, ValueError, struct.error, ...
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


@one_line_errors("TIFF")
def load_tiff(path: PathLike, *, memory_mb: float | None = None) -> Volume:
    """Read a TIFF file with tifffile: one page, or a stack of same-sized pages as a volume.

    Parameters
    ----------
    path : str or os.PathLike
        The TIFF file (8-, 16- or 32-bit integer or float samples).
    memory_mb : float, optional
        Memory budget; the first series' shape and data type (from the page headers) must not
        declare more than :func:`~medlens.data.formats.limits.decode_limit_bytes`.

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
    DecodeLimitError
        The page headers declare more decoded bytes than the memory budget allows.
    """
    import tifffile

    p = _existing_file(path, "TIFF file")
    try:
        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]  # what asarray() decodes: shapes and dtype from the headers
            check_decoded_size(p, series.shape, np.dtype(series.dtype).itemsize, memory_mb=memory_mb,
                               detail=f"{' x '.join(str(s) for s in series.shape)} samples of {np.dtype(series.dtype)}")
            arr = tif.asarray()
            page = tif.pages[0]
            n_pages = len(tif.pages)
            rgb_planar = (page.photometric == tifffile.PHOTOMETRIC.RGB and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE)
            tags = {t.name: t.value for t in page.tags.values()
                    if t.name in ("XResolution", "YResolution", "ResolutionUnit", "BitsPerSample")}
    except MedlensError:
        raise
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
