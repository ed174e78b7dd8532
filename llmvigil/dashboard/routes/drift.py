"""The dashboard's /drift page (see llmvigil.dashboard.pages.drift)."""

from llmvigil.dashboard.frame import refreshing
from llmvigil.dashboard.pages import drift

refreshing(drift)()
