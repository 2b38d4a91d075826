"""Any optax optimizer as a training phase: ``Optax(transform="lion", learning_rate=1e-4,
options={"weight_decay": 1e-3})`` runs ``optax.lion(1e-4, weight_decay=1e-3)``.

``transform`` names one of optax's optimizer factories (``optax_transforms()``: the
functions of optax's namespace, ``nadam``'s partial included, that take a ``learning_rate``
and return a ``GradientTransformation``, less the ``scale_by_*`` building blocks and
``EXCLUDED``: ``optax.lbfgs``, whose line search evaluates the loss inside ``update`` (jpinn's
``lbfgs`` is the L-BFGS to use), ``optax.noisy_sgd`` and the deprecated ``optimistic_adam``).
``learning_rate`` is constant or follows one of Adam's schedules (the same fields and code:
``jpinn.optim.adam``). ``options`` are further keyword arguments of that factory, checked
against its signature and defaults; their values are numbers, booleans, strings (a dtype's
name) or null.

One step is one optax update on the gradient at ``w``: one iteration, one loss-and-gradient
evaluation, the same info as Adam. In an ensemble the members may differ in
``learning_rate``, ``decay_rate``, ``end_fraction`` and any real-valued option: those reach
optax as traced scalars, which optax's factories take wherever they only compute with the
value (checked for every listed factory with its real defaults); integer, boolean, string and null
settings must be equal across members (``jpinn.ensemble``)."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._base import AbstractOptimizer, base_info, check_positive
from .adam import SCHEDULE_FIELDS, check_schedule, learning_rate_schedule

# optax factories that take a learning rate but are no optimizer a phase can run on its own
EXCLUDED = {
    "lbfgs": "its line search evaluates the loss inside update; use optimizer name lbfgs (jpinn's L-BFGS)",
    "noisy_sgd": "its state holds a typed PRNG key, which jpinn's checkpoints cannot store",
    "optimistic_adam": "deprecated by optax; use optimistic_adam_v2",
}
# optax's building blocks (scale_by_*) are not optimizers
_EXCLUDED_PREFIXES = ("scale_by_",)


@functools.cache
def optax_transforms() -> dict[str, Callable[..., optax.GradientTransformation]]:
    """Name -> factory for every optax optimizer a phase may run (module docstring), sorted."""
    found = {}
    for name in sorted(dir(optax)):
        if name.startswith("_") or name.startswith(_EXCLUDED_PREFIXES) or name in EXCLUDED:
            continue
        function = getattr(optax, name)
        if not (inspect.isfunction(function) or isinstance(function, functools.partial)):  # nadam: a partial
            continue
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            continue
        returns = signature.return_annotation
        if "learning_rate" in signature.parameters and isinstance(returns, type) \
                and issubclass(returns, optax.GradientTransformation):
            found[name] = function
    return found


def _takes_schedule(function) -> bool:
    """Whether ``function``'s ``learning_rate`` may be a schedule (a callable), by its annotation."""
    annotation = inspect.signature(function).parameters["learning_rate"].annotation
    return annotation is inspect.Parameter.empty or "Callable" in str(annotation)


def _options_of(function) -> dict[str, inspect.Parameter]:
    """The keyword arguments of an optax factory that ``options`` may set (all but the learning rate)."""
    return {p.name: p for p in inspect.signature(function).parameters.values()
            if p.name != "learning_rate" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _copy_mapping(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _optional(parameter: inspect.Parameter) -> bool:
    text = str(parameter.annotation)
    return "None" in text or "Optional" in text


def _kind(parameter: inspect.Parameter) -> str | None:
    """What an option's value must be, by its default and annotation (None: any scalar): a
    boolean for a boolean default, a number for a numeric one (or null where optax's
    annotation allows it)."""
    default = parameter.default
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, (int, float)):
        return "a number" + (" or null" if _optional(parameter) else "")
    text = str(parameter.annotation)
    numeric = "float" in text and not any(word in text for word in ("str", "Any", "dtype", "DType"))
    if default is None and numeric:
        return "a number or null"  # a numeric setting that is off by default (sgd's momentum)
    return None


def _is_kind(value: Any, kind: str, parameter: inspect.Parameter) -> bool:
    if kind == "true or false":
        return isinstance(value, bool)
    if value is None:
        return _optional(parameter)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Optax(AbstractOptimizer):
    """``optax.<transform>(learning_rate or its schedule, **options)``, one iteration per step."""

    transform: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    decay_steps: int = 1000
    decay_rate: float = 0.9
    warmup_steps: int = 0
    end_fraction: float = 0.0
    # a copy of the mapping given (an OmegaConf DictConfig included), so the caller's stays theirs
    options: dict[str, Any] = eqx.field(default_factory=dict, converter=_copy_mapping)

    name: ClassVar[str] = "optax"

    def __check_init__(self):
        transforms = optax_transforms()
        if not isinstance(self.transform, str) or self.transform not in transforms:
            excluded = isinstance(self.transform, str) and self.transform in EXCLUDED
            hint = f" ({EXCLUDED[self.transform]})" if excluded else ""
            raise ValueError(f"transform: unknown optax optimizer {self.transform!r}{hint}; allowed:"
                             f" {', '.join(transforms)} ({self.name})")
        function = transforms[self.transform]
        check_positive(self.name, "learning_rate", self.learning_rate)
        check_schedule(self)
        if self.schedule != "constant" and not _takes_schedule(function):
            raise ValueError(f"schedule: optax.{self.transform} takes a constant learning rate only, got"
                             f" {self.schedule!r}; allowed: constant ({self.name})")
        if not isinstance(self.options, dict):
            raise ValueError(f"options: must be a mapping of keyword arguments of optax.{self.transform},"
                             f" got {self.options!r} ({self.name})")
        accepted = _options_of(function)
        allowed = ", ".join(accepted) or "none"
        for key, value in self.options.items():
            if key not in accepted:
                raise ValueError(f"options.{key}: not an option of optax.{self.transform}; allowed: {allowed}"
                                 f" ({self.name})")
            kind = _kind(accepted[key])
            if not _scalar(value) or (kind is not None and not _is_kind(value, kind, accepted[key])):
                raise ValueError(f"options.{key}: must be {kind or 'a number, boolean, string or null'} for"
                                 f" optax.{self.transform}, got {value!r} ({self.name})")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"options.{key}: must be finite, got {value!r} ({self.name})")
        for key, parameter in accepted.items():
            if parameter.default is inspect.Parameter.empty and key not in self.options:
                raise ValueError(f"options.{key}: required by optax.{self.transform} ({self.name})")
        try:  # what optax itself checks when it builds the transformation
            self._transform()
        except Exception as error:  # noqa: BLE001 - optax's own refusal, in one line
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ValueError(f"options: optax.{self.transform} refused them"
                             f" ({type(error).__name__}: {message}) ({self.name})") from None

    def hyperparameters(self) -> dict[str, Any]:
        out = super().hyperparameters()
        out["options"] = dict(self.options)
        return out

    def learning_rate_at(self, step):
        """The learning rate of step ``step`` (0 first) of the phase."""
        return learning_rate_schedule(self)(step)

    def _transform(self) -> optax.GradientTransformation:
        rate = self.learning_rate if self.schedule == "constant" else learning_rate_schedule(self)
        return optax_transforms()[self.transform](rate, **self.options)

    def init(self, f, w):
        return self._transform().init(w)

    def step(self, f, w, state):
        (loss, _), grad = jax.value_and_grad(f, has_aux=True)(w)
        updates, state = self._transform().update(grad, state, w)
        return optax.apply_updates(w, updates), state, base_info(loss, jnp.linalg.norm(grad))


__all__ = ["EXCLUDED", "Optax", "SCHEDULE_FIELDS", "optax_transforms"]
