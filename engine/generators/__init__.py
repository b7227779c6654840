"""Synthetic-data generator plug-ins; each module registers one generator."""

from __future__ import annotations

from typing import Any

from engine.generators.base import GENERATORS, Generator, register_generator


def _load_all() -> None:
    import engine.generators as pkg
    from engine.core.plugins import import_submodules

    import_submodules(pkg)


def make_generator(name: str, **params: Any) -> Generator:
    """Instantiate the generator registered as ``name`` with its parameters; the
    ``class_balance`` option, common to every generator, is applied by the base class."""
    _load_all()
    balance = params.pop("class_balance", None)
    gen = GENERATORS.get(name)(**params)
    return gen.set_class_balance(balance) if balance is not None else gen


def generator_names() -> list[str]:
    _load_all()
    return GENERATORS.names()


__all__ = ["GENERATORS", "Generator", "generator_names", "make_generator", "register_generator"]
