"""Attribution methods, one module per family. Importing a module registers its methods.

``common`` holds the shared helpers (per-dimension options, baselines, seeds); every other
module registers methods with :func:`medlens.core.registry.register`.
"""

from medlens.attribution import gradient  # noqa: F401  (gradient, grad_x_input)
from medlens.attribution import integrated_gradients  # noqa: F401
from medlens.attribution import smoothgrad  # noqa: F401
from medlens.attribution import cam  # noqa: F401  (gradcam, gradcam_pp)
from medlens.attribution import occlusion  # noqa: F401
from medlens.attribution import rise  # noqa: F401
from medlens.attribution import fastcam  # noqa: F401
from medlens.attribution import lrp  # noqa: F401  (lrp, crp)
from medlens.attribution import attention_gates  # noqa: F401  (model-specific: attention-gated networks)
from medlens.attribution import patch_attention  # noqa: F401  (model-specific: attention-MIL)
from medlens.attribution import transformer  # noqa: F401  (model-specific: attention_rollout, transformer_attribution)
