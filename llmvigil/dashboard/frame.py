"""What every page shares: the data source, the sidebar's view, cached queries, safe text.

Query results are cached for ``[dashboard] cache_ttl_s`` keyed on the query,
the view and its params, so reruns of a page (every widget change) reread
nothing the filters did not change. A relative range ("last 24 hours") is
rounded down to the minute, so its cache lives across reruns in that minute.

Text from spans (prompts, responses, names, ids) is shown with ``st.text``,
``st.code`` or inside dataframes, which render it literally; where a label
needs it, :func:`literal` escapes Markdown so it cannot become a link or a
heading.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from llmvigil.config import Settings, load_settings
from llmvigil.dashboard.source import Source, open_source
from llmvigil.dashboard.view import DEFAULT_PRESET, FILTERS, PRESETS, View, view_from_query

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$])")


def literal(text: Any) -> str:
    """``text`` with every Markdown character escaped, for widget labels."""
    return _MARKDOWN.sub(r"\\\1", str(text))


@dataclass
class Frame:
    """The state a page is drawn from."""

    settings: Settings
    source: Source
    #: The sidebar's choice, as in the URL: a relative range is read afresh (see view).
    chosen: dict[str, str]

    @property
    def view(self) -> View:
        """The range and filters now (an auto-refresh moves a relative range along)."""
        return view_from_query(self.chosen, _this_minute())

    def query(self, name: str, **params: Any) -> pd.DataFrame:
        """A dashboard query's rows (cached briefly)."""
        return _cached(self.source.description, name, self.view, tuple(sorted(params.items())))

    def raw(self, name: str, **params: Any) -> pd.DataFrame:
        """The same, uncached (after the page wrote something)."""
        return self.source.query(name, self.view, **params).to_pandas()


@st.cache_resource(show_spinner=False)
def settings_and_source() -> tuple[Settings, Source]:
    settings = load_settings(os.environ.get("LLMVIGIL_CONFIG") or None)
    return settings, open_source(settings)


_read_cached = None


def _cached(description: str, name: str, view: View, params: tuple) -> pd.DataFrame:
    """``name``'s rows, reused for ``[dashboard] cache_ttl_s``; ``description`` keys the cache
    by store (the source itself is not hashable)."""
    global _read_cached
    if _read_cached is None:  # built once, with the configured time to live
        ttl = settings_and_source()[0].dashboard.cache_ttl_s
        _read_cached = st.cache_data(ttl=ttl, show_spinner=False, max_entries=500)(_read)
    return _read_cached(description, name, view, params)


def _read(description: str, name: str, view: View, params: tuple) -> pd.DataFrame:
    source = settings_and_source()[1]
    return source.query(name, view, **dict(params)).to_pandas()


def frame() -> Frame:
    """The settings, source and view of this run (set by the entry script)."""
    return st.session_state["llmvigil_frame"]


def sidebar(settings: Settings, source: Source) -> Frame:
    """Draw the sidebar (time range and filters, from and into the URL); return the frame."""
    params = {k: st.query_params.get(k) for k in ("range", "since", "until", *FILTERS)}
    preset = params.get("range") or DEFAULT_PRESET
    now = _this_minute()
    labels = {**{k: v[0] for k, v in PRESETS.items()}, "custom": "Custom range"}
    keys = list(labels)
    choice = st.sidebar.selectbox(
        "Time range",
        keys,
        index=keys.index(preset) if preset in keys else keys.index(DEFAULT_PRESET),
        format_func=labels.__getitem__,
    )
    chosen: dict[str, str] = {"range": choice}
    if choice == "custom":
        base = view_from_query({k: v for k, v in params.items() if v}, now)
        start = st.sidebar.date_input("From (UTC)", base.since.date())
        start_t = st.sidebar.time_input("at", base.since.time().replace(second=0, microsecond=0))
        end = st.sidebar.date_input("To (UTC)", base.until.date())
        end_t = st.sidebar.time_input("until", base.until.time().replace(second=0, microsecond=0))
        since = datetime.combine(_day(start), start_t or time())
        until = datetime.combine(_day(end), end_t or time())
        if until <= since:
            st.sidebar.error("The end is before the start: showing the last 24 hours.")
            chosen = {"range": DEFAULT_PRESET}
        else:
            chosen |= {"since": since.isoformat(), "until": until.isoformat()}
    view = view_from_query(chosen, now)
    options = _cached(source.description, "filter_options", view, ())
    for name in FILTERS:
        values = sorted({str(v) for v in options[name].dropna()}) if name in options else []
        current = params.get(name)
        if current and current not in values:
            values.append(current)  # a link's filter stays, even with no spans in the range
        picked = st.sidebar.selectbox(
            name.replace("_", " ").capitalize(),
            ["(all)", *values],
            index=(values.index(current) + 1) if current in values else 0,
            key=f"filter_{name}",
        )
        if picked != "(all)":
            chosen[name] = picked
    kept = {k: v for k, v in st.query_params.to_dict().items() if k not in chosen}
    kept = {k: v for k, v in kept.items() if k not in ("range", "since", "until", *FILTERS)}
    if st.query_params.to_dict() != chosen | kept:
        st.query_params.from_dict(chosen | kept)
    st.sidebar.caption(f"Store: {source.description}")
    return Frame(settings, source, chosen)


def _this_minute() -> datetime:
    # Rounded up to the next minute: a relative range's cached queries live for that minute,
    # and the calls of the minute under way are in it.
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    return now + timedelta(minutes=1)


def _day(value: Any) -> date:
    if isinstance(value, tuple):  # a date_input can hand back a range
        value = value[0]
    return value if isinstance(value, date) else datetime.now(UTC).date()


def auto_refresh(settings: Settings) -> None:
    """The sidebar's auto-refresh switch (off by default), for a wall screen."""
    on = st.sidebar.toggle(
        f"Auto-refresh every {settings.dashboard.refresh_s:g} s", value=False, key="refresh"
    )
    st.session_state["llmvigil_refresh"] = settings.dashboard.refresh_s if on else None


def refreshing(page: Callable[[], None]) -> Callable[[], None]:
    """``page``, drawn as a fragment that reruns on its own while auto-refresh is on."""

    @functools.wraps(page)
    def draw() -> None:
        interval = st.session_state.get("llmvigil_refresh")
        if interval:
            st.fragment(run_every=interval)(page)()
        else:
            page()

    return draw


def when(epoch_column: pd.Series) -> pd.Series:
    """Epoch-second buckets as UTC times for charts."""
    return pd.to_datetime(epoch_column, unit="s")


def empty(message: str) -> None:
    st.info(message)
