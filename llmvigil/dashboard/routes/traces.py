"""The dashboard's /traces page (see llmvigil.dashboard.pages.traces)."""

from llmvigil.dashboard.frame import refreshing
from llmvigil.dashboard.pages import traces

refreshing(traces)()
