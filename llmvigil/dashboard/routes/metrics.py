"""The dashboard's /metrics page (see llmvigil.dashboard.pages.metrics)."""

from llmvigil.dashboard.frame import refreshing
from llmvigil.dashboard.pages import metrics

refreshing(metrics)()
