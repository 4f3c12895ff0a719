"""Feature visualisation by activation maximisation: what a unit, a layer or a class looks for.

Section 3.1 of the reference survey; Erhan et al. 2009; Olah, Mordvintsev and Schubert,
"Feature Visualization", Distill 2017.

Example::

    from medlens import featurevis as fv

    # 16 channels of a layer in one batched run, objective i on image i
    images, values = fv.render(model, fv.channels("features.block1.act", range(16)), (16, 1, 28, 28))
    # what the model finds most typical of each class
    images, values = fv.render(model, [fv.probability(k) for k in range(2)], (2, 1, 28, 28))
    # composed objectives: a regularised channel, several diverse images
    last = "features.block3.act"
    goal = fv.channel(last, 5) + 0.5 * fv.diversity(last) - 0.05 * fv.total_variation()
    images, values = fv.render(model, goal, (4, 1, 28, 28), param="pixel",
                               transforms=[fv.jitter(2), fv.blur_every(4, 0.5)])
"""

from medlens.featurevis.objectives import (
    Objective,
    Probe,
    channel,
    channels,
    direction,
    diversity,
    l1,
    l2,
    layer,
    logit,
    neuron,
    output,
    per_image,
    probability,
    total_variation,
)
from medlens.featurevis.param import FourierImage, ImageAdam, PixelImage, channel_correlation_sqrt
from medlens.featurevis.render import Rendering, objective_values, objective_values_over, render
from medlens.featurevis.transforms import (
    Blur,
    BlurEvery,
    Jitter,
    Pad,
    RandomAffine,
    blur,
    blur_every,
    default_transforms,
    jitter,
    pad,
    random_rotate,
    random_scale,
)

__all__ = [
    "Blur",
    "BlurEvery",
    "FourierImage",
    "ImageAdam",
    "Jitter",
    "Objective",
    "Pad",
    "PixelImage",
    "Probe",
    "RandomAffine",
    "Rendering",
    "blur",
    "blur_every",
    "channel",
    "channel_correlation_sqrt",
    "channels",
    "default_transforms",
    "direction",
    "diversity",
    "objective_values",
    "objective_values_over",
    "jitter",
    "l1",
    "l2",
    "layer",
    "logit",
    "neuron",
    "output",
    "pad",
    "per_image",
    "probability",
    "random_rotate",
    "random_scale",
    "render",
    "total_variation",
]
