"""llmvigil: watch LLM applications in production.

Decorate the functions that call a model, and every call's prompt, response,
latency, tokens, cost, errors and metadata land in a store you can query::

    import llmvigil

    @llmvigil.observe(model="gpt-4o-mini")   # kind="llm", the default: a model call
    def answer(question: str) -> str:
        ...

    @llmvigil.observe(kind="chain")   # anything else names its kind
    def handle(question: str) -> str:
        return answer(question)

The collector never raises into your code and never blocks it past the
configured bound; see ``llmvigil.stats()`` for what it did.
"""

from typing import TYPE_CHECKING

from llmvigil.collector import (
    attach,
    configure,
    context,
    flush,
    observe,
    shutdown,
    span,
    stats,
)
from llmvigil.collector.feedback import current_ids, feedback
from llmvigil.collector.runtime import warm_up_in_background as _warm_up_in_background
from llmvigil.config import Settings, load_settings
from llmvigil.errors import (
    ConfigError,
    EvaluatorError,
    IngestError,
    LlmvigilError,
    StoreError,
)
from llmvigil.evaluators import EvalItem, Evaluator, Score

if TYPE_CHECKING:
    from llmvigil import integrations
    from llmvigil.evaluators.drift import DriftReport, run_drift
    from llmvigil.storage import MetricRow, Store, open_store

__version__ = "0.1.0"

# Last, once every module of the package is loaded: the flush thread's own imports and the
# price data load in the background from here on, not under the app's first calls.
_warm_up_in_background()

#: Loaded on first use: the store needs SQLAlchemy, pyarrow and numpy, drift numpy and
#: Evidently, which an app that only records calls should not pay for on its thread at import
#: (the collector's warm-up thread loads what the flush thread needs, in the background).
_LAZY = {
    "DriftReport": "llmvigil.evaluators.drift",
    "run_drift": "llmvigil.evaluators.drift",
    "MetricRow": "llmvigil.storage.metrics",
    "Store": "llmvigil.storage.store",
    "open_store": "llmvigil.storage.store",
}


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "integrations":
        # `llmvigil.integrations.openai.instrument(...)` after a plain `import llmvigil`.
        return importlib.import_module("llmvigil.integrations")
    raise AttributeError(f"module 'llmvigil' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "DriftReport",
    "EvalItem",
    "Evaluator",
    "EvaluatorError",
    "IngestError",
    "LlmvigilError",
    "MetricRow",
    "Score",
    "Settings",
    "Store",
    "StoreError",
    "__version__",
    "attach",
    "configure",
    "context",
    "current_ids",
    "feedback",
    "flush",
    "integrations",
    "load_settings",
    "observe",
    "open_store",
    "run_drift",
    "shutdown",
    "span",
    "stats",
]
