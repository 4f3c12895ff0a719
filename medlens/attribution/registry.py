"""The attribution methods' registry: name -> method function and what it needs.

A method is a plain function ``fn(model, x, target, *, budget, **options)`` returning the
attribution tensor, or a pair ``(tensor, extras)``; it registers itself with :func:`register`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from medlens.core.registry import Registry


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
    requires : str
        Empty for methods that explain any model; else what the model must have (e.g.
        ``"attention gates"``): such a model-specific method is left out of
        :func:`method_names` unless asked for, so listings, leaderboards and demos that run
        every method on any model run only the general ones.
    uses_hooks : bool
        True for methods that attach module hooks to every layer (LRP), which a TorchScript
        model does not run.
    reads_prediction : bool
        True for methods whose one pass evaluates the model on the unmodified inputs and reads
        the target from those outputs only (gradient, grad x input, the CAM family): without a
        target they explain the predicted class read from that same pass
        (:class:`medlens.core.targets.PredictedTarget`), with no forward pass before it.
    """

    name: str
    fn: Callable[..., Any]
    needs_gradients: bool
    random: bool = False
    layer_resolution: bool = False
    summary: str = ""
    reference: str = ""
    requires: str = ""
    uses_hooks: bool = False
    reads_prediction: bool = False

    def options(self) -> dict[str, Any]:
        """The method's options with their defaults (engine arguments excluded)."""
        params = list(inspect.signature(self.fn).parameters.values())[3:]
        return {
            p.name: p.default
            for p in params
            if p.kind is p.KEYWORD_ONLY and p.name != "budget"
        }

    def reads_layers(self, options: dict[str, Any] | None = None) -> bool:
        """Whether the method reads a layer's activations through module hooks (the CAM family,
        and SmoothGrad around one), which a TorchScript model does not run."""
        known = self.options()
        if self.uses_hooks or self.layer_resolution or "layer" in known or "layers" in known:
            return True
        base = (options or {}).get("base")
        return isinstance(base, str) and base != self.name and "base" in known and get_method(base).reads_layers()


def _load_builtin_methods() -> None:
    import medlens.attribution  # noqa: F401  (importing the package registers every method)


METHODS: Registry[MethodInfo] = Registry("method", load=_load_builtin_methods)


def register(
    name: str,
    *,
    needs_gradients: bool,
    random: bool = False,
    layer_resolution: bool = False,
    summary: str = "",
    reference: str = "",
    requires: str = "",
    uses_hooks: bool = False,
    reads_prediction: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers an attribution method under ``name``."""
    return METHODS.decorator(
        name,
        wrap=lambda fn: MethodInfo(name, fn, needs_gradients, random, layer_resolution, summary, reference, requires,
                              uses_hooks, reads_prediction),
        same=lambda old, new: old.fn is new.fn,
    )


def get_method(name: str) -> MethodInfo:
    """The registered method ``name``; an unknown name raises ``UnknownNameError``."""
    return METHODS.get(name)

def method_call_options(name: str, options: dict[str, Any] | None = None, *, seed: int | None = None) -> dict[str, Any]:
    """The options to call method ``name`` with: ``options`` checked against the method's own
    (the one "no such option" check), plus ``seed`` for a random method that was given none
    (the one seed rule: a run's seed reaches every random method unless the user set its own).
    """
    from medlens.core.options import check_known, check_switches

    info = get_method(name)
    known = info.options()
    opts = dict(options or {})
    check_known("method", name, opts, known)
    check_switches(f"{name}'s", opts, known)
    if seed is not None and info.random and "seed" in known:
        opts.setdefault("seed", seed)
    return opts


def method_names(*, model_specific: bool = False) -> list[str]:
    """Registered method names, in registration order.

    ``model_specific=False`` (default): the methods that explain any model; ``True``: also those
    that need a particular architecture (``MethodInfo.requires``, e.g. ``attention_gates``).
    """
    return [n for n in METHODS.names() if model_specific or not METHODS.get(n).requires]
