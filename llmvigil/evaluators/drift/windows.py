"""Which two windows a drift run compares.

The current window is ``--since``/``--until`` or the last ``[drift] window``.
The reference window, first match wins: ``--reference-since``/``--reference-until``;
a baseline pinned with ``llmvigil drift baseline`` for the same filter;
``[drift] reference_since``/``reference_until``; else the window of the same
length just before the current one. A pinned baseline wins over the file's
because pinning is the later, more specific act of the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from llmvigil.errors import LlmvigilError
from llmvigil.storage.metrics import parse_grain, parse_moment


@dataclass(frozen=True, slots=True)
class Windows:
    """A run's two windows, each ``[start, end)`` in UTC, and where the reference came from."""

    reference_start: datetime
    reference_end: datetime
    current_start: datetime
    current_end: datetime
    reference_source: str

    def as_dict(self) -> dict[str, Any]:
        """The bounds as ISO strings, for JSON."""
        return {
            "reference_start": self.reference_start.isoformat(),
            "reference_end": self.reference_end.isoformat(),
            "current_start": self.current_start.isoformat(),
            "current_end": self.current_end.isoformat(),
            "reference_source": self.reference_source,
        }


def _pair(start: datetime | None, end: datetime | None, names: str) -> None:
    if start is not None and end is not None and end <= start:
        raise LlmvigilError(
            f"{names}: the end ({end:%Y-%m-%dT%H:%M:%S}) is not after the start "
            f"({start:%Y-%m-%dT%H:%M:%S}), so the window holds nothing; swap them"
        )


def resolve_windows(
    window: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    reference_since: datetime | None = None,
    reference_until: datetime | None = None,
    pinned: tuple[datetime, datetime] | None = None,
    configured: tuple[str | None, str | None] = (None, None),
    now: datetime | None = None,
) -> Windows:
    """The windows of one run (see the module docstring); times are naive UTC."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    current_end = until or now
    current_start = since or current_end - timedelta(seconds=parse_grain(window))
    _pair(current_start, current_end, "--since and --until")
    length = current_end - current_start
    # One reference bound alone means a window as long as the current one from there.
    if reference_since is not None and reference_until is None:
        reference_until = reference_since + length
    elif reference_until is not None and reference_since is None:
        reference_since = reference_until - length
    _pair(reference_since, reference_until, "--reference-since and --reference-until")
    if reference_since is not None and reference_until is not None:
        return Windows(
            reference_since,
            reference_until,
            current_start,
            current_end,
            "--reference-since/--reference-until",
        )
    if pinned is not None:
        return Windows(*pinned, current_start, current_end, "pinned baseline")
    config_since, config_until = configured
    if config_since is not None and config_until is not None:
        start = parse_moment(config_since, now, option="[drift] reference_since")
        end = parse_moment(config_until, now, option="[drift] reference_until")
        _pair(start, end, "[drift] reference_since and reference_until")
        return Windows(
            start, end, current_start, current_end, "[drift] reference_since/reference_until"
        )
    return Windows(
        current_start - length, current_start, current_start, current_end, "previous window"
    )


def describe(filters: Mapping[str, str | None]) -> str:
    """``app=bot, kind=llm`` for messages; ``all spans`` for no filter."""
    shown = [f"{k}={v}" for k, v in filters.items() if v is not None]
    return ", ".join(shown) or "all spans"
