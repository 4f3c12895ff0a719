"""How a use case turns a model file and an input into cases: the recipe options of a request.

Every command that reads a user's input takes the same :class:`RecipeOptions` (``--recipe``,
``--size``, ``--normalize``, ``--window``, ``--start``, ``--leads``); :func:`resolve_recipe`
applies them to the model's own recipe, and :func:`model_cases` opens the input through the case
workflow (:func:`medlens.data.cases.open_cases`) with the model's shape and class names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from medlens.data.cases import Cases, is_dataset, open_cases
from medlens.data.recipe import NORMALISATIONS
from medlens.errors import InputError


@dataclass(frozen=True)
class RecipeOptions:
    """How a file becomes the model's input, beyond the recipe stored in the model file.

    ``recipe`` a JSON/YAML recipe file; ``size`` the input size per spatial axis (``"224,224"``
    or a tuple); ``normalize`` an intensity normalisation; ``windows`` CT windows (``"40,80"`` or
    a name); ``start`` (seconds) and ``leads`` (``"A,B"`` or a tuple) for signals; ``slice`` the
    slice of a volume a 2-D model sees (without it a volume is refused); ``fs`` the sampling rate
    (Hz) of the model's samples, for a model file that does not record it.
    """

    recipe: str | None = None
    size: str | tuple[int, ...] | None = None
    normalize: str | None = None
    windows: tuple[str, ...] | None = None
    start: float | None = None
    leads: str | tuple[str, ...] | None = None
    slice: int | None = None
    fs: float | None = None


def resolve_recipe(options: RecipeOptions | None, meta: dict[str, Any]) -> Any:
    """The model's recipe with the user's file and options applied (options win)."""
    from medlens.data.recipe import Recipe, parse_window
    from medlens.data.records import parse_leads
    from medlens.models.io import model_recipe

    options = options or RecipeOptions()
    override = Recipe.from_file(options.recipe) if options.recipe else None
    recipe = model_recipe(meta, override)
    windows = tuple(parse_window(w) for w in options.windows) if options.windows else None
    leads = parse_leads(options.leads)
    size = parse_size(options.size) if options.size is not None else None
    if options.fs is not None and not options.fs > 0:
        raise InputError(f"--fs must be a positive rate in Hz, got {options.fs}")
    recipe = recipe.replace(windows=windows, start=options.start, leads=leads, size=size, normalize=options.normalize,
                            slice=options.slice, fs=options.fs)
    if windows:  # windows replace the channel setting and the intensity normalisation
        recipe = Recipe.from_dict({**recipe.to_dict(), "channels": None, "normalize": "none"})
        if meta.get("input_shape") is not None and len(windows) != int(meta["input_shape"][0]):
            raise InputError(
                f"{len(windows)} window(s) give {len(windows)} channel(s) but the model takes {int(meta['input_shape'][0])}"
            )
    return recipe


def parse_size(size: str | Sequence[int]) -> tuple[int, ...]:
    """``"224,224"`` (or a sequence) as a tuple of positive integers."""
    try:
        values = tuple(int(v) for v in (size.split(",") if isinstance(size, str) else size))
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise InputError(f"--size takes positive integers separated by commas (224,224), got {size!r}")
    return values


__all__ = ["NORMALISATIONS", "RecipeOptions", "load_model_file", "model_cases", "parse_size", "refuse_index", "resolve_recipe"]


def model_cases(data: str, meta: dict[str, Any], *, split: str = "test", recipe: RecipeOptions | None = None,
                labels: str | None = None, what: str = "input", native_grid: bool = False,
                **reading: Any) -> Cases:
    """The cases of ``data`` for a model with metadata ``meta``: a data set checked against the
    model's input shape, or scans through the model's recipe with ``recipe`` applied. ``reading``
    goes to :func:`~medlens.data.cases.open_cases` (``show_identifiers``, ``memory_mb``,
    ``allow_outside``).

    ``native_grid``: scans keep their own size (the recipe's resampling to a spacing still
    applies, its resizing to the model's input size does not): a patch model run through
    sliding windows sees the whole volume."""
    import dataclasses

    shape = meta.get("input_shape")
    resolved = None if is_dataset(data) else resolve_recipe(recipe, meta)
    if native_grid and resolved is not None:
        resolved = dataclasses.replace(resolved, size=None)
    return open_cases(data, split=split, input_shape=None if shape is None else tuple(shape), labels=labels,
                      class_names=tuple(meta.get("class_names") or ()), what=what, recipe=resolved, **reading)


def refuse_index(index: int, data: str) -> None:
    """``--index`` picks a case of a data set (or a note of a notes file, read before this): refused
    for any other input instead of explaining its first case under another index."""
    if index and not is_dataset(data):
        raise InputError(f"--index picks a case of an npz data set or a bundled name, and {data} is neither: a record's "
                         "window is chosen with --start SECONDS, a folder's files are each explained")


def load_model_file(path: str, multi_label: bool = False) -> tuple[Any, dict[str, Any]]:
    """A medlens or TorchScript model file: ``(model, meta)``.

    A multi-label model (``multi_label``, ``--multi-label``, or the file's ``meta["multilabel"]``)
    comes wrapped in :class:`~medlens.core.targets.MultiLabel`: each finding is then scored and
    shown by its own sigmoid (:func:`~medlens.core.targets.model_probabilities`), not a softmax."""
    from medlens.core.targets import MultiLabel
    from medlens.models import load_model

    model, meta = load_model(path)
    flag = meta.get("multilabel", False)
    if not isinstance(flag, bool):
        raise InputError(f"the model file {path} records multilabel={flag!r}; it must be true or false")
    if multi_label or flag:
        model, meta = MultiLabel(model).eval(), {**meta, "multilabel": True}
    return model, meta


def target_class(target: int | str | None, meta: dict[str, Any]) -> int | None:
    """``--target-class`` as a class index: an index as it is, or a class (a finding) by its name in
    the model file's ``class_names`` (case-insensitive: ``--target-class Effusion``); ``None`` stays
    ``None`` (the predicted class). An unknown name is an :class:`InputError` listing the names."""
    if target is None or isinstance(target, int):
        return target
    text = str(target).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    names = [str(n) for n in meta.get("class_names") or ()]
    lookup = {n.lower(): k for k, n in enumerate(names)}
    if text.lower() not in lookup:
        known = ", ".join(repr(n) for n in names[:20]) or "none: it names no classes, give an index"
        raise InputError(f"--target-class {text!r} is neither a class index nor one of the model's classes ({known})")
    return lookup[text.lower()]
