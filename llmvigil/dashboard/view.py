"""What the dashboard shows: a time range and the sidebar's filters, kept in the URL.

A :class:`View` travels three ways: as the page's query string (so a link opens
the same view), as the JSON of a query sent to the owner of the store, and as
SQL filters on spans and on score rollups. Presets are relative ("last 24
hours" moves with the clock); a custom range is fixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from llmvigil.errors import ConfigError
from llmvigil.storage import schema

#: Preset ranges by their URL value.
PRESETS: dict[str, tuple[str, timedelta]] = {
    "15m": ("Last 15 minutes", timedelta(minutes=15)),
    "1h": ("Last hour", timedelta(hours=1)),
    "6h": ("Last 6 hours", timedelta(hours=6)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_PRESET = "24h"
#: The sidebar's filters, in the order shown; each is a column of ``spans``.
FILTERS = ("app", "model", "environment", "prompt_version")


def _utc_naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


@dataclass(frozen=True)
class View:
    """Spans that started in ``[since, until)`` (UTC) and match every filter given."""

    since: datetime
    until: datetime
    app: str | None = None
    model: str | None = None
    environment: str | None = None
    prompt_version: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", _utc_naive(self.since))
        object.__setattr__(self, "until", _utc_naive(self.until))
        if self.until <= self.since:
            raise ConfigError(
                f"the time range ends ({self.until:%Y-%m-%d %H:%M}) before it starts "
                f"({self.since:%Y-%m-%d %H:%M}); pick an end after the start"
            )

    @property
    def seconds(self) -> float:
        return (self.until - self.since).total_seconds()

    def previous(self) -> View:
        """The range of the same length just before this one, with the same filters."""
        length = self.until - self.since
        return replace(self, since=self.since - length, until=self.since)

    def filters(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FILTERS if getattr(self, name)}

    def span_where(self, table: sa.Table = schema.spans) -> list[sa.ColumnElement[bool]]:
        """SQL conditions on ``spans`` (or a table with the same columns)."""
        c = table.c
        where = [c.start_time >= self.since, c.start_time < self.until]
        where += [c[name] == value for name, value in self.filters().items()]
        return where

    def rollup_where(self) -> list[sa.ColumnElement[bool]]:
        """SQL conditions on ``score_rollups``: whole 5-minute buckets inside the range."""
        c = schema.score_rollups.c
        where = [c.bucket >= _epoch(self.since), c.bucket < _epoch(self.until)]
        where += [c[name] == value for name, value in self.filters().items()]
        return where

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> View:
        unknown = set(data) - {"since", "until", *FILTERS}
        if unknown:
            raise ConfigError(f"unknown view fields {sorted(unknown)}; use since, until, {FILTERS}")
        try:
            since = datetime.fromisoformat(str(data["since"]))
            until = datetime.fromisoformat(str(data["until"]))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"a view needs since and until in ISO 8601 ({exc})") from None
        return cls(since, until, **{name: data.get(name) or None for name in FILTERS})


def _epoch(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def bucket_seconds(view: View, points: int = 120) -> int:
    """A chart bucket that cuts the range into about ``points`` steps, on a round size."""
    for size in (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400):
        if view.seconds / size <= points:
            return size
    return 86400


def view_from_query(params: Mapping[str, str], now: datetime | None = None) -> View:
    """The view a page's query string names (``range=24h`` or ``since=...&until=...``, then
    the filters); bad values fall back to the default range rather than failing the page."""
    now = _utc_naive(now or datetime.now(UTC))
    filters = {name: params.get(name) or None for name in FILTERS}
    if params.get("range", DEFAULT_PRESET) == "custom":
        try:
            return View(
                datetime.fromisoformat(params["since"]),
                datetime.fromisoformat(params["until"]),
                **filters,
            )
        except (KeyError, ValueError, ConfigError):
            pass
    length = PRESETS.get(params.get("range", ""), PRESETS[DEFAULT_PRESET])[1]
    return View(now - length, now, **filters)
