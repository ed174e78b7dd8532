"""The dashboard's /quality page (see llmvigil.dashboard.pages.quality)."""

from llmvigil.dashboard.frame import refreshing
from llmvigil.dashboard.pages import quality

refreshing(quality)()
