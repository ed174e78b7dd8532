"""The collector: ``@observe``, ``span``, ``context``, ``attach`` and the buffer behind them."""

from llmvigil.collector.runtime import configure, flush, shutdown, stats
from llmvigil.collector.tracer import attach, context, observe, span, use_clock

__all__ = [
    "attach",
    "configure",
    "context",
    "flush",
    "observe",
    "shutdown",
    "span",
    "stats",
    "use_clock",
]
