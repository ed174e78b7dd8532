"""The dashboard's pages, one function each, drawn from :func:`.frame.frame`.

Each page answers one question: overview (is the app healthy, against the
period before), metrics (the per-grain health table, as a cloud monitor shows
it), quality (what the evaluators say, worst spans first), drift (what moved
between windows, and the new topics), traces (find a call and see its whole
trace), alerts (what fired, who was told, which hooks ran), sessions (each
conversation with its cost and scores).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from llmvigil.dashboard.frame import empty, frame, literal, when
from llmvigil.dashboard.queries import HIGHER_IS_WORSE

_JUDGE_METHODS = ("ragas", "judge")


def _number(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _delta(current: Any, previous: Any, percent: bool = True) -> str | None:
    if previous in (None, 0) or current is None or pd.isna(previous) or pd.isna(current):
        return None
    if percent:
        return f"{(current - previous) / previous:+.0%}"
    return f"{current - previous:+.2%}"


def _chart(figure: go.Figure, key: str) -> None:
    figure.update_layout(
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=320,
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "title": None},
    )
    figure.update_xaxes(title=None)
    st.plotly_chart(figure, key=key)


# -- overview ---------------------------------------------------------------------------------


def overview() -> None:
    """Calls, errors, latency, tokens and cost, with the change against the period before."""
    f = frame()
    st.title("Overview")
    st.caption(
        f"Model calls from {f.view.since:%Y-%m-%d %H:%M} to {f.view.until:%Y-%m-%d %H:%M} UTC"
    )
    totals = f.query("overview_totals")
    rows = {r["period"]: r for r in totals.to_dict("records")}
    now, before = rows.get("current", {}), rows.get("previous", {})
    calls, errors = now.get("calls") or 0, now.get("errors") or 0
    rate = errors / calls if calls else None
    old_rate = (before.get("errors") or 0) / before["calls"] if before.get("calls") else None
    columns = st.columns(4)
    columns[0].metric("Calls", _number(calls), _delta(calls, before.get("calls")))
    columns[1].metric(
        "Error rate",
        "–" if rate is None else f"{rate:.2%}",
        _delta(rate, old_rate, percent=False),
        delta_color="inverse",
    )
    columns[2].metric(
        "Tokens",
        _number(now.get("total_tokens")),
        _delta(now.get("total_tokens"), before.get("total_tokens")),
    )
    columns[3].metric(
        "Cost (USD)",
        _number(now.get("cost_usd"), 4),
        _delta(now.get("cost_usd"), before.get("cost_usd")),
        delta_color="inverse",
    )
    columns = st.columns(3)
    for column, name in zip(columns, ("p50", "p95", "p99"), strict=True):
        column.metric(
            f"Latency {name} (ms)",
            _number(now.get(name)),
            _delta(now.get(name), before.get(name)),
            delta_color="inverse",
        )
    series = f.query("overview_series")
    if series.empty:
        empty("No model calls in this range. Widen the time range or clear the filters.")
        return
    series["time"] = when(series["bucket"])
    series["error_rate"] = series["errors"] / series["calls"]
    left, right = st.columns(2)
    with left:
        _chart(px.bar(series, x="time", y="calls", title="Calls"), "calls")
        latency = series.melt("time", ["p50", "p95", "p99"], "percentile", "ms")
        _chart(
            px.line(latency, x="time", y="ms", color="percentile", title="Latency (ms)"), "latency"
        )
    with right:
        _chart(px.line(series, x="time", y="error_rate", title="Error rate"), "errors")
        _chart(px.bar(series, x="time", y="cost_usd", title="Cost (USD)"), "cost")


# -- metrics ----------------------------------------------------------------------------------

_GRAINS = ("1m", "5m", "15m", "1h", "1d")


def metrics() -> None:
    """The health table: one row per metric and time bucket, as a cloud monitor lists it."""
    f = frame()
    st.title("Metrics")
    longest = {"1m": 6 * 3600, "5m": 3 * 86400, "15m": 7 * 86400, "1h": 62 * 86400}
    fitting = [g for g in _GRAINS if f.view.seconds <= longest.get(g, float("inf"))]
    grain = st.selectbox("Time grain", fitting, index=min(1, len(fitting) - 1))
    table = f.query("health", grain=grain)
    if table.empty:
        empty("No model calls in this range.")
        return
    names = sorted(table["MetricName"].unique())
    picked = st.multiselect("Metrics", names, default=names)
    shown = table[table["MetricName"].isin(picked)]
    st.dataframe(shown, hide_index=True, height=500)
    st.download_button(
        "Download CSV",
        shown.to_csv(index=False).encode(),
        file_name=f"llmvigil-metrics-{grain}.csv",
        mime="text/csv",
    )


# -- quality ----------------------------------------------------------------------------------


def _series_names(rows: pd.DataFrame) -> pd.Series:
    """A line per evaluator and method, named by the evaluator alone where it has one method;
    a judge's line always says so, so it is never read as the offline score."""
    methods = rows.groupby("evaluator")["method"].nunique()

    def name(row: pd.Series) -> str:
        label = row["evaluator"] + (" (judge)" if _judged(row["method"]) else "")
        if methods.get(row["evaluator"], 1) > 1:
            label += f" · {str(row['method'])[:30]}"
        return label

    return rows.apply(name, axis=1) if not rows.empty else pd.Series(dtype=str)


def _judged(method: str) -> bool:
    return str(method).startswith(_JUDGE_METHODS)


def quality() -> None:
    """Each evaluator's mean and pass rate over time, its score distribution, its worst spans;
    judge scores beside the offline ones, never averaged together."""
    f = frame()
    st.title("Quality")
    summary = f.query("quality_summary")
    if summary.empty:
        empty("No scores in this range. `llmvigil evaluate` (or `llmvigil up`) scores new spans.")
        return
    unscored = summary.groupby("evaluator")["unscored"].sum()
    summary = summary[summary["scored"] > 0].copy()
    if summary.empty:
        empty("Nothing was scored in this range (every span was skipped or not sampled).")
        return
    summary["source"] = summary["method"].map(lambda m: "judge" if _judged(m) else "offline")
    summary["unscored"] = summary["evaluator"].map(unscored)
    columns = ["evaluator", "evaluator_version", "source", "scored", "unscored", "mean",
               "pass_rate", "method"]  # fmt: skip
    st.dataframe(
        summary[columns],
        hide_index=True,
        column_config={
            "mean": st.column_config.NumberColumn(format="%.3f"),
            "pass_rate": st.column_config.NumberColumn("pass rate", format="percent"),
            "unscored": st.column_config.NumberColumn(help="skipped, not sampled or no score"),
        },
    )
    series = f.query("quality_series")
    series = series[series["scored"] > 0].copy()
    series["time"] = when(series["bucket"])
    series["series"] = _series_names(series)
    left, right = st.columns(2)
    with left:
        _chart(px.line(series, x="time", y="mean", color="series", markers=True,
                       title="Mean score"), "mean")  # fmt: skip
    with right:
        _chart(px.line(series, x="time", y="pass_rate", color="series", markers=True,
                       title="Pass rate"), "pass")  # fmt: skip
    evaluators = sorted(summary["evaluator"].unique())
    first = evaluators.index("relevance") if "relevance" in evaluators else 0
    evaluator = st.selectbox("Evaluator", evaluators, index=first)
    mine = summary[summary["evaluator"] == evaluator]
    bins = [c for c in mine.columns if c.startswith("b") and c[1:].isdigit()]
    histogram = mine.melt(["method"], bins, "bin", "spans")
    histogram["score"] = histogram["bin"].map(
        lambda b: f"{int(b[1:]) / 10:.1f}–{(int(b[1:]) + 1) / 10:.1f}"
    )
    histogram = histogram.groupby(["method", "score"], as_index=False)["spans"].sum()
    _chart(
        px.bar(
            histogram,
            x="score",
            y="spans",
            color="method",
            barmode="group",
            title=f"{evaluator}: score distribution",
        ),
        "histogram",
    )
    methods = sorted(mine["method"].unique())
    method = st.selectbox("Method", methods) if len(methods) > 1 else methods[0]
    worse = "highest" if evaluator in HIGHER_IS_WORSE else "lowest"
    st.subheader(f"Worst spans ({worse} {evaluator})")
    worst = f.query("worst_spans", evaluator=evaluator, method=method)
    if worst.empty:
        empty("No scored spans.")
        return
    st.dataframe(
        worst[["start_time", "score", "label", "app", "model", "span_id", "trace_id"]],
        hide_index=True,
    )
    for row in worst.head(10).to_dict("records"):
        with st.expander(f"{row['score']:.3f} · span {literal(row['span_id'])}"):
            st.caption("Prompt")
            st.code(row.get("input_text") or "", language=None, wrap_lines=True)
            st.caption("Response")
            st.code(row.get("output_text") or "", language=None, wrap_lines=True)
            st.caption("Details")
            st.json(_json(row.get("details")), expanded=True)


def _sci(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.3g}"


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else (text or {})
    except ValueError:
        return {"text": text}


# -- drift ------------------------------------------------------------------------------------


def drift() -> None:
    """Each feature's drift statistic over time, the flagged runs, the new topics and an
    embedding map of the reference window against the current one."""
    f = frame()
    st.title("Drift")
    runs = f.query("drift_runs")
    if runs.empty:
        empty("No drift runs in this range. `llmvigil drift` (or `llmvigil up`) runs them.")
        return
    features = sorted(runs["feature"].unique())
    picked = st.multiselect("Features", features, default=features)
    mine = runs[runs["feature"].isin(picked)].copy()
    mine["drifted"] = mine["drifted"].fillna(False).astype(bool)
    _chart(
        px.scatter(
            mine,
            x="computed_at",
            y="statistic",
            color="feature",
            symbol="drifted",
            title="Drift statistic per run (symbol: drifted)",
        ),
        "drift",
    )
    flagged = mine[mine["drifted"]]
    st.subheader(f"Flagged ({len(flagged)} of {len(mine)} results)")
    summaries = flagged["details"].map(lambda d: _json(d).get("summary", ""))
    st.dataframe(
        flagged.assign(
            summary=summaries,
            p_value=flagged["p_value"].map(_sci),
            statistic=flagged["statistic"].map(_sci),
        )[["computed_at", "feature", "method", "statistic", "p_value", "threshold", "summary"]],
        hide_index=True,
    )
    embedded = mine[mine["feature"].str.endswith("_embedding")]
    topical = [(r, _json(r["details"])) for r in embedded[embedded["drifted"]].to_dict("records")]
    topical = [(r, d) for r, d in topical if d.get("topics")]
    if topical:
        row, details = topical[0]
        st.subheader(f"New topics ({row['feature']}, {row['computed_at']:%Y-%m-%d %H:%M})")
        for topic in details["topics"]:
            st.markdown(
                f"**{literal(topic.get('label', ''))}** · {topic.get('share', 0):.0%} of the window"
            )
            for example in topic.get("examples", [])[:3]:
                st.text(example.get("text", ""))
    if not embedded.empty:
        latest = embedded.iloc[0]
        points = f.query("embedding_map", run_id=latest["run_id"], feature=latest["feature"])
        if not points.empty:
            _chart(
                px.scatter(
                    points,
                    x="x",
                    y="y",
                    color="window",
                    hover_data={"text": True, "x": False, "y": False},
                    title=f"Embedding map, {latest['feature']} (PCA of stored vectors)",
                ),
                "map",
            )


# -- traces -----------------------------------------------------------------------------------


_SPAN_COLUMNS = {
    "latency_ms": st.column_config.NumberColumn("latency (ms)", format="%.0f"),
    "cost_usd": st.column_config.NumberColumn("cost (USD)", format="%.6f"),
    "total_tokens": st.column_config.NumberColumn("tokens", format="%d"),
    "start_time": st.column_config.DatetimeColumn("start (UTC)", format="YYYY-MM-DD HH:mm:ss"),
}


def traces() -> None:
    """Search spans; open one to see its trace as a tree, with scores and feedback, and rate it."""
    f = frame()
    st.title("Traces")
    top = st.columns([3, 1, 1, 1])
    text = top[0].text_input("Search prompts and responses")
    status = top[1].selectbox("Status", ["(any)", "ok", "error"])
    kind = top[2].selectbox(
        "Kind", ["(any)", "llm", "chain", "tool", "retrieval", "agent", "other"]
    )
    page = top[3].number_input("Page", min_value=1, value=1, step=1)
    more = st.columns(4)
    user_id = more[0].text_input("User")
    session_id = more[1].text_input("Session")
    evaluator = more[2].text_input("Score of evaluator", placeholder="relevance")
    low, high = more[3].slider("Score range", 0.0, 1.0, (0.0, 1.0), 0.05)
    params: dict[str, Any] = {"limit": 50, "offset": (int(page) - 1) * 50}
    for name, value in (("text", text), ("user_id", user_id), ("session_id", session_id)):
        if value:
            params[name] = value
    if status != "(any)":
        params["status"] = status
    if kind != "(any)":
        params["kind"] = kind
    if evaluator and (low, high) != (0.0, 1.0):
        params |= {"evaluator": evaluator, "min_score": low, "max_score": high}
    found = f.query("search_spans", **params)
    if found.empty:
        empty("No spans match.")
        return
    picked = st.dataframe(
        found[
            [
                "start_time",
                "name",
                "kind",
                "app",
                "model",
                "status",
                "latency_ms",
                "total_tokens",
                "cost_usd",
                "input_text",
                "output_text",
                "trace_id",
                "span_id",
            ]
        ],
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="spans",
        column_config=_SPAN_COLUMNS,
    )
    rows = picked.selection.rows if picked is not None else []
    trace_id = st.query_params.get("trace")
    if rows:
        trace_id = str(found.iloc[rows[0]]["trace_id"])
        if st.query_params.get("trace") != trace_id:
            st.query_params["trace"] = trace_id
    if trace_id:
        trace(trace_id)
    else:
        st.caption("Select a span to open its trace.")


def trace(trace_id: str) -> None:
    """One trace as a tree: each span's input, output, timings, tokens, cost, scores, feedback."""
    f = frame()
    spans = f.raw("trace_spans", trace_id=trace_id)
    st.subheader(f"Trace {literal(trace_id)}: {len(spans)} spans")
    if spans.empty:
        empty("This trace has no stored spans.")
        return
    ids = spans["span_id"].tolist()
    scores = f.raw("span_scores", span_ids=ids)
    feedback = f.raw("span_feedback", span_ids=ids, trace_id=trace_id)
    for depth, span in _tree(spans.to_dict("records")):
        status = "error" if span["status"] == "error" else "ok"
        label = (
            f"{'— ' * depth}{literal(span['name'])} · {span['kind']} · {status} · "
            f"{span['latency_ms']:,.0f} ms"
        )
        with st.expander(label, expanded=depth == 0):
            cells = st.columns(5)
            cells[0].metric("Latency (ms)", _number(span["latency_ms"]))
            cells[1].metric("Tokens", _number(span.get("total_tokens")))
            cells[2].metric("Cost (USD)", _number(span.get("cost_usd"), 6))
            cells[3].metric("Model", str(span.get("model") or "–"))
            cells[4].metric("TTFT (ms)", _number(span.get("ttft_ms")))
            st.text(f"span {span['span_id']}  started {span['start_time']}  app {span.get('app')}")
            if span.get("error_message"):
                st.caption("Error")
                st.code(f"{span.get('error_type')}: {span['error_message']}", language=None)
            st.caption("Input")
            st.code(span.get("input_text") or "", language=None, wrap_lines=True)
            st.caption("Output")
            st.code(span.get("output_text") or "", language=None, wrap_lines=True)
            mine = scores[scores["span_id"] == span["span_id"]]
            if not mine.empty:
                st.caption("Scores")
                st.dataframe(
                    mine[["evaluator", "score", "label", "passed", "method"]], hide_index=True
                )
            theirs = feedback[(feedback["span_id"] == span["span_id"])]
            if not theirs.empty:
                st.caption("Feedback")
                st.dataframe(
                    theirs[["created_at", "name", "score", "label", "comment", "source", "author"]],
                    hide_index=True,
                )
            _rate(span)


def _tree(spans: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Spans in tree order (parents before children, siblings by start), with their depth."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span.get("parent_id") if span.get("parent_id") in ids else None
        children.setdefault(parent, []).append(span)
    out: list[tuple[int, dict[str, Any]]] = []
    stack = [(0, s) for s in reversed(children.get(None, []))]
    while stack:
        depth, span = stack.pop()
        out.append((depth, span))
        stack.extend((depth + 1, c) for c in reversed(children.get(span["span_id"], [])))
    return out


def _rate(span: dict[str, Any]) -> None:
    f = frame()
    with st.form(f"rate_{span['span_id']}", clear_on_submit=True):
        verdict = st.radio("Rate this span", ["👍 good", "👎 bad"], horizontal=True)
        comment = st.text_input("Comment (optional)")
        if st.form_submit_button("Save rating"):
            good = verdict.startswith("👍")
            f.source.rate(
                span["span_id"],
                span.get("trace_id"),
                name="rating",
                score=1.0 if good else 0.0,
                label="good" if good else "bad",
                comment=comment or None,
                source="dashboard",
            )
            st.success("Rating saved.")


# -- alerts -----------------------------------------------------------------------------------


def alerts() -> None:
    """The configured rules and their states, the history of events, deliveries and hook runs."""
    f = frame()
    st.title("Alerts")
    rules = pd.DataFrame(
        [
            {
                "rule": r.name,
                "metric": r.metric,
                "op": r.op,
                "threshold": r.threshold,
                "window": r.window,
                "severity": r.severity,
                "channels": ", ".join(r.channels),
                "hooks": ", ".join(r.hooks),
            }
            for r in f.settings.alerts
        ]
    )
    states = f.query("alert_states")
    firing = int((states["state"] == "firing").sum()) if not states.empty else 0
    st.metric("Firing now", firing)
    st.subheader("Rules")
    if rules.empty:
        empty("No [[alerts]] rules are configured in llmvigil.toml.")
    else:
        if not states.empty:
            rules = rules.merge(states, on="rule", how="left")
        st.dataframe(rules, hide_index=True)
    for title, name in (
        ("Events", "alert_events"),
        ("Deliveries", "alert_deliveries"),
        ("Hook runs", "hook_runs"),
    ):
        st.subheader(title)
        table = f.query(name)
        if table.empty:
            st.caption(f"No {title.lower()} in this range.")
        else:
            st.dataframe(table, hide_index=True)


# -- sessions ---------------------------------------------------------------------------------


def sessions() -> None:
    """Conversations by session and user, with their cost and scores; open one to read it."""
    f = frame()
    st.title("Sessions")
    top = st.columns([2, 1])
    user_id = top[0].text_input("User")
    page = top[1].number_input("Page", min_value=1, value=1, step=1)
    params: dict[str, Any] = {"limit": 50, "offset": (int(page) - 1) * 50}
    if user_id:
        params["user_id"] = user_id
    table = f.query("sessions", **params)
    if table.empty:
        empty("No sessions in this range (spans carry a session when the app sets session_id).")
        return
    scores = f.query("session_scores", session_ids=table["session_id"].tolist())
    if not scores.empty:
        wide = scores.pivot_table(
            index="session_id", columns="evaluator", values="mean"
        ).reset_index()
        table = table.merge(wide, on="session_id", how="left")
    picked = st.dataframe(
        table, hide_index=True, on_select="rerun", selection_mode="single-row", key="sessions"
    )
    rows = picked.selection.rows if picked is not None else []
    if not rows:
        st.caption("Select a session to read it.")
        return
    session_id = str(table.iloc[rows[0]]["session_id"])
    spans = f.raw("session_spans", session_id=session_id)
    st.subheader(f"Session {literal(session_id)}: {len(spans)} spans")
    for span in spans.to_dict("records"):
        if span["kind"] != "llm" and not span.get("input_text"):
            continue
        with st.chat_message("user"):
            st.text(span.get("input_text") or "")
        with st.chat_message("assistant"):
            st.text(span.get("output_text") or "")
            st.caption(
                f"{span['start_time']} · {span.get('model') or ''} · {span['latency_ms']:,.0f} ms"
            )
