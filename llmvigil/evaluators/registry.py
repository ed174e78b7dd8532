"""The evaluator registry: built-ins register with :func:`register`, plug-ins through entry points.

A third-party package exposes its evaluator class in its own ``pyproject.toml``::

    [project.entry-points."llmvigil.evaluators"]
    politeness = "my_package.evaluators:Politeness"

and it then runs exactly like a built-in.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import TypeVar

from llmvigil.errors import EvaluatorError
from llmvigil.evaluators.base import FIELDS, Evaluator

ENTRY_POINT_GROUP = "llmvigil.evaluators"

#: Modules holding the built-in evaluators; importing one registers its classes.
BUILTIN_MODULES = (
    "llmvigil.evaluators.relevance",
    "llmvigil.evaluators.completeness",
    "llmvigil.evaluators.brevity",
    "llmvigil.evaluators.toxicity",
    "llmvigil.evaluators.factuality",
)

E = TypeVar("E", bound=type[Evaluator])
log = logging.getLogger(__name__)
_registry: dict[str, type[Evaluator]] = {}
_loaded = False


def register(cls: E) -> E:
    """Class decorator that adds an evaluator class to the registry under ``cls.name``."""
    _check(cls)
    _registry[cls.name] = cls
    return cls


def _check(cls: object) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
        raise EvaluatorError(f"{cls!r} is not a subclass of llmvigil.evaluators.Evaluator")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise EvaluatorError(f"{cls.__name__}.name must be a non-empty string")
    unknown = set(cls.needs) - FIELDS
    if unknown:
        raise EvaluatorError(
            f"{cls.__name__}.needs has unknown fields {sorted(unknown)}; "
            f"use some of {sorted(FIELDS)}"
        )


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register(ep.load())
        except Exception as exc:  # a broken plug-in must not hide the built-ins
            log.error("evaluator plug-in %r (%s) could not be loaded: %s", ep.name, ep.value, exc)
    _loaded = True


def available() -> dict[str, type[Evaluator]]:
    """All registered evaluator classes by name, built-ins and plug-ins."""
    _load_all()
    return dict(_registry)


def get(name: str) -> type[Evaluator]:
    """The evaluator class registered under ``name``; raises :class:`EvaluatorError` if none."""
    classes = available()
    try:
        return classes[name]
    except KeyError:
        raise EvaluatorError(
            f"no evaluator named {name!r}; available: {', '.join(sorted(classes))}"
        ) from None
