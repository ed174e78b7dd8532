"""The dashboard's /sessions page (see llmvigil.dashboard.pages.sessions)."""

from llmvigil.dashboard.frame import refreshing
from llmvigil.dashboard.pages import sessions

refreshing(sessions)()
