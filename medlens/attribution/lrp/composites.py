"""Composites: which LRP rule each layer of a model gets.

The named composites follow Zennit's definitions (Anders et al., "Software for Dataset-wide XAI:
From Local Explanations to Global Insights with Zennit, CoRelAy, and ViRelAy", 2021) and the
recommendations of Montavon et al. (2019) and Kohlbrenner et al. (2020):

================================  ===================  ===================  ==============
composite                         first layer          convolutions         dense layers
================================  ===================  ===================  ==============
``epsilon``                       epsilon              epsilon              epsilon (LRP-0)
``epsilon-plus``                  (as the others)      z+                   epsilon
``epsilon-alpha2-beta1``          (as the others)      alpha=2, beta=1      epsilon
``epsilon-plus-flat``             flat                 z+                   epsilon
``epsilon-alpha2-beta1-flat``     flat                 alpha=2, beta=1      epsilon
``epsilon-gamma-box``             z^B (conv)           gamma                epsilon
================================  ===================  ===================  ==============

Every composite passes relevance through activations, unfolded batch norms and group and
instance norms, and gives average pooling and residual sums (:class:`~medlens.attribution.lrp.canonizers.Sum`)
the proportional ``norm`` rule. In transformers, the attention probabilities (read where
:mod:`medlens.attribution.transformer.attention_maps` reads them: medlens's ``vit``, MONAI's
``SABlock`` in ViT and UNETR) get the ``constant`` rule, so relevance reaches the tokens through
the values only; ``nn.MultiheadAttention`` (``nn.TransformerEncoder``) and
``F.scaled_dot_product_attention``, which compute them inside, are made to use them as constants
too (:func:`~medlens.attribution.lrp.canonizers.constant_attention`, with the epsilon rule for
the multi-head layer's projections), and the product of the probabilities and the values gets the
epsilon rule (each value its contribution's share); ``nn.LayerNorm`` gets the LN rule (its
``1/sigma`` held constant, relevance through the centring by the epsilon rule): the conservative
propagation of Ali et al. (ICML 2022) that AttnLRP (Achtibat et al., ICML 2024) builds on; the rest of the rule set
(linear layers) is the composite's. The first layer is the first linear or convolution layer in the
module order (``model.named_modules()``), as in Zennit. :class:`NameMap` assigns rules by
layer name or type. Transposed convolutions get the convolutions' rule.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping

from torch import nn

from medlens.attribution.lrp.canonizers import Sum
from medlens.attribution.lrp.rules import (
    RULES, AlphaBeta, Constant, Epsilon, Flat, Gamma, LayerNorm, Norm, Pass, Rule, ZBox, ZPlus,
)
from medlens.attribution.transformer.attention_maps import probability_modules
from medlens.core.options import check_fraction
from medlens.errors import InputError, UnknownNameError

#: Transposed convolutions (a UNet's up-sampling path) are convolutions here, as in Zennit: kept
#: to their gradient, a bias-free one would scale the relevance by its weights, not conserve it.
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
DENSE = (nn.Linear,)
AVG_POOLS = (
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: Normalisations over a feature map's channels (CNNs): relevance passes them unchanged.
LAYER_NORMS = (nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
ATTENTION = Constant()
ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Softplus, nn.Tanh, nn.Sigmoid, nn.Hardswish, nn.Hardtanh, nn.Hardsigmoid, nn.LogSigmoid, nn.Softsign,
    nn.Tanhshrink, nn.Hardshrink, nn.Softshrink, nn.Threshold,
)
#: Activation modules of other libraries, by class name (no import of the library): MONAI's swish
#: (EfficientNet's default ``memswish`` is a custom autograd function, whose backward would scale
#: the relevance by the swish's derivative).
NAMED_ACTIVATIONS = ("Swish", "MemoryEfficientSwish")


class Composite:
    """Rules by layer type, with an optional rule for the first linear/convolution layer.

    Parameters
    ----------
    layer_map : list of (types, Rule)
        The first entry whose types match a layer gives its rule.
    first_map : list of (types, Rule), optional
        For the first layer (in module order) that matches one of its entries.
    stabilizer : float
        Of the ``norm`` rule for pooling and sums.
    """

    def __init__(self, layer_map: list[tuple[tuple[type, ...], Rule]], first_map=None, stabilizer: float = 1e-6,
                 name: str = "custom") -> None:
        self.layer_map = base_map(stabilizer) + list(layer_map)
        self.stabilizer = stabilizer
        self.first_map = list(first_map or [])
        self.name = name

    def rule_for(self, name: str, module: nn.Module, first: bool) -> Rule | None:
        if first:
            for types, rule in self.first_map:
                if isinstance(module, types):
                    return rule
        rule = next((rule for types, rule in self.layer_map if isinstance(module, types)), None)
        if rule is None and type(module).__name__ in NAMED_ACTIVATIONS:
            return next(rule for types, rule in self.layer_map if types is ACTIVATIONS)
        return rule

    def assign(self, model: nn.Module) -> Iterator[tuple[str, nn.Module, Rule]]:
        """``(name, layer, rule)`` for each layer that gets a rule."""
        first_seen = False
        attention = attention_probabilities(model)
        for name, module in model.named_modules():
            is_first = not first_seen and any(isinstance(module, t) for t, _ in self.first_map)
            first_seen = first_seen or is_first
            rule = ATTENTION if id(module) in attention else self.rule_for(name, module, is_first)
            if rule is not None:
                yield name, module, rule

    def __repr__(self) -> str:
        return f"Composite({self.name!r})"


def refuse_recurrent_layers(model: nn.Module) -> None:
    """Raise :class:`InputError` naming the first recurrent layer (``nn.LSTM``, ``nn.GRU``,
    ``nn.RNN``) of ``model``: no rule reaches inside it, and relevance passed as its gradient is
    not conserved (a small LSTM classifier's map summed to -0.18 and 0.08 times the logit)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.RNNBase):
            raise InputError(
                f"LRP has no rule for the recurrent layer {name or 'model'!r} ({type(module).__name__}): relevance "
                "would pass through it as its gradient, not conserved; explain this model with gradient, "
                "integrated_gradients or occlusion"
            )


def attention_probabilities(model: nn.Module) -> set[int]:
    """``id``s of the modules that output attention probabilities (they get :data:`ATTENTION`):
    those :mod:`~medlens.attribution.transformer.attention_maps` reads, and the ``nn.Softmax``
    of any other attention module (a module whose class name says ``Attention``: MONAI's Swin
    ``WindowAttention``, whose softmax's gradient made a SwinUNETR's map sum to 1e3 times the
    score). A softmax elsewhere (a model's output) keeps its gradient."""
    found = {id(m) for m in probability_modules(model)}
    for module in model.modules():
        if "Attention" in type(module).__name__:
            found |= {id(m) for m in module.children() if isinstance(m, nn.Softmax)}
    return found


def base_map(stabilizer: float = 1e-6) -> list[tuple[tuple[type, ...], Rule]]:
    """What every composite shares: activations and batch, group and instance norms pass,
    ``nn.LayerNorm`` gets the LN rule, pooling and sums ``norm``."""
    return [(ACTIVATIONS, Pass()), (BATCH_NORMS + LAYER_NORMS, Pass()), ((nn.LayerNorm,), LayerNorm(stabilizer)),
            ((Sum,) + AVG_POOLS, Norm(stabilizer))]


class NameMap(Composite):
    """Rules by layer name (dotted, as in ``model.named_modules()``) or by layer type.

    Parameters
    ----------
    mapping : dict
        ``{"features.0": ZBox(0, 1), nn.Linear: Epsilon(), nn.Conv2d: "zplus"}``: a rule or a rule
        name (``epsilon``, ``zplus``, ``alpha_beta``, ``gamma``, ``flat``, ``wsquare``, ``norm``,
        ``pass``); names take precedence over types.
    fallback : str or Composite, optional
        Rules of the layers the mapping does not name; ``None``: those keep their gradient,
        except activations, batch norms, pooling and sums, which get the shared base rules.
    """

    def __init__(self, mapping: Mapping[Any, Rule | str], fallback: "str | Composite | None" = None,
                 stabilizer: float = 1e-6) -> None:
        super().__init__([], stabilizer=stabilizer, name="name-map")
        self.names = {k: as_rule(v) for k, v in mapping.items() if isinstance(k, str)}
        self.types = [(k, as_rule(v)) for k, v in mapping.items() if isinstance(k, type)]
        bad = [k for k in mapping if not isinstance(k, (str, type))]
        if bad:
            raise InputError(f"a name map's keys are layer names or types, got {bad[0]!r}")
        self.fallback = composite_named(fallback) if isinstance(fallback, str) else fallback

    def assign(self, model):
        modules = dict(model.named_modules())
        missing = [n for n in self.names if n not in modules]
        if missing:
            raise UnknownNameError(f"the model has no layer named {missing[0]!r}")
        rest = dict((n, r) for n, _, r in self.fallback.assign(model)) if self.fallback is not None else {}
        attention = attention_probabilities(model)
        for name, module in modules.items():
            rule = self.names.get(name) or next((r for t, r in self.types if isinstance(module, t)), None)
            rule = rule or rest.get(name) or (ATTENTION if id(module) in attention else None)
            rule = rule or self.rule_for(name, module, False)
            if isinstance(rule, LayerNorm) and not isinstance(module, nn.LayerNorm):
                raise InputError(f"the layer_norm rule is for nn.LayerNorm layers; {name!r} is a {type(module).__name__}")
            if rule is not None:
                yield name, module, rule


def as_rule(rule: Rule | str) -> Rule:
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str) and rule in RULES:
        return RULES[rule]() if rule != "zbox" else ZBox()
    raise UnknownNameError(f"unknown LRP rule {rule!r}; rules: {', '.join(RULES)}")


#: The ``epsilon`` composite's default. Epsilon on every layer divides by sums of mixed-sign
#: contributions that can nearly cancel, and relevance grows layer by layer: in an untrained
#: MONAI UNETR at 96^3 with 1e-6, by 15-150x at each linear layer of the ViT and each
#: convolution feeding an instance norm, 1e33 times the score by the patch embedding, past
#: float32 with more (then inf - inf = nan). 0.25, the middle-layer choice of Montavon et al.
#: (2019), keeps that UNETR's map within about 1e4 of the score and finite (the stored
#: ``benchmarks/results/lrp_monai_defaults.json``); a map that still overflows is refused with
#: one clear line (``method.NOT_FINITE``), never returned as nan. The other composites use
#: epsilon on dense layers only, with Zennit's 1e-6.
EPSILON_EVERYWHERE = 0.25
DENSE_EPSILON = 1e-6


def _epsilon(epsilon, stabilizer, **_):
    # epsilon everywhere, pooling and sums included: with epsilon -> 0 and no biases it conserves
    epsilon = EPSILON_EVERYWHERE if epsilon is None else epsilon
    return Composite([(CONVOLUTIONS + DENSE, Epsilon(epsilon))], stabilizer=epsilon)


def _epsilon_plus(epsilon, stabilizer, **_):
    epsilon = DENSE_EPSILON if epsilon is None else epsilon
    return Composite([(CONVOLUTIONS, ZPlus(stabilizer)), (DENSE, Epsilon(epsilon))], stabilizer=stabilizer)


def _epsilon_alpha2_beta1(epsilon, stabilizer, **_):
    epsilon = DENSE_EPSILON if epsilon is None else epsilon
    return Composite([(CONVOLUTIONS, AlphaBeta(2.0, 1.0, stabilizer)), (DENSE, Epsilon(epsilon))],
                     stabilizer=stabilizer)


def _flat_first(make):
    def build(epsilon, stabilizer, **_):
        composite = make(epsilon, stabilizer)
        composite.first_map = [(CONVOLUTIONS + DENSE, Flat(stabilizer))]
        return composite
    return build


def _epsilon_gamma_box(epsilon, stabilizer, gamma=0.25, low=None, high=None, **_):
    epsilon = DENSE_EPSILON if epsilon is None else epsilon
    return Composite(
        [(CONVOLUTIONS, Gamma(gamma, stabilizer)), (DENSE, Epsilon(epsilon))],
        first_map=[(CONVOLUTIONS, ZBox(low, high, stabilizer))], stabilizer=stabilizer,
    )


COMPOSITES = {
    "epsilon": _epsilon,
    "epsilon-plus": _epsilon_plus,
    "epsilon-alpha2-beta1": _epsilon_alpha2_beta1,
    "epsilon-plus-flat": _flat_first(_epsilon_plus),
    "epsilon-alpha2-beta1-flat": _flat_first(_epsilon_alpha2_beta1),
    "epsilon-gamma-box": _epsilon_gamma_box,
}


def composite_named(composite: "str | Composite | Mapping", *, epsilon: float | None = None, stabilizer: float = 1e-6,
                    gamma: float = 0.25, low=None, high=None) -> Composite:
    """A composite by name (:data:`COMPOSITES`, ``_`` and ``-`` alike), a :class:`Composite` as it
    is, or a mapping of layer names/types to rules (a :class:`NameMap`). ``epsilon``: of the
    epsilon rule; ``None`` takes the composite's default (:data:`EPSILON_EVERYWHERE` for
    ``epsilon``, :data:`DENSE_EPSILON` for the others)."""
    if epsilon is not None:  # 0 divides by zero where a layer's contributions cancel
        check_fraction(epsilon, "LRP epsilon (for LRP-0 pass 1e-12)", low=0.0, high=math.inf)
    check_fraction(gamma, "LRP gamma", low=0.0, high=math.inf, open_low=False)
    if isinstance(composite, Composite):
        return composite
    if isinstance(composite, Mapping):
        return NameMap(composite, stabilizer=stabilizer)
    key = str(composite).replace("_", "-")
    if key not in COMPOSITES:
        raise UnknownNameError(f"unknown LRP composite {composite!r}; composites: {', '.join(COMPOSITES)}")
    made = COMPOSITES[key](epsilon=epsilon, stabilizer=stabilizer, gamma=gamma, low=low, high=high)
    made.name = key
    return made
