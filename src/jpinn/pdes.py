"""The former name of ``jpinn.problems`` (kept so that notebooks and scripts written for the
study's three problems run unchanged)."""

from .problems import *  # noqa: F401,F403
from .problems import AbstractPDE, PDES, PROBLEMS, make_pde, make_problem  # noqa: F401
