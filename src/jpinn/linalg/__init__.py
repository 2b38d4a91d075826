"""Matrix-free linear algebra: Hessian-vector products, randomized Nystrom, preconditioned CG, Lanczos."""

from .cg import CGResult as CGResult, pcg as pcg
from .hvp import hvp as hvp, scalar_loss as scalar_loss, hvp_block as hvp_block, linearize_hvp as linearize_hvp, value_grad_hvp as value_grad_hvp
from .nystrom import Nystrom as Nystrom, nystrom as nystrom, nystrom_inverse as nystrom_inverse
from .lanczos import (
    LanczosState as LanczosState,
    Tridiagonal as Tridiagonal,
    lanczos as lanczos,
    lanczos_steps as lanczos_steps,
)
