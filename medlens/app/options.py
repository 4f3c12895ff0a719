"""Method and metric options of a request, in the command line's grammar.

A request carries its options flat, as ``--option`` spells them: ``{"n_steps": 16}`` goes to
every method that has the option, ``{"rise.n_masks": 500}`` to one method. :func:`scope_options`
splits them per method; :func:`options_per_method` also hands each shared option to the methods
that take it; :func:`options_per_metric` reads ``METRIC.NAME`` keys.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from medlens.errors import MedlensError


def scope_options(options: Mapping[str, Any] | None, methods: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{"": shared options, method: its own}`` from flat options; a scoped option must name a
    method of the run (``methods``; ``None``: any)."""
    scoped: dict[str, dict[str, Any]] = {"": {}}
    for key, value in dict(options or {}).items():
        if "." in key:
            method, name = (part.strip() for part in key.split(".", 1))
            if methods is not None and method not in methods:
                raise MedlensError(f"--option {key + '=' + _text(value)!r} names method {method!r}, "
                                   "which this run does not use")
            scoped.setdefault(method, {})[name] = value
        else:
            scoped[""][key.strip()] = value
    return scoped


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def options_per_method(options: Mapping[str, Any] | None, methods: object) -> dict[str, dict]:
    """Options per method of ``methods`` (a list, or ``"all"``): shared ones go to every method
    that has the option; one no method has is refused."""
    from medlens.attribution.explain import methods as registered_methods
    from medlens.attribution.registry import get_method

    names = registered_methods() if methods == "all" else list(methods)  # type: ignore[arg-type]
    scoped = scope_options(options, names)
    shared = scoped.pop("")
    for option in shared:
        takers = [m for m in names if option in get_method(m).options()]
        if not takers:
            raise MedlensError(f"none of the methods {', '.join(names)} has an option {option!r}")
        for m in takers:
            scoped.setdefault(m, {}).setdefault(option, shared[option])
    return scoped


def options_per_metric(options: Mapping[str, Any] | None) -> dict[str, dict]:
    """``{"METRIC.NAME": value}`` as ``{metric: {name: value}}``."""
    scoped = scope_options(options)
    if scoped.pop(""):
        raise MedlensError("--metric-option must name its metric: METRIC.NAME=VALUE (deletion_auc.steps=10)")
    return scoped
