"""Model files: architecture config and weights in one file, loaded without unpickling code.

A medlens model file is a ``torch.save`` of plain data (strings, numbers, lists, tensors)::

    {"format": "medlens-model", "version": 1, "arch": "cnn", "config": {...},
     "state_dict": {...}, "meta": {..., "recipe": {...}}}

``meta["recipe"]`` is the preprocessing recipe (:class:`medlens.data.recipe.Recipe`, as
plain data from ``Recipe.to_dict``) that turned files into the model's inputs in training; every
command that runs the model on a file applies it (:func:`model_recipe`).

and is read with ``torch.load(..., weights_only=True)``, which refuses arbitrary objects.
Users' own models load from TorchScript files (``torch.jit.save``).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from medlens.core.files import atomic_path
from medlens.core.registry import Registry
from medlens.data.recipe import Recipe, recipe_for_shape
from medlens.errors import FileFormatError, InputError

FORMAT = "medlens-model"
VERSION = 1

#: Architectures defined in packages above this one (the self-explaining models build on the
#: CNN and on the caption vocabulary). They are named here as entry points, ``"module:Class"``,
#: and imported when a file of theirs is loaded, so that ``load_model`` reads every medlens
#: model file while this package imports nothing above it.
ENTRY_POINTS = {
    "interpnet": "medlens.selfexplain.interpnet:InterpNet",
    "concept-autoencoder": "medlens.selfexplain.concepts:ConceptAutoencoder",
    "scinet": "medlens.systems.scinet:SciNet",
    "groupinn": "medlens.systems.groupinn:GroupINN",
}


def _load_architectures() -> None:
    import medlens.models  # noqa: F401 - registers the bundled architectures

    for name, where in ENTRY_POINTS.items():
        if name not in ARCHITECTURES:
            ARCHITECTURES.add(name, _entry_point(where))


def _entry_point(where: str) -> Callable[..., nn.Module]:
    def build(**config: Any) -> nn.Module:
        import importlib

        module, attr = where.split(":")
        return getattr(importlib.import_module(module), attr)(**config)

    return build


ARCHITECTURES: Registry[Callable[..., nn.Module]] = Registry("architecture", load=_load_architectures)


def register_architecture(name: str) -> Callable[[type], type]:
    """Class decorator: make an architecture loadable from its saved config."""
    return ARCHITECTURES.decorator(name)


def architectures() -> list[str]:
    return sorted(ARCHITECTURES.names())


def build_model(arch: str, config: dict[str, Any]) -> nn.Module:
    """Instantiate a registered architecture from its config."""
    return ARCHITECTURES.get(arch)(**config)


def save_model(model: nn.Module, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (which has ``arch`` and ``config`` attributes) with metadata.

    ``meta`` holds plain data: class names, data set, metrics, and the preprocessing recipe
    (``meta["recipe"]``: a :class:`~medlens.data.recipe.Recipe` or its ``to_dict()``; it is
    validated and stored as plain data).
    """
    arch = getattr(model, "arch", None)
    config = getattr(model, "config", None)
    if arch is None or config is None:
        raise TypeError("save_model needs a medlens architecture (with .arch and .config)")
    meta = dict(meta or {})
    if "recipe" in meta and meta["recipe"] is not None:
        recipe = meta["recipe"]
        meta["recipe"] = (recipe if isinstance(recipe, Recipe) else Recipe.from_dict(recipe)).to_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": arch,
        "config": config,
        "dtype": str(next(iter(model.parameters())).dtype).replace("torch.", ""),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in zf.namelist())
    except zipfile.BadZipFile:
        return False


_PICKLE_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)|[Uu]nsupported global:\s*(?:GLOBAL\s+)?([\w.]+)")


def _reason(err: BaseException) -> str:
    """The first line of a library's error, leaving out PyTorch's advice to unpickle code."""
    lines = [" ".join(line.split()) for line in str(err).splitlines() if line.strip()]
    lines = [line for line in lines if "weights_only" not in line.lower() and "arbitrary code" not in line.lower()
             and "trusted source" not in line.lower() and "documentation of torch.load" not in line.lower()]
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _load_error(path: Path, err: BaseException) -> FileFormatError:
    """One line for a file ``torch.load(weights_only=True)`` refused, naming the file and the problem."""
    name = repr(str(path))
    if isinstance(err, pickle.UnpicklingError):
        found = _PICKLE_GLOBAL.search(str(err))
        if found:
            what = found.group(1) or found.group(2)
            return FileFormatError(
                f"{name} is not a medlens or TorchScript model file: it holds a pickled Python object ({what}) "
                f"where a model file holds only weights and plain data; it was not loaded and none of its code was run"
            )
    try:
        from medlens.data.formats.read import sniff

        foreign = sniff(path) if not zipfile.is_zipfile(path) else ""
    except Exception:  # noqa: BLE001 - only for the message
        foreign = ""
    if foreign and foreign not in ("DICOM", "DICOM-series"):
        return FileFormatError(
            f"{name} is a {foreign} file, not a medlens or TorchScript model file"
        )
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        head = b""
    if not zipfile.is_zipfile(path) and head[:2] != b"\x80\x02":
        return FileFormatError(
            f"{name} is not a medlens or TorchScript model file, or it is truncated: no zip archive "
            f"directory found (both are zip archives)"
        )
    return FileFormatError(f"{name} is not a medlens or TorchScript model file that can be read: it is corrupt or truncated ({_reason(err)})")


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Load a medlens model file or a TorchScript file.

    Returns
    -------
    (model, meta)
        The model in eval mode, and its metadata (``{}`` for TorchScript files).

    Raises
    ------
    FileFormatError
        Missing file, or neither a medlens model nor a TorchScript archive; a truncated or
        corrupt file; a file holding pickled objects (their code is never run). One line naming
        the file and the problem. Nothing is unpickled beyond plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"model file {str(path)!r} does not exist")
    if _is_torchscript(path):
        try:
            model = torch.jit.load(str(path), map_location=map_location)
        except Exception as err:  # noqa: BLE001 - any failure means a corrupt archive
            raise FileFormatError(f"{str(path)!r} is a corrupt TorchScript file ({_reason(err)})") from None
        return model.eval(), {}
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, RuntimeError, OSError, UnicodeDecodeError, ...
        raise _load_error(path, err) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FileFormatError(f"{str(path)!r} is not a medlens or TorchScript model file")
    version = payload.get("version", 0)
    if not isinstance(version, int) or not isinstance(payload.get("arch"), str) or not isinstance(payload.get("config"), dict) \
            or not isinstance(payload.get("state_dict"), dict):
        raise FileFormatError(f"{str(path)!r} is a corrupt medlens model file (its version, arch, config or weights are missing or malformed)")
    if version > VERSION:
        raise FileFormatError(f"{str(path)!r} was written by a newer medlens (format version {payload['version']})")
    try:
        model = build_model(payload["arch"], payload["config"])
    except TypeError as err:
        raise FileFormatError(f"{str(path)!r}: its config does not fit architecture {payload['arch']!r} ({_reason(err)})") from None
    dtype = getattr(torch, str(payload.get("dtype", "float32")), None)
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        model = model.to(dtype)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as err:
        raise FileFormatError(f"{str(path)!r}: weights do not match its architecture ({_reason(err)})") from None
    return model.to(map_location).eval(), dict(payload.get("meta", {}))



def model_recipe(meta: dict[str, Any], override: Recipe | None = None) -> Recipe:
    """The preprocessing recipe for a loaded model: ``override``, else the file's, else a default.

    A user's recipe (``--recipe`` file or flags) wins; a medlens model file carries its training
    recipe in ``meta["recipe"]``; an older file that records only ``meta["input_shape"]`` gets
    min-max scaling and resizing to that shape (:func:`~medlens.data.recipe.recipe_for_shape`);
    a TorchScript file without a recipe gets the input as it is.

    Raises
    ------
    InputError
        The stored recipe is malformed, or its channel count differs from the model's input shape.
    """
    if override is not None:
        recipe = override
    elif meta.get("recipe") is not None:
        recipe = Recipe.from_dict(meta["recipe"])
    else:
        recipe = recipe_for_shape(meta.get("input_shape"))
    shape = meta.get("input_shape")
    if shape is not None:
        want = int(shape[0])
        if recipe.out_channels is not None and recipe.out_channels != want:
            raise InputError(
                f"the recipe produces {recipe.out_channels} input channels but the model takes {want}"
            )
        if recipe.size is not None and tuple(recipe.size) != tuple(int(s) for s in shape[1:]):
            raise InputError(f"the recipe's size {tuple(recipe.size)} differs from the model's input {tuple(shape[1:])}")
        if recipe.size is None and recipe.spacing is None:
            recipe = recipe.replace(size=tuple(int(s) for s in shape[1:]))
        if recipe.out_channels is None:
            recipe = recipe.replace(channels=want)
    return recipe
