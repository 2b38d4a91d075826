"""Building objects by name from a registry, and the integer check every layer shares;
errors are one line naming the field."""

from __future__ import annotations

import inspect
from typing import Any


def make_registered(
    section: str, kind: str, registry: dict[str, type], name: str, fields: dict[str, Any], **extra
) -> Any:
    """``registry[name](**fields, **extra)``; unknown names and fields raise a one-line ValueError.

    ``section`` prefixes the field names in messages (``"pde."``, ``"model."`` or ``""``);
    ``kind`` says what the registry holds (``"PDE"``, ``"optimizer"``).
    """
    if name not in registry:
        raise ValueError(f"{section}name: unknown {kind} {name!r}; allowed: {', '.join(registry)}")
    cls = registry[name]
    allowed = [
        p.name for p in inspect.signature(cls).parameters.values()
        if p.name not in extra and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    for key in fields:
        if key not in allowed:
            raise ValueError(f"{section}{key}: not a field of {name}; allowed: {', '.join(allowed) or 'none'}")
    return cls(**fields, **extra)


def check_int(field: str, value: Any, minimum: int = 1, error: type[Exception] = ValueError) -> int:
    """``value`` if it is an integer >= ``minimum`` (bools refused), else a one-line ``error``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise error(f"{field}: must be an integer >= {minimum}, got {value!r}")
    return value
