"""The dashboard's /overview page (see llmvigil.dashboard.pages.overview)."""

from llmvigil.dashboard.frame import refreshing
from llmvigil.dashboard.pages import overview

refreshing(overview)()
