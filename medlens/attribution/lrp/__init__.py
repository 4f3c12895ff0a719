"""Layer-wise relevance propagation (LRP) and concept relevance propagation (CRP).

``rules``: the LRP rules; ``composites``: which layer gets which rule; ``canonizers``: batch
norm folding, residual sums, in-place activations; ``core``: the hooks, attached inside a
context; ``method``: the registered methods ``lrp`` and ``crp``; ``concepts``: conditional
relevance and relevance maximisation (reference cases of a channel).
"""

from medlens.attribution.lrp.canonizers import Sum  # noqa: F401
from medlens.attribution.lrp.composites import COMPOSITES, Composite, NameMap, composite_named  # noqa: F401
from medlens.attribution.lrp.core import attached  # noqa: F401
from medlens.attribution.lrp.rules import (  # noqa: F401
    AlphaBeta, Epsilon, Flat, Gamma, Norm, Pass, Rule, WSquare, ZBox, ZPlus, Constant,
)
from medlens.attribution.lrp.method import lrp, crp  # noqa: F401
from medlens.attribution.lrp.concepts import conditional_relevance, reference_cases, reference_cases_of  # noqa: F401
