"""One drift run: read both windows, test every feature with Evidently, say what changed, store it.

Example::

    from llmvigil.config import load_settings
    from llmvigil.evaluators.drift import run_drift

    report = run_drift(store, load_settings().drift, app="support-bot")
    for row in report.rows:
        print(row["feature"], row["drifted"], row["details"].get("summary"))
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from llmvigil.config import DRIFT_FEATURES, DriftSettings
from llmvigil.evaluators.drift import features as F
from llmvigil.evaluators.drift.sample import sample_ids, span_texts, vectors_for
from llmvigil.evaluators.drift.stats import (
    EMBEDDING_FEATURES,
    TestResult,
    column_test,
    embedding_test,
)
from llmvigil.evaluators.drift.windows import Windows, resolve_windows
from llmvigil.storage.drift import DRIFT_FILTERS

log = logging.getLogger("llmvigil.drift")

_EMBEDDING_STATISTIC = {
    "model": "classifier ROC AUC",
    "distance": "cosine distance of the means",
    "ratio": "share of drifted components",
    "mmd": "MMD",
}
#: Category shares listed in ``details`` for ``model``, largest first.
_SHOWN_CATEGORIES = 10


@dataclass
class DriftReport:
    """What a run found: one row per feature (as stored), the windows, the run's id."""

    windows: Windows
    filters: dict[str, str | None]
    rows: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None
    seconds: float = 0.0

    @property
    def tested(self) -> list[dict[str, Any]]:
        """The rows of features that were tested (not skipped)."""
        return [r for r in self.rows if not r["skipped"]]

    @property
    def share(self) -> float | None:
        """``drift.share``: the share of tested features that drifted (None if none tested)."""
        tested = self.tested
        return sum(r["drifted"] for r in tested) / len(tested) if tested else None

    @property
    def drifted(self) -> list[str]:
        """Names of the features that drifted."""
        return [r["feature"] for r in self.rows if r["drifted"]]


def alert_values(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The values alerts read from one run's rows: ``drift.share`` and ``drift.<feature>``.

    ``drift.<feature>`` is 1.0 when the feature drifted and 0.0 when it did not;
    skipped features have no value (an alert on them has no data, not an OK).
    """
    tested = [r for r in rows if not r["skipped"]]
    values = {f"drift.{r['feature']}": 1.0 if r["drifted"] else 0.0 for r in tested}
    if tested:
        values["drift.share"] = sum(r["drifted"] for r in tested) / len(tested)
    return values


# -- details ----------------------------------------------------------------------------


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def _number_details(ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    ref_median, cur_median = float(np.median(ref)), float(np.median(cur))
    shift = cur_median - ref_median
    relative = shift / abs(ref_median) if ref_median else None
    details = {
        "reference_median": _round(ref_median),
        "current_median": _round(cur_median),
        "shift": _round(shift),
        "relative_shift": _round(relative),
        "reference_p95": _round(float(np.percentile(ref, 95))),
        "current_p95": _round(float(np.percentile(cur, 95))),
    }
    change = f" ({relative:+.0%})" if relative is not None else ""
    # The p95 too: a shift in the tail (a few toxic answers) leaves the median where it was.
    details["summary"] = (
        f"median {ref_median:,.4g} -> {cur_median:,.4g}{change}, "
        f"p95 {details['reference_p95']:,.4g} -> {details['current_p95']:,.4g}"
    )
    return details


def _shares(values: np.ndarray) -> dict[str, float]:
    counts = Counter(values.tolist())
    total = sum(counts.values())
    return {str(k): round(v / total, 4) for k, v in counts.most_common()}


def _category_details(ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    before, after = _shares(ref), _shares(cur)
    moved = sorted(
        set(before) | set(after),
        key=lambda k: -abs(after.get(k, 0.0) - before.get(k, 0.0)),
    )
    shown = moved[:3]
    return {
        "reference_shares": dict(list(before.items())[:_SHOWN_CATEGORIES]),
        "current_shares": dict(list(after.items())[:_SHOWN_CATEGORIES]),
        "new": [k for k in after if k not in before][:_SHOWN_CATEGORIES],
        "gone": [k for k in before if k not in after][:_SHOWN_CATEGORIES],
        "summary": ", ".join(
            f"{k} {before.get(k, 0.0):.0%} -> {after.get(k, 0.0):.0%}" for k in shown
        ),
    }


def _error_details(ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    before, after = float(ref.mean()), float(cur.mean())
    return {
        "reference_rate": round(before, 6),
        "current_rate": round(after, 6),
        "shift": round(after - before, 6),
        "summary": f"errors {before:.1%} -> {after:.1%} of spans",
    }


# -- the run ----------------------------------------------------------------------------


class _Run:
    def __init__(self, store, settings: DriftSettings, windows: Windows, filters, encoder):
        self.store = store
        self.settings = settings
        self.windows = windows
        self.filters = filters
        self.encoder = encoder
        self.rows: list[dict[str, Any]] = []
        #: (prompt, response) by span id, for the topics of drifted embeddings.
        self.texts: dict[str, tuple[str | None, str | None]] = {}
        self.ref_conditions = F.span_filters(
            windows.reference_start, windows.reference_end, filters
        )
        self.cur_conditions = F.span_filters(windows.current_start, windows.current_end, filters)

    def wanted(self, feature: str) -> bool:
        chosen = self.settings.features
        if feature.startswith("score."):
            return feature in chosen or "score.*" in chosen
        return feature in chosen

    def add(
        self,
        feature: str,
        ref_count: int,
        cur_count: int,
        result: TestResult | None,
        details: dict[str, Any],
        method: str = "none",
    ) -> None:
        skipped = result is None
        self.rows.append(
            {
                "feature": feature,
                "method": result.method if result else method,
                "statistic": None if result is None else _round(result.statistic),
                "p_value": None if result is None else _round(result.p_value),
                "threshold": None if result is None else result.threshold,
                "drifted": False if result is None else result.drifted,
                "skipped": skipped,
                "reference_count": ref_count,
                "current_count": cur_count,
                "details": details,
            }
        )

    def too_few(self, feature: str, ref_count: int, cur_count: int) -> str | None:
        minimum = self.settings.min_count
        for window, count in (("reference", ref_count), ("current", cur_count)):
            if count < minimum:
                return (
                    f"the {window} window has {count} values of {feature}, fewer than "
                    f"[drift] min_count = {minimum}"
                )
        return None

    def test(self, feature: str, ref: np.ndarray, cur: np.ndarray, describe) -> None:
        reason = self.too_few(feature, len(ref), len(cur))
        if reason:
            self.add(feature, len(ref), len(cur), None, {"reason": reason})
            return
        result = column_test(
            feature,
            ref,
            cur,
            self.settings.methods.get(feature, "auto"),
            self.settings.thresholds.get(feature),
            self.settings.p_value_threshold,
        )
        self.add(feature, len(ref), len(cur), result, describe(ref, cur))

    def columns(self) -> None:
        ref = F.window_columns(self.store, self.ref_conditions)
        cur = F.window_columns(self.store, self.cur_conditions)
        for feature in F.NUMERIC_COLUMNS:
            if self.wanted(feature):
                self.test(
                    feature,
                    F.numbers(ref, feature),
                    F.numbers(cur, feature),
                    _number_details,
                )
        if self.wanted("error_rate"):
            self.test(
                "error_rate", F.numbers(ref, "is_error"), F.numbers(cur, "is_error"), _error_details
            )
        if self.wanted("model"):
            self.test("model", F.labels(ref, "model"), F.labels(cur, "model"), _category_details)

    def scores(self) -> None:
        ref = F.window_scores(self.store, self.ref_conditions)
        cur = F.window_scores(self.store, self.cur_conditions)
        for name, (version, a, b) in F.pick_versions(ref, cur).items():
            feature = f"score.{name}"
            if not self.wanted(feature):
                continue
            if version is None:
                lacking = "reference" if len(a) == 0 else "current"
                reason = f"no scores from {name} in the {lacking} window"
                if len(a) and len(b):
                    reason = f"{name} scored the two windows with different versions"
                self.add(feature, len(a), len(b), None, {"reason": reason})
                continue

            def describe(x: np.ndarray, y: np.ndarray, v: str = version) -> dict[str, Any]:
                return {**_number_details(x, y), "evaluator_version": v}

            self.test(feature, a, b, describe)

    def embeddings(self) -> None:
        fields = [(f, f.split("_")[0]) for f in EMBEDDING_FEATURES if self.wanted(f)]
        if not fields:
            return
        size = self.settings.embedding_sample
        ref_ids = sample_ids(self.store, self.ref_conditions, size)
        cur_ids = sample_ids(self.store, self.cur_conditions, size)
        ref = vectors_for(self.store, ref_ids, self.encoder)
        cur = vectors_for(self.store, cur_ids, self.encoder)
        for feature, half in fields:
            a, b = ref[half], cur[half]
            counts = {"stored": a.stored + b.stored, "embedded": a.embedded + b.embedded}
            reason = self.too_few(feature, len(a.span_ids), len(b.span_ids))
            if reason:
                self.add(
                    feature, len(a.span_ids), len(b.span_ids), None, {"reason": reason, **counts}
                )
                continue
            method = self.settings.methods.get(feature, "model")
            result = embedding_test(
                a.vectors, b.vectors, method, self.settings.thresholds.get(feature)
            )
            details: dict[str, Any] = {"sample": size, **counts}
            if result.drifted:
                details.update(self.topics(half, a, b))
            else:
                what = "prompts" if half == "input" else "responses"
                measure = _EMBEDDING_STATISTIC.get(result.method, result.method)
                details["summary"] = f"{what} alike ({measure} {result.statistic:.3g})"
            self.add(feature, len(a.span_ids), len(b.span_ids), result, details)

    def topics(self, half: str, ref, cur) -> dict[str, Any]:
        from llmvigil.evaluators.drift.topics import novel_topics

        position = 0 if half == "input" else 1
        # Read once for both halves: each row holds the span's prompt and its response.
        wanted = [i for i in (*ref.span_ids, *cur.span_ids) if i not in self.texts]
        if wanted:
            self.texts.update(span_texts(self.store, wanted))
        texts = self.texts
        what = "prompts" if half == "input" else "responses"
        try:
            found = novel_topics(
                ref.vectors,
                cur.vectors,
                cur.span_ids,
                [texts[i][position] or "" for i in cur.span_ids],
                [texts[i][position] or "" for i in ref.span_ids],
                max_topics=self.settings.max_topics,
            )
        except Exception as exc:  # the explanation must not cost the verdict and its alert
            log.exception("could not find the new %s", what)
            found = {"topics": [], "reason": f"new topics not found: {exc}"}
        topics = found.get("topics") or []
        found["summary"] = (
            f"new {what}: " + "; ".join(f"{t['label']} ({t['share']:.0%})" for t in topics[:3])
            if topics
            else f"{what} moved, with no distinct new topic"
        )
        return found


def run_drift(
    store,
    settings: DriftSettings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    reference_since: datetime | None = None,
    reference_until: datetime | None = None,
    app: str | None = None,
    model: str | None = None,
    environment: str | None = None,
    prompt_version: str | None = None,
    kind: str | None = "default",
    now: datetime | None = None,
    encoder=None,
    write: bool = True,
) -> DriftReport:
    """Compare the current window with the reference window feature by feature; store the rows.

    ``kind="default"`` takes ``[drift] kind``; ``None`` compares every span kind.
    ``encoder`` embeds what has no stored vector (default: the shared model). The rows
    are written in one transaction unless ``write`` is False.
    """
    started = time.perf_counter()
    filters = {
        "app": app,
        "model": model,
        "environment": environment,
        "prompt_version": prompt_version,
        "kind": settings.kind if kind == "default" else kind,
    }
    assert tuple(filters) == DRIFT_FILTERS
    windows = resolve_windows(
        settings.window,
        since=since,
        until=until,
        reference_since=reference_since,
        reference_until=reference_until,
        pinned=store.baseline(filters),
        configured=(settings.reference_since, settings.reference_until),
        now=now,
    )
    if encoder is None:
        from llmvigil.evaluators.vectors import shared_vectors

        encoder = shared_vectors()
    run = _Run(store, settings, windows, filters, encoder)
    run.columns()
    run.scores()
    run.embeddings()
    order = {name: i for i, name in enumerate(DRIFT_FEATURES)}
    run.rows.sort(key=lambda r: (order.get(r["feature"], len(order)), r["feature"]))
    report = DriftReport(windows, filters, run.rows)
    # A run "as of" a given moment (a backfill, the demo) is stored as computed then.
    computed_at = datetime.now(UTC) if now is None else now
    if computed_at.tzinfo is not None:
        computed_at = computed_at.astimezone(UTC).replace(tzinfo=None)
    stored = [
        {
            **row,
            "computed_at": computed_at,
            "reference_start": windows.reference_start,
            "reference_end": windows.reference_end,
            "current_start": windows.current_start,
            "current_end": windows.current_end,
            **filters,
        }
        for row in run.rows
    ]
    if write:
        report.run_id = store.write_drift_results(stored)
    report.seconds = time.perf_counter() - started
    log.info(
        "drift run: %d features, %d drifted, %d skipped in %.2f s",
        len(run.rows),
        len(report.drifted),
        len(run.rows) - len(report.tested),
        report.seconds,
    )
    return report


def drift_job(store, settings: DriftSettings) -> Callable[[], DriftReport]:
    """The scheduled drift run: every ``[drift] interval_s``, the last window, stored.

    Given to APScheduler by ``llmvigil evaluate --watch`` and the long-running process::

        add_interval_job(scheduler, drift_job(store, settings.drift), settings.drift.interval_s,
                         "drift")
    """

    def job() -> DriftReport:
        report = run_drift(store, settings)
        log.info("drift: %s", ", ".join(report.drifted) or "nothing drifted")
        return report

    return job
