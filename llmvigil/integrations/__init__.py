"""Ready-made instrumentation for LLM client libraries.

Each module wraps one library's client so that every call it makes is
recorded as a span, with no decorator to write:

- :mod:`llmvigil.integrations.openai`: ``instrument(client)`` for
  ``openai.OpenAI`` and ``openai.AsyncOpenAI`` (chat completions, streamed or not).

The modules import their library, so import the one you need
(``from llmvigil.integrations.openai import instrument``); this package
itself imports none of them.
"""
