"""Matrix-free linear algebra: Hessian-vector products, Jacobians of residual vectors (Gauss-Newton
products), randomized Nystrom, preconditioned and capped CG, Lanczos."""

from .cg import CGResult as CGResult, CappedCGResult as CappedCGResult, capped_cg as capped_cg, pcg as pcg
from .hvp import hvp as hvp, scalar_loss as scalar_loss, hvp_block as hvp_block, linearize_hvp as linearize_hvp, value_grad_hvp as value_grad_hvp
from .nystrom import Nystrom as Nystrom, nystrom as nystrom, nystrom_inverse as nystrom_inverse
from .lanczos import (
    LanczosState as LanczosState,
    Tridiagonal as Tridiagonal,
    lanczos as lanczos,
    lanczos_steps as lanczos_steps,
)
from .jacobian import (
    Linearized as Linearized,
    dense_jacobian as dense_jacobian,
    gauss_newton_block as gauss_newton_block,
    gauss_newton_product as gauss_newton_product,
    linearize_residuals as linearize_residuals,
)
