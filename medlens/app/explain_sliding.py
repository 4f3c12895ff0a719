"""The explain use case through sliding-window inference: a patch model (a segmentation network
trained on ``roi``-sized crops) explained on a whole volume's native grid.

``medlens explain --inferer sliding-window --roi 96,96,96 --overlap 0.25`` (and
``ExplainRequest(inferer={"roi_size": (96, 96, 96), "overlap": 0.25})``, or a MONAI
``SlidingWindowInferer``, in the Python API) keeps the volume at the size the recipe's spacing
gives it (no resizing to the model's input size) and runs
:func:`medlens.attribution.sliding_window.explain_sliding_window`: the target is the sum of
``--target-class``'s blended output inside ``--target-mask`` (everywhere without a mask; every
class with ``--regression``).
"""

from __future__ import annotations

from typing import Any, Mapping

from medlens.core.progress import SILENT, Progress
from medlens.errors import InputError

INFERERS = ("sliding-window",)


def inferer_settings(name: str | None, roi: str | tuple[int, ...] | None, overlap: float = 0.25,
                     mode: str = "constant", sw_batch_size: int = 1) -> dict[str, Any] | None:
    """The inferer the command-line flags describe, as a mapping (``None`` without ``--inferer``).

    Raises
    ------
    InputError
        An unknown inferer, a missing or malformed ``--roi``, or roi flags without ``--inferer``.
    """
    if name is None:
        if roi is not None:
            raise InputError("--roi needs --inferer sliding-window")
        return None
    if name not in INFERERS:
        raise InputError(f"unknown inferer {name!r}; choose {', '.join(INFERERS)}")
    if roi is None:
        raise InputError("--inferer sliding-window needs --roi, the patch model's window (e.g. 96,96,96)")
    try:
        size = tuple(int(v) for v in (roi.split(",") if isinstance(roi, str) else roi))
    except ValueError:
        size = ()
    if not size or any(v < 1 for v in size):
        raise InputError(f"--roi takes positive integers separated by commas (96,96,96), got {roi!r}")
    return {"roi_size": size, "overlap": overlap, "mode": mode, "sw_batch_size": sw_batch_size}


def check_sliding_request(method: str, inferer: Any, target: int | None, regression: bool) -> None:
    """Fail, in one line, on a sliding-window request that cannot run (before any work)."""
    from medlens.attribution.sliding_window import METHODS, Windows

    if method not in METHODS:
        raise InputError(f"method {method!r} does not run through sliding windows; choose one of {', '.join(METHODS)}")
    if target is None and not regression:
        raise InputError("--inferer sliding-window explains a segmentation output: give --target-class K "
                         "(optionally --target-mask FILE), or --regression for the sum of every class")
    if isinstance(inferer, Mapping):
        Windows.of(dict(inferer), len(inferer.get("roi_size") or inferer.get("roi") or ()) or 3)


def sliding_attribution(model: Any, case: Any, method: str, inferer: Any, target: int | None, mask: Any,
                        options: Mapping[str, Any], description: str,
                        progress: Progress | None = None) -> tuple[Any, Any, str]:
    """Explain ``case`` through the inferer: ``(Attribution, outputs, target_note)``, where
    ``outputs`` holds the target's value (one score) for the summary. ``progress`` hears the
    planned window evaluations of the method before it runs, and its progress (default: silent)."""
    import time

    import torch

    from medlens.attribution.sliding_window import explain_sliding_window
    from medlens.types import Attribution

    start = time.perf_counter()
    result = explain_sliding_window(model, case.x, inferer, method, target_class=target, mask=mask, details=True,
                                    progress=progress or SILENT, **dict(options))
    seconds = time.perf_counter() - start
    extras = dict(result.extras)
    chosen = extras.pop("chosen", {})  # defaults chosen from the counted cost, recorded like explain's
    geometry = ", ".join(f"{k}={v}" for k, v in (inferer.items() if isinstance(inferer, Mapping) else []))
    attribution = Attribution(values=result.values.detach(), method=method,
                              target=torch.tensor([target if target is not None else -1]),
                              params={**dict(options), **chosen, "inferer": "sliding-window",
                                      **({"inferer_settings": geometry} if geometry else {})},
                              seconds=seconds, extras=extras)
    return attribution, torch.tensor([result.score]), f"{description} through sliding windows ({geometry or 'inferer'})"
