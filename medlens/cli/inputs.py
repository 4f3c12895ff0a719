"""Turn a file named on the command line into one model input, through the model's recipe."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from medlens.errors import FileFormatError, InputError


@dataclass
class Case:
    """One input ready for the model, with what is known about it.

    ``record`` is the file as read (:func:`medlens.data.formats.read.read`) and ``prepared`` the recipe's
    result, whose geometry maps an attribution back onto the record's grid; both are ``None``
    for a case of a labelled data set, which is already on the model's grid.
    """

    x: torch.Tensor  # (1, C, *spatial)
    label: int | None
    source: str
    note: str = ""
    record: Any = None
    prepared: Any = None
    name: str = ""
    recipe_summary: dict[str, Any] = field(default_factory=dict)

    @property
    def native(self) -> torch.Tensor | None:
        """The image or volume as read, on its own grid, when its rank matches the model input's
        (the case report draws the maps on it); ``None`` otherwise (and for data-set cases)."""
        array = getattr(self.record, "array", None)
        if array is None or array.ndim != self.x.ndim - 2 or getattr(self.record, "channels", 1) not in (1, None):
            return None
        return torch.as_tensor(array).float()

    @property
    def spacing(self) -> tuple[float, ...] | None:
        """Pixel / voxel size of :attr:`native` in mm, when the file says."""
        spacing = getattr(self.record, "spacing", None)
        return None if spacing is None or self.native is None else tuple(float(v) for v in spacing)

    @property
    def metadata(self) -> dict[str, str]:
        """Non-identifying header fields of the file (identifiers are kept apart by the readers)."""
        return {str(k): str(v) for k, v in dict(getattr(self.record, "metadata", {}) or {}).items()}


def add_recipe_flags(p: argparse.ArgumentParser) -> None:
    """``--recipe``, ``--size``, ``--normalize``, ``--window``, ``--start``, ``--leads``: how a file
    becomes the model's input."""
    from medlens.data.recipe import NORMALISATIONS

    p.add_argument("--recipe", metavar="FILE", default=None,
                   help="preprocessing recipe (JSON or YAML; default: the one stored in the model file)")
    p.add_argument("--size", default=None, metavar="N,N[,N]",
                   help="the model's input size per spatial axis (e.g. 224,224), for a model file that does not say")
    p.add_argument("--normalize", choices=NORMALISATIONS, default=None,
                   help="intensity normalisation of the input (default: the recipe's)")
    p.add_argument("--window", action="append", metavar="C,W|NAME", default=None,
                   help="CT window in HU, repeatable, one channel each (40,80 or brain, subdural, bone, lung, ...)")
    p.add_argument("--start", type=float, default=None, metavar="SECONDS",
                   help="signals: start of the window the model sees, in seconds")
    p.add_argument("--leads", default=None, metavar="A,B",
                   help="signals: comma-separated lead names the model takes, in order")


def recipe_from_args(args: argparse.Namespace, meta: dict[str, Any]) -> Any:
    """The model's recipe with the user's file and flags applied (flags win)."""
    from medlens.data.recipe import Recipe, parse_window
    from medlens.models.io import model_recipe

    override = Recipe.from_file(args.recipe) if getattr(args, "recipe", None) else None
    recipe = model_recipe(meta, override)
    windows = tuple(parse_window(w) for w in args.window) if getattr(args, "window", None) else None
    leads = tuple(v.strip() for v in args.leads.split(",") if v.strip()) if getattr(args, "leads", None) else None
    size = _size(args.size) if getattr(args, "size", None) is not None else None
    recipe = recipe.replace(windows=windows, start=getattr(args, "start", None), leads=leads, size=size,
                            normalize=getattr(args, "normalize", None))
    if windows:  # windows replace the channel setting and the intensity normalisation
        recipe = Recipe.from_dict({**recipe.to_dict(), "channels": None, "normalize": "none"})
        if meta.get("input_shape") is not None and len(windows) != int(meta["input_shape"][0]):
            raise InputError(
                f"{len(windows)} window(s) give {len(windows)} channel(s) but the model takes {int(meta['input_shape'][0])}"
            )
    return recipe


def _size(text: str) -> tuple[int, ...]:
    try:
        size = tuple(int(v) for v in text.split(","))
    except ValueError:
        size = ()
    if not size or any(v < 1 for v in size):
        raise InputError(f"--size takes positive integers separated by commas (224,224), got {text!r}")
    return size


def case_from_record(record: Any, recipe: Any, source: str) -> Case:
    """Apply ``recipe`` to a read record."""
    from medlens.data.recipe import prepare

    prepared = prepare(record, recipe)
    name = f"{record.format} {Path(record.source).name}" if getattr(record, "source", "") else source
    return Case(prepared.x, None, name, "; ".join(prepared.notes), record, prepared,
                Path(source).name, prepared.summary())


def load_case(path: str, *, index: int = 0, split: str = "test", input_shape: Sequence[int] | None = None,
              recipe: Any = None) -> Case:
    """Case ``index`` of an npz data set (or a bundled name), or any file :func:`medlens.data.formats.read.read` reads.

    A file goes through ``recipe`` (default: min-max scaling and resizing to ``input_shape``).
    """
    from medlens.data import BUNDLED, load_dataset, read
    from medlens.data.recipe import recipe_for_shape

    p = Path(path)
    if path in BUNDLED or p.name.lower().endswith(".npz"):
        data = load_dataset(path, split)
        if not 0 <= index < len(data):
            raise InputError(f"index {index} is out of range: {data.name} has {len(data)} cases (0..{len(data) - 1})")
        return Case(data.inputs[index : index + 1], int(data.labels[index]), f"{data.name}[{index}]", name=f"{data.name}[{index}]")
    if not p.exists() and not p.with_suffix(".hea").is_file():
        raise FileFormatError(f"input {path!r} does not exist")
    record = read(p)
    if input_shape is not None and record.format == "NumPy" and tuple(record.array.shape) == tuple(input_shape):
        return Case(record.array[None], None, f"array {p.name}", name=p.name)  # already a model input
    return case_from_record(record, recipe if recipe is not None else recipe_for_shape(input_shape), str(p))
