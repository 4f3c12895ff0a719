"""Method registry: name -> method function and what it needs.

A method is a plain function ``fn(model, x, target, *, budget, **options)`` returning the
attribution tensor, or a pair ``(tensor, extras)``; it registers itself with :func:`register`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from medlens.errors import UnknownNameError


@dataclass(frozen=True)
class MethodInfo:
    """Metadata of a registered attribution method.

    Attributes
    ----------
    name : str
    fn : callable
    needs_gradients : bool
        False for black-box methods (RISE, occlusion) that only evaluate the model.
    random : bool
        True if the method takes a ``seed``.
    layer_resolution : bool
        True if the raw map lives at a layer's resolution (CAM family) and is upsampled.
    summary : str
        One line for listings and reports.
    reference : str
        The paper the method comes from.
    """

    name: str
    fn: Callable[..., Any]
    needs_gradients: bool
    random: bool = False
    layer_resolution: bool = False
    summary: str = ""
    reference: str = ""

    def options(self) -> dict[str, Any]:
        """The method's options with their defaults (engine arguments excluded)."""
        params = list(inspect.signature(self.fn).parameters.values())[3:]
        return {
            p.name: p.default
            for p in params
            if p.kind is p.KEYWORD_ONLY and p.name != "budget"
        }


_METHODS: dict[str, MethodInfo] = {}


def register(
    name: str,
    *,
    needs_gradients: bool,
    random: bool = False,
    layer_resolution: bool = False,
    summary: str = "",
    reference: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers an attribution method under ``name``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _METHODS and _METHODS[name].fn is not fn:
            raise ValueError(f"method {name!r} is registered twice")
        _METHODS[name] = MethodInfo(
            name, fn, needs_gradients, random, layer_resolution, summary, reference
        )
        return fn

    return decorate


def get_method(name: str) -> MethodInfo:
    _load_methods()
    if name not in _METHODS:
        raise UnknownNameError(
            f"unknown method {name!r}; available methods: {', '.join(sorted(_METHODS))}"
        )
    return _METHODS[name]


def method_names() -> list[str]:
    """Registered method names, in registration order."""
    _load_methods()
    return list(_METHODS)


def _load_methods() -> None:
    # Importing the package registers every method module it lists.
    import medlens.attribution  # noqa: F401
