"""Drift: compare a current window of spans with a reference window, feature by feature.

Features (``[drift] features``): latency_ms, ttft_ms, input_length, output_length,
prompt_tokens, completion_tokens, cost_usd, error_rate, model, input_embedding,
output_embedding and ``score.<evaluator>``. The statistics are Evidently's
(:mod:`.stats`); :func:`run_drift` stores one row per feature in
``drift_results`` and says in each row's ``details`` what changed.
"""

from llmvigil.evaluators.drift.run import DriftReport, alert_values, drift_job, run_drift
from llmvigil.evaluators.drift.windows import Windows

__all__ = ["DriftReport", "Windows", "alert_values", "drift_job", "run_drift"]
