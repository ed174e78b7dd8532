"""The collector: ``@observe``, ``span``, ``context``, ``attach`` and the buffer behind them."""

from llmvigil.collector.runtime import configure, flush, shutdown, stats
from llmvigil.collector.tracer import (
    ActiveSpan,
    attach,
    context,
    observe,
    span,
    start_span,
    use_clock,
)

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
