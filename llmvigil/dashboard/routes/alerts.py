"""The dashboard's /alerts page (see llmvigil.dashboard.pages.alerts)."""

from llmvigil.dashboard.frame import refreshing
from llmvigil.dashboard.pages import alerts

refreshing(alerts)()
