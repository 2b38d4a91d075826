"""Loss-landscape analysis (PAPER.md section 5): Hessian spectral densities by stochastic
Lanczos quadrature, the L-BFGS-preconditioned spectrum, condition numbers against the number
of residual points, and the loss along a direction."""

from .landscape import (
    ORDERINGS as ORDERINGS,
    ConditionEstimate as ConditionEstimate,
    ConditionSweep as ConditionSweep,
    LineScan as LineScan,
    condition_ratio as condition_ratio,
    condition_sweep as condition_sweep,
    estimate_condition as estimate_condition,
    hessian_condition as hessian_condition,
    hessian_eigenvalues as hessian_eigenvalues,
    line_scan as line_scan,
)
from .preconditioned import (
    LBFGSFactor as LBFGSFactor,
    preconditioned_density as preconditioned_density,
    preconditioned_operator as preconditioned_operator,
    preconditioned_top_eigenvalues as preconditioned_top_eigenvalues,
)
from .spectrum import (
    COMPONENTS as COMPONENTS,
    SpectralDensity as SpectralDensity,
    component_loss as component_loss,
    components_of as components_of,
    hessian_density as hessian_density,
    hessian_operator as hessian_operator,
    slq as slq,
    top_eigenvalues as top_eigenvalues,
)
