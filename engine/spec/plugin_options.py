"""The options a plug-in (generator class or model factory) accepts, for checks at validate time.

A plug-in may list them in ``OPTIONS`` (or ``DEFAULTS``); otherwise they are read from its
signature. ``None`` means the plug-in takes free-form options that only it can check.
"""

from __future__ import annotations

import inspect
from typing import Any

from engine.core.errors import CausalMixError


def option_names(plugin: Any) -> set[str] | None:
    explicit = getattr(plugin, "OPTIONS", None) or getattr(plugin, "DEFAULTS", None)
    if explicit is not None:
        return set(explicit)
    target = plugin.__init__ if isinstance(plugin, type) else plugin
    params = list(inspect.signature(target).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name not in ("self", "device")
            and p.kind is not inspect.Parameter.VAR_POSITIONAL}


def check_options(kind: str, name: str, plugin: Any, options: dict[str, Any]) -> None:
    """One line naming the valid options when ``options`` holds one the plug-in does not take."""
    known = option_names(plugin)
    if known is None:
        return
    unknown = sorted(set(options) - known)
    if unknown:
        if kind == "generator":
            known = known | {"class_balance"}
        raise CausalMixError(f"unknown {kind} option '{unknown[0]}' for {name} (valid: "
                             f"{', '.join(sorted(known))})")


def check_generator_options(generator: str, options: dict[str, Any]) -> None:
    """Names checked against the generator's parameters, values by building it (cheap);
    ``class_balance`` (every generator's, :mod:`engine.generators.base`) by its own check."""
    from engine.generators import GENERATORS, generator_names
    from engine.generators.base import parse_class_balance

    generator_names()  # registers every plug-in
    cls = GENERATORS.get(generator)
    options = dict(options)
    if "class_balance" in options:
        parse_class_balance(options.pop("class_balance"))
    check_options("generator", generator, cls, options)
    try:
        cls(**options)
    except CausalMixError:
        raise
    except (TypeError, ValueError) as exc:
        raise CausalMixError(f"{generator}: bad options ({str(exc).splitlines()[0]})") from None


def check_model_options(model: str, options: dict[str, Any]) -> None:
    """Names checked against the model factory's options, and values against its ``CHOICES``
    (option -> allowed values) where it lists them; weights are not loaded here."""
    from engine.models import model_names
    from engine.models.base import MODELS

    model_names()
    factory = MODELS.get(model)
    check_options("model", model, factory, options)
    for key, allowed in getattr(factory, "CHOICES", {}).items():
        if key in options and options[key] not in allowed:
            raise CausalMixError(f"{model}: {key} must be one of {', '.join(map(str, allowed))}, "
                                 f"got {options[key]!r}")
