"""Ground-truth lesion benchmark: lesions with exact masks inserted into real images.

Explanations can only be scored for localisation against something whose location is known.
This generator inserts synthetic lesions (blobs of varied size, contrast, texture and shape) into
real chest X-rays, so that the label ("lesion present") is caused by pixels whose support is
known exactly, while the background keeps the texture of real radiographs. A **shortcut**
variant adds a small bright square marker in a corner (like a hospital tag or a laterality
marker) that predicts the label in most training and validation images but is independent of the
label in the test images: a model that learns it scores worse on the test split, and an
explanation method that is faithful to the model puts attribution on the marker.

Backgrounds
-----------
2D: the bundled PneumoniaMNIST chest X-rays (normal and pneumonia alike; their labels are
discarded), upsampled from 28x28 to ``size`` x ``size`` by bicubic interpolation, randomly
mirrored left-right. Each split draws from the matching PneumoniaMNIST split, so no background
image is shared between train, val and test.

3D: a volume of ``size``^3 whose axial slices interpolate between ``_SLICES_PER_VOLUME`` real
chest X-rays stacked along depth (trilinear interpolation). In-plane the texture is that of real
radiographs, along depth it varies smoothly; it is a realistic-texture background, not anatomy.
It needs nothing beyond the bundled data (keep ``size`` small, e.g. 32).

Lesions
-------
A lesion is the set ``{p : d(p) < 1}`` of a normalised distance ``d`` around a random centre:

* ``round``: ``d = |p - c| / r``;
* ``elongated``: an ellipse/ellipsoid with a random orientation (random orthogonal matrix) and
  axis ratio 1.6-2.6 at the same area/volume as the round lesion of radius ``r``;
* ``irregular``: ``d = |p - c| / r + n(p)`` with ``n`` a smooth random field of amplitude 0.5
  whose wavelength scales with the lesion: its coarse grid has a node every ``0.6 r`` to
  ``0.9 r`` (bicubic/trilinear interpolation in between), so the border has several lobes at
  lesion scale. (A field on the image's scale, a node every quarter image, only made the
  border a little wavy: irregular and round masks then had axis ratios 1.04 and 1.02.) Only
  the largest connected part is kept, so a lesion is one piece.
  :func:`mask_statistics` measures axis ratio, solidity and border roughness per shape.

Inside the support the image changes by ``contrast * profile(d) * (1 + t * texture(p))``, with a
flat-topped profile ``1 - d**4`` (non-zero everywhere inside, zero outside, so the mask is the
exact support of the change), a texture amplitude ``t`` in [0, 0.5] and a smooth texture field.
The sign of the contrast is random, flipped where the local background would leave no room
for it (a dark lesion on a black background). Images are clipped to [0, 1].

Output (:func:`make_lesion_benchmark`), for each split ``s`` in train, val, test:

=========================  ===========================================================
``s_images``               float32 ``(N, *spatial)`` in [0, 1]
``s_labels``               int64 ``(N,)``: 1 = lesion present
``s_masks``                bool ``(N, *spatial)``: exact lesion support
``s_lesion_center``        float32 ``(N, spatial_dims)`` pixel coordinates, NaN without lesion
``s_lesion_radius``        float32 ``(N,)`` equivalent radius (pixels), 0 without lesion
``s_lesion_contrast``      float32 ``(N,)`` signed intensity change, 0 without lesion
``s_lesion_shape``         int64 ``(N,)`` index into ``lesion_shape_names``, -1 without
``s_marker_masks``         bool ``(N, *spatial)``: where the shortcut marker was drawn
=========================  ===========================================================

plus ``class_names`` (``["no lesion", "lesion"]``), ``lesion_shape_names`` and ``spatial_dims``.
The file written by :func:`write_lesion_benchmark` is read by
``medlens.data.load_dataset(path, split)`` (images, labels and masks).
"""

from __future__ import annotations

import math
import os
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

from medlens.core import layers as by_rank
from medlens.core.files import atomic_path
from medlens.errors import InputError
from medlens.core.random import generator

__all__ = ["LESION_SHAPES", "SPLITS", "make_lesion_benchmark", "mask_statistics", "write_lesion_benchmark"]

LESION_SHAPES = ("round", "elongated", "irregular")
SPLITS = ("train", "val", "test")
CLASS_NAMES = ("no lesion", "lesion")

_SLICES_PER_VOLUME = 4
_MARKER_VALUE = 1.0
_IRREGULAR_AMPLITUDE = 0.5
# nodes of the irregular shape field per lesion radius (wavelength ~ 1.2-1.8 r)
_IRREGULAR_NODE_SPACING = (0.6, 0.9)
_MAX_ELONGATION = 2.6
_MIN_ABS_CONTRAST, _MAX_ABS_CONTRAST = 0.25, 0.55
_MIN_RADIUS_FRACTION, _MAX_RADIUS_FRACTION = 0.06, 0.13
# Farthest a lesion's support reaches from its centre, in units of r: elongation stretches one
# axis by sqrt(2.6) (2D; less in 3D), the irregular field grows the radius by its amplitude.
_EXTENT = max(math.sqrt(_MAX_ELONGATION), 1.0 + _IRREGULAR_AMPLITUDE)


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _smooth_field(gen: torch.Generator, shape: tuple[int, ...], cells: int, smooth: bool = False) -> torch.Tensor:
    """Smooth random field ``shape`` in roughly [-1, 1]: coarse noise, (bi/tri)linearly upsampled.

    ``smooth=True`` interpolates 2-D fields bicubically (no kinks at the nodes; values may
    overshoot [-1, 1] slightly); 3-D fields stay trilinear.
    """
    coarse = torch.rand((1, 1) + (cells,) * len(shape), generator=gen) * 2 - 1
    mode = "bicubic" if smooth and len(shape) == 2 else by_rank.interpolation_mode(len(shape))
    return F.interpolate(coarse, size=shape, mode=mode, align_corners=True)[0, 0]


def _largest_component(mask: torch.Tensor) -> torch.Tensor:
    """The largest face-connected component of a bool mask (any rank)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask.numpy())
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return torch.from_numpy(labels == int(np.argmax(sizes)) + 1)


def _rotation(gen: torch.Generator, dims: int) -> torch.Tensor:
    """A random orthogonal matrix ``(dims, dims)`` (QR of a Gaussian matrix)."""
    q, r = torch.linalg.qr(torch.randn(dims, dims, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))  # sign fix: uniform over orthogonal matrices


def _backgrounds(split: str, n: int, spatial_dims: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` real-image backgrounds ``(n, *spatial)`` in [0, 1] (see the module docstring)."""
    from medlens.data.datasets import load_dataset

    if n == 0:
        return torch.zeros((0,) + (size,) * spatial_dims)
    xrays = load_dataset("pneumoniamnist", split).inputs[:, 0].to(torch.float32)  # (M, 28, 28)
    per_item = 1 if spatial_dims == 2 else _SLICES_PER_VOLUME
    needed = n * per_item
    # A fresh permutation per pass over the pool: images repeat only when n exceeds the pool.
    order = torch.cat([torch.randperm(len(xrays), generator=gen) for _ in range(-(-needed // len(xrays)))])
    picked = xrays[order[:needed]]
    flips = torch.rand(needed, generator=gen) < 0.5
    picked = torch.where(flips[:, None, None], picked.flip(-1), picked)
    if spatial_dims == 2:
        out = F.interpolate(picked[:, None], size=(size, size), mode="bicubic", align_corners=False)[:, 0]
    else:
        stacks = picked.reshape(n, 1, per_item, *picked.shape[1:])  # (n, 1, K, 28, 28)
        out = F.interpolate(stacks, size=(size,) * 3, mode="trilinear", align_corners=True)[:, 0]
    return out.clamp_(0.0, 1.0)


def _marker_box(size: int, spatial_dims: int) -> tuple[slice, ...]:
    """The corner region of the shortcut marker: a small square (cube) near the origin corner."""
    side = max(2, round(size / 12))
    offset = max(1, round(size / 32))
    return (slice(offset, offset + side),) * spatial_dims


def _lesion(
    gen: torch.Generator, size: int, spatial_dims: int, forbidden: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, int]:
    """One random lesion: (support mask, intensity profile * texture, centre, radius, shape).

    The centre keeps the whole lesion inside the image and outside ``forbidden`` (the marker
    region, dilated), so lesion and marker evidence never share a pixel.
    """
    spatial = (size,) * spatial_dims
    grid = torch.stack(
        torch.meshgrid(*[torch.arange(size, dtype=torch.float64)] * spatial_dims, indexing="ij"), dim=-1
    )  # (*spatial, dims)
    for _attempt in range(100):
        radius = _uniform(gen, _MIN_RADIUS_FRACTION, _MAX_RADIUS_FRACTION) * size
        shape_idx = int(torch.randint(len(LESION_SHAPES), (), generator=gen))
        margin = math.ceil(_EXTENT * radius) + 1
        centre = torch.tensor(
            [_uniform(gen, margin, size - 1 - margin) for _ in range(spatial_dims)], dtype=torch.float64
        )
        offset = grid - centre  # (*spatial, dims)
        shape = LESION_SHAPES[shape_idx]
        if shape == "elongated":
            ratio = _uniform(gen, 1.6, _MAX_ELONGATION)
            # Semi-axes r * ratio^(1/2) along one axis and r * ratio^(-1/2/(dims-1)) along the
            # others: the same area (volume) as a disk (ball) of radius r.
            axes = torch.full((spatial_dims,), radius * ratio ** (-0.5 / (spatial_dims - 1)), dtype=torch.float64)
            axes[0] = radius * math.sqrt(ratio)
            dist = ((offset @ _rotation(gen, spatial_dims)) / axes).norm(dim=-1)
        else:
            dist = offset.norm(dim=-1) / radius
            if shape == "irregular":
                # a node every 0.6-0.9 r: lobes at the lesion's own scale, whatever the image size
                spacing = _uniform(gen, *_IRREGULAR_NODE_SPACING) * radius
                cells = max(3, math.ceil((size - 1) / spacing) + 1)
                field = _smooth_field(gen, spatial, cells, smooth=True).clamp(-1.0, 1.0)
                dist = dist + _IRREGULAR_AMPLITUDE * field.to(torch.float64)
        mask = dist < 1.0
        if shape == "irregular":
            mask = _largest_component(mask)  # the field may pinch off small islands: one lesion
            dist = torch.where(mask, dist, torch.full_like(dist, 2.0))
        if mask.sum() >= 4 and not (mask & forbidden).any():
            break
    else:  # pragma: no cover - the margins make this practically unreachable
        raise RuntimeError("could not place a lesion outside the marker region")
    texture_amp = _uniform(gen, 0.0, 0.5)
    texture = _smooth_field(gen, spatial, int(torch.randint(4, 12, (), generator=gen))).to(torch.float64)
    profile = torch.where(mask, (1.0 - dist.clamp(min=0.0) ** 4) * (1.0 + texture_amp * texture), 0.0)
    # Points with d <= 0 (only possible for irregular shapes) get the full profile; the profile
    # is > 0 on the whole support because 1 - d^4 > 0 and 1 + 0.5 * texture >= 0.5.
    n_voxels = float(mask.sum())
    eq_radius = math.sqrt(n_voxels / math.pi) if spatial_dims == 2 else (3 * n_voxels / (4 * math.pi)) ** (1 / 3)
    return mask, profile.to(torch.float32), centre.to(torch.float32), eq_radius, shape_idx


def _make_split(
    split: str,
    n: int,
    *,
    spatial_dims: int,
    size: int,
    gen: torch.Generator,
    shortcut: bool,
    shortcut_rate: float,
    prevalence: float,
) -> dict[str, np.ndarray]:
    spatial = (size,) * spatial_dims
    images = _backgrounds(split, n, spatial_dims, size, gen)
    n_pos = round(n * prevalence)
    labels = torch.zeros(n, dtype=torch.int64)
    labels[torch.randperm(n, generator=gen)[:n_pos]] = 1
    masks = torch.zeros((n, *spatial), dtype=torch.bool)
    markers = torch.zeros((n, *spatial), dtype=torch.bool)
    centres = torch.full((n, spatial_dims), float("nan"))
    radii = torch.zeros(n)
    contrasts = torch.zeros(n)
    shapes = torch.full((n,), -1, dtype=torch.int64)

    box = _marker_box(size, spatial_dims)
    # The lesion keeps a gap of 2 pixels to the marker region whether or not a marker is drawn,
    # so that positives with and without marker have the same lesion distribution.
    forbidden = torch.zeros(spatial, dtype=torch.bool)
    forbidden[tuple(slice(0, s.stop + 2) for s in box)] = True

    for i in range(n):
        if labels[i] == 1:
            mask, profile, centre, radius, shape_idx = _lesion(gen, size, spatial_dims, forbidden)
            magnitude = _uniform(gen, _MIN_ABS_CONTRAST, _MAX_ABS_CONTRAST)
            sign = 1.0 if torch.rand((), generator=gen) < 0.5 else -1.0
            local = float(images[i][mask].mean())
            # Flip the sign where the background leaves no room for the change (a dark lesion
            # in a black lung field would be erased by clipping).
            if (sign > 0 and local + 0.6 * magnitude > 1.0) or (sign < 0 and local - 0.6 * magnitude < 0.0):
                sign = -sign
            contrast = sign * magnitude
            images[i] = (images[i] + contrast * profile).clamp(0.0, 1.0)
            masks[i], centres[i], radii[i], contrasts[i], shapes[i] = mask, centre, radius, contrast, shape_idx
        if shortcut:
            if split == "test":
                p_marker = 0.5
            else:
                p_marker = shortcut_rate if labels[i] == 1 else 1.0 - shortcut_rate
            if float(torch.rand((), generator=gen)) < p_marker:
                images[i][box] = _MARKER_VALUE
                markers[i][box] = True
    return {
        f"{split}_images": images.numpy().astype(np.float32),
        f"{split}_labels": labels.numpy(),
        f"{split}_masks": masks.numpy(),
        f"{split}_lesion_center": centres.numpy().astype(np.float32),
        f"{split}_lesion_radius": radii.numpy().astype(np.float32),
        f"{split}_lesion_contrast": contrasts.numpy().astype(np.float32),
        f"{split}_lesion_shape": shapes.numpy(),
        f"{split}_marker_masks": markers.numpy(),
    }


def make_lesion_benchmark(
    *,
    spatial_dims: int = 2,
    size: int = 64,
    n_train: int = 800,
    n_val: int = 100,
    n_test: int = 200,
    seed: int = 0,
    shortcut: bool = False,
    shortcut_rate: float = 0.9,
    prevalence: float = 0.5,
) -> dict[str, np.ndarray]:
    """Generate the lesion benchmark (train / val / test) as MedMNIST-format arrays.

    Parameters
    ----------
    spatial_dims : {2, 3}
        2: images ``(N, size, size)`` on upsampled chest X-rays; 3: volumes
        ``(N, size, size, size)`` interpolated between stacked chest X-rays (keep ``size``
        small, e.g. 32).
    size : int
        Side length in pixels (voxels), at least 24.
    n_train, n_val, n_test : int
        Number of images per split (>= 0).
    seed : int
        Seed of the local generators; each split has its own, so changing ``n_train`` leaves
        the test split unchanged.
    shortcut : bool
        Draw the shortcut marker: in train and val on a positive image with probability
        ``shortcut_rate`` and on a negative one with ``1 - shortcut_rate``; in test with
        probability 0.5 regardless of the label.
    shortcut_rate : float in [0, 1]
    prevalence : float in [0, 1]
        Fraction of images with a lesion (rounded to a whole count per split).

    Returns
    -------
    dict of str to numpy.ndarray
        The keys listed in the module docstring.

    Raises
    ------
    InputError
        An argument is out of range.
    """
    if spatial_dims not in (2, 3):
        raise InputError(f"spatial_dims must be 2 or 3 for the lesion benchmark, got {spatial_dims!r}")
    if not isinstance(size, int) or size < 24:
        raise InputError(f"size must be an integer >= 24, got {size!r}")
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for split, count in counts.items():
        if not isinstance(count, int) or count < 0:
            raise InputError(f"n_{split} must be a non-negative integer, got {count!r}")
    for name, value in (("shortcut_rate", shortcut_rate), ("prevalence", prevalence)):
        if not 0.0 <= float(value) <= 1.0:
            raise InputError(f"{name} must lie in [0, 1], got {value!r}")
    out: dict[str, np.ndarray] = {}
    for k, split in enumerate(SPLITS):
        gen = generator(int(seed), "lesion-split", k)
        out.update(
            _make_split(
                split,
                counts[split],
                spatial_dims=spatial_dims,
                size=size,
                gen=gen,
                shortcut=bool(shortcut),
                shortcut_rate=float(shortcut_rate),
                prevalence=float(prevalence),
            )
        )
    out["class_names"] = np.array(CLASS_NAMES)
    out["lesion_shape_names"] = np.array(LESION_SHAPES)
    out["spatial_dims"] = np.array(spatial_dims)
    return out


def mask_statistics(masks: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
    """Shape statistics of binary masks ``(N, *spatial)`` (2D or 3D), NaN for empty masks.

    Returns
    -------
    dict of str to torch.Tensor
        ``(N,)`` float64 each:

        * ``axis_ratio``: ``sqrt(lambda_max / lambda_min)`` of the covariance of the voxel
          coordinates (1 for a disk or ball, the axis ratio for an ellipse);
        * ``solidity``: voxel count over the volume of the convex hull of the voxels' corners
          (close to 1 for convex shapes, lower for lobulated ones; scipy's Qhull);
        * ``size``: voxel count.
    """
    from scipy.spatial import ConvexHull

    m = torch.as_tensor(np.asarray(masks) if not isinstance(masks, torch.Tensor) else masks).bool()
    n, dims = m.shape[0], m.ndim - 1
    corners = torch.stack(torch.meshgrid(*[torch.tensor([0.0, 1.0], dtype=torch.float64)] * dims, indexing="ij"), -1).reshape(-1, dims)
    ratio = torch.full((n,), math.nan, dtype=torch.float64)
    solidity = torch.full((n,), math.nan, dtype=torch.float64)
    size = m.flatten(1).sum(1).double()
    for i in range(n):
        pts = torch.nonzero(m[i]).double()
        if len(pts) < dims + 1:
            continue
        centred = pts - pts.mean(0)
        eig = torch.linalg.eigvalsh(centred.T @ centred / len(pts))
        ratio[i] = math.sqrt(float(eig[-1]) / max(float(eig[0]), 1e-12))
        hull = ConvexHull((pts[:, None, :] + corners[None]).reshape(-1, dims).numpy())
        solidity[i] = len(pts) / hull.volume
    return {"axis_ratio": ratio, "solidity": solidity, "size": size}


def write_lesion_benchmark(path: str | os.PathLike, **kwargs) -> pathlib.Path:
    """Generate the benchmark (keyword arguments of :func:`make_lesion_benchmark`) into an npz.

    Returns the path written (``.npz`` appended by numpy when missing).
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    arrays = make_lesion_benchmark(**kwargs)
    with atomic_path(p, suffix=".npz") as tmp:  # a killed write never leaves a half-written benchmark under the name
        np.savez_compressed(tmp, **arrays)
    return p
