"""Plain gradient methods.

``gradient``: the saliency map of Simonyan, Vedaldi and Zisserman, "Deep Inside
Convolutional Networks: Visualising Image Classification Models and Saliency Maps" (2013):
the derivative of the class score with respect to the input.

``grad_x_input``: the gradient times the input (Shrikumar, Greenside, Shcherbina and Kundaje,
"Not Just a Black Box: Learning Important Features Through Propagating Activation
Differences", 2016), a first-order estimate of each element's contribution to the score.
"""

from __future__ import annotations

import torch
from torch import nn

from medlens.core import engine
from medlens.core.engine import Budget
from medlens.attribution.registry import register
from medlens.core.targets import Target


@register(
    "gradient",
    needs_gradients=True,
    reads_prediction=True,
    summary="derivative of the class score with respect to each input element",
    reference="Simonyan, Vedaldi and Zisserman 2013",
)
def saliency(
    model: nn.Module, x: torch.Tensor, target: Target, *, abs: bool = False, budget: Budget = Budget()
) -> torch.Tensor:
    """Gradient of the target score with respect to the input.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    abs : bool
        Return the magnitude, as in the paper's saliency maps.

    Returns
    -------
    torch.Tensor
        ``(B, C, *spatial)``.
    """
    _, grads = engine.gradient(model, x, target, budget)
    return grads.abs() if abs else grads


@register(
    "grad_x_input",
    needs_gradients=True,
    reads_prediction=True,
    summary="gradient times input: first-order contribution of each input element",
    reference="Shrikumar et al. 2016",
)
def grad_x_input(
    model: nn.Module, x: torch.Tensor, target: Target, *, budget: Budget = Budget()
) -> torch.Tensor:
    """Element-wise product of the input and the gradient of the target score.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.

    Returns
    -------
    torch.Tensor
        ``(B, C, *spatial)``; for a linear model ``w . x`` it is ``w * x`` exactly.
    """
    _, grads = engine.gradient(model, x, target, budget)
    return grads * x
