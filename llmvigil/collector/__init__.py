"""The collector: ``@observe``, ``span``, ``context``, ``attach`` and the buffer behind them."""

from llmvigil.collector.runtime import configure, flush, shutdown, stats
from llmvigil.collector.spans import ActiveSpan, attach, context, span, start_span
from llmvigil.collector.tracer import observe, use_clock

__all__ = [
    "ActiveSpan",
    "attach",
    "configure",
    "context",
    "flush",
    "observe",
    "shutdown",
    "span",
    "start_span",
    "stats",
    "use_clock",
]
