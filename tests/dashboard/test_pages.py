"""Every page through Streamlit's AppTest, over a real DuckDB fixture store."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from llmvigil.dashboard import frame
from llmvigil.dashboard.frame import literal
from llmvigil.dashboard.routes import PAGES
from llmvigil.storage.store import open_store
from tests.dashboard.fixture_store import PROBES, fill

APP = str(frame.__file__).replace("frame.py", "app.py")


@pytest.fixture
def store_file(tmp_path, monkeypatch):
    path = tmp_path / "dash.duckdb"
    with open_store(f"duckdb:///{path}") as store:
        ids = fill(store)
    monkeypatch.setenv("LLMVIGIL_STORE_URL", f"duckdb:///{path}")
    # Each test reads its own store: the app's cached source and results must not leak.
    st.cache_resource.clear()
    st.cache_data.clear()
    frame._read_cached = None
    yield ids
    st.cache_resource.clear()


def _open(page: str | None = None, **query: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.run()
    if page is not None:
        app.query_params.update(query)
        app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _text(app: AppTest) -> str:
    parts = [m.value for m in app.metric] + [m.label for m in app.metric]
    parts += [str(e.value) for kind in ("title", "subheader", "caption", "text", "code", "info")
              for e in getattr(app, kind)]  # fmt: skip
    return "\n".join(parts)


@pytest.mark.parametrize("route", [p[0] for p in PAGES])
def test_every_page_draws_without_an_exception_and_has_the_sidebar(store_file, route):
    app = _open(route)
    labels = [s.label for s in app.sidebar.selectbox]
    assert labels == ["Time range", "App", "Model", "Environment", "Prompt version"]
    assert app.title[0].value == dict((p[0], p[1]) for p in PAGES)[route]


def test_the_overview_shows_the_totals_and_the_app_filter_changes_them(store_file):
    app = _open("routes/overview.py")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Calls"] == "119" and metrics["Error rate"] == "10.08%"
    filtered = _open("routes/overview.py", app="support")
    assert {m.label: m.value for m in filtered.metric}["Calls"] == "60"
    assert filtered.sidebar.selectbox[1].value == "support"
    # Choosing in the sidebar writes the URL, so a link shows the same view.
    app.sidebar.selectbox[1].select("search").run()
    assert app.query_params["app"] == ["search"] or app.query_params["app"] == "search"
    assert {m.label: m.value for m in app.metric}["Calls"] == "59"


def test_metrics_lists_the_health_table_with_a_csv_download(store_file):
    app = _open("routes/metrics.py", range="6h")
    table = app.dataframe[0].value
    assert list(table.columns)[:9] == ["TimeGenerated", "MetricName", "Total", "Count",
        "Maximum", "Minimum", "Average", "TimeGrain", "UnitName"]  # fmt: skip
    assert {"Latency", "TotalCalls"} <= set(table["MetricName"])
    app.selectbox[0].select("1h").run()
    assert set(app.dataframe[0].value["TimeGrain"]) == {"PT1H"}


def test_quality_shows_judge_and_offline_apart_and_the_worst_spans(store_file):
    app = _open("routes/quality.py")
    summary = app.dataframe[0].value
    assert set(summary["source"]) == {"offline", "judge"}
    evaluator = next(s for s in app.selectbox if s.label == "Evaluator")
    evaluator.select("toxicity").run()
    worst = next(d.value for d in app.dataframe if "span_id" in d.value.columns)
    assert worst.iloc[0]["span_id"] == "span0005"


def test_traces_search_and_the_trace_tree_show_text_literally(store_file):
    app = _open("routes/traces.py", trace=store_file["trace"])
    assert "Trace" in app.subheader[0].value
    shown = [c.value for c in app.code]
    for probe in PROBES:  # as code blocks: text, never HTML or Markdown
        assert any(probe in value for value in shown), probe
    labels = [e.label for e in app.expander]
    assert labels[0].startswith("pipeline") and labels[1].startswith("— answer")
    search = next(t for t in app.text_input if t.label == "Search prompts and responses")
    search.input("password 1").run()
    assert all("password 1" in v for v in app.dataframe[0].value["input_text"])


def test_rating_a_span_writes_feedback(store_file, tmp_path):
    app = _open("routes/traces.py", trace=store_file["trace"])
    form_button = next(b for b in app.button if b.label == "Save rating")
    form_button.click().run()
    assert not app.exception
    st.cache_resource.clear()
    with open_store(f"duckdb:///{tmp_path / 'dash.duckdb'}") as store:
        ratings = [f for f in store.feedback() if f["source"] == "dashboard"]
    assert len(ratings) == 1 and ratings[0]["label"] == "good"


def test_drift_alerts_and_sessions_pages(store_file):
    drift = _open("routes/drift.py")
    assert any("New topics" in s.value for s in drift.subheader)
    assert "<b>app crashes</b>" in [t.value for t in drift.text]
    alerts = _open("routes/alerts.py")
    assert {m.label: m.value for m in alerts.metric}["Firing now"] == "1"
    sessions = _open("routes/sessions.py")
    table = sessions.dataframe[0].value
    assert {"session_id", "user_id", "cost_usd", "relevance"} <= set(table.columns)


def test_markdown_in_labels_is_escaped():
    assert literal("[x](javascript:alert(1))") == r"\[x\]\(javascript\:alert\(1\)\)"
    assert literal("# head") == r"\# head"


def test_a_password_gates_the_dashboard(store_file, monkeypatch):
    from llmvigil.dashboard.access import hash_password

    monkeypatch.setenv("LLMVIGIL_DASHBOARD_PASSWORD_HASH_ENV", "TEAM_DASHBOARD_HASH")
    monkeypatch.setenv("TEAM_DASHBOARD_HASH", hash_password("correct horse"))
    app = _open()
    assert not app.metric and app.title[0].value == "llmvigil"
    app.text_input[0].input("wrong password")
    app.button[0].click().run()
    assert "does not open" in app.error[0].value and not app.metric
    app.text_input[0].input("correct horse")
    app.button[0].click().run()
    assert {m.label for m in app.metric} >= {"Calls", "Error rate"}


def test_a_custom_range_is_kept_in_the_url(store_file):
    app = _open("routes/overview.py", range="custom", since="2020-01-01T00:00:00",
                until="2020-01-02T00:00:00")  # fmt: skip
    assert app.sidebar.selectbox[0].value == "custom"
    assert {m.label: m.value for m in app.metric}["Calls"] == "0"
    assert app.query_params["since"] in ("2020-01-01T00:00:00", ["2020-01-01T00:00:00"])


def test_auto_refresh_is_off_by_default_and_redraws_the_page_when_on(store_file):
    app = _open("routes/overview.py")
    toggle = app.sidebar.toggle[0]
    assert toggle.label.startswith("Auto-refresh every 30") and toggle.value is False
    toggle.set_value(True).run()
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Calls"] == "119"
    assert app.session_state["llmvigil_refresh"] == 30.0
