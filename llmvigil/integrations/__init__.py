"""Ready-made instrumentation for LLM client libraries.

Each module wraps one library's client so that every call it makes is
recorded as a span, with no decorator to write:

- :mod:`llmvigil.integrations.openai`: ``instrument(client)`` for
  ``openai.OpenAI`` and ``openai.AsyncOpenAI`` (chat completions, streamed or not).

The modules import their library, so each is imported on first use: after a
plain ``import llmvigil``, ``llmvigil.integrations.openai.instrument(client)``
works, and this package itself imports none of them until then.
"""

from __future__ import annotations

import importlib

_MODULES = ("openai",)


def __getattr__(name: str) -> object:
    if name in _MODULES:
        return importlib.import_module(f"llmvigil.integrations.{name}")
    raise AttributeError(f"module 'llmvigil.integrations' has no attribute {name!r}")


__all__ = ["openai"]
