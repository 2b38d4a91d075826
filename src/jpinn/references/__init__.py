"""Reference solutions that need a solver, computed by jpinn itself (NumPy / SciPy; nothing
is downloaded), and cached as npz files in the user's cache folder (``cached``).

- ``burgers``: Cole-Hopf with Gauss-Hermite quadrature;
- ``allen_cahn``, ``kdv``, ``reaction_diffusion``: Fourier pseudo-spectral ETDRK4
  (``spectral``); ``reaction_diffusion.companion`` is the companion code's own splitting;
- ``heat2d``: 2-D heat with a source, exact in time in a sine basis.

Each solver's convergence under refinement is checked in ``tests/test_references.py``.
"""

from . import allen_cahn as allen_cahn, burgers as burgers, heat2d as heat2d, kdv as kdv
from . import reaction_diffusion as reaction_diffusion, spectral as spectral
from ._cache import cached as cached, cached_grid as cached_grid, reference_path as reference_path

__all__ = ["allen_cahn", "burgers", "cached", "cached_grid", "heat2d", "kdv", "reaction_diffusion", "reference_path", "spectral"]
