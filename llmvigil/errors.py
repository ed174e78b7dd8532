"""The one exception hierarchy of llmvigil.

Every error llmvigil raises on purpose derives from :class:`LlmvigilError`, so
``except llmvigil.LlmvigilError`` catches them all. Messages name the field,
the value and the fix.

The collector never raises into the caller's code: these are raised by
configuration, storage, ingest and evaluation, which users call explicitly.
"""

from __future__ import annotations


class LlmvigilError(Exception):
    """Root of every error llmvigil raises on purpose."""


class ConfigError(LlmvigilError):
    """A setting in ``llmvigil.toml`` or an ``LLMVIGIL_*`` variable is unknown or invalid."""


class StoreError(LlmvigilError):
    """The store cannot be opened, migrated, written or queried."""


class IngestError(LlmvigilError):
    """Spans or spool segments cannot be read or loaded into the store."""


class EvaluatorError(LlmvigilError):
    """An evaluator cannot be loaded, configured or run."""


__all__ = ["ConfigError", "EvaluatorError", "IngestError", "LlmvigilError", "StoreError"]
