"""Evidently's drift tests, called directly on one feature's two samples.

The tests are Evidently's (``evidently.legacy.calculations.stattests`` for
columns, ``evidently.legacy.metrics.data_drift.embedding_drift_methods`` for
embeddings); what is ours is which test runs on which feature and at which
threshold. A whole Evidently ``Report`` is not used: it renders charts for
every column (a t-SNE of the embeddings alone takes about 14 s on 5,000 rows),
while calling its methods directly gives the same numbers in milliseconds.

Defaults, per feature kind:

- numbers and categories: ``auto``, Evidently's own choice. Up to 1,000
  reference rows a p-value test (K-S for numbers, chi-square for categories,
  Z for two values); above, a distance (normed Wasserstein for numbers,
  Jensen-Shannon for categories, threshold 0.1). At 100,000 rows a p-value
  test calls a shift of a few percent drift, which is real but not worth an
  alert; a distance grows with the size of the shift, not the sample.
- p-value tests at ``[drift] p_value_threshold`` (0.01), not Evidently's 0.05:
  a run tests about twelve features, and at 0.05 one of them would drift by
  chance in almost half of the runs where nothing changed.
- embeddings: Evidently's ``model`` method (a classifier told to separate the
  two windows; drift when its ROC AUC on held-out rows passes 0.55), with its
  bootstrap against random guessing below 1,000 reference rows, as Evidently's
  own embedding metric does, at the 99th percentile to match the 1 % above.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

# Evidently's UI service sends usage pings unless this is set; the tests used here make no
# calls, but a user's own Evidently use in the same process should stay offline too.
os.environ.setdefault("DO_NOT_TRACK", "1")

from llmvigil.errors import ConfigError

EMBEDDING_METHODS = ("model", "distance", "ratio", "mmd")
CATEGORY_FEATURES = ("model", "error_rate")
EMBEDDING_FEATURES = ("input_embedding", "output_embedding")
#: Reference rows from which Evidently turns from p-value tests to distances.
LARGE_SAMPLE = 1_000


@dataclass(frozen=True, slots=True)
class TestResult:
    """One feature's verdict: the number compared with ``threshold``, and whether it drifted."""

    method: str
    statistic: float
    #: None when the bar is a bootstrap percentile rather than a fixed threshold.
    threshold: float | None
    drifted: bool
    is_p_value: bool

    @property
    def p_value(self) -> float | None:
        """The statistic when it is a p-value, else None."""
        return self.statistic if self.is_p_value else None


@cache
def _stattests() -> Any:
    try:
        from evidently.legacy.calculations import stattests
    except ImportError as exc:
        raise ConfigError(
            f'drift needs Evidently ({exc}); install it with `pip install "llmvigil[evaluators]"`'
        ) from None
    return stattests


def _column_test_names() -> set[str]:
    _stattests()
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests

    return set(_registered_stat_tests)


def check_method(feature: str, method: str) -> None:
    """Raise :class:`ConfigError` unless ``method`` can test ``feature`` (``[drift] methods``)."""
    if feature in EMBEDDING_FEATURES:
        if method not in EMBEDDING_METHODS:
            raise ConfigError(
                f"[drift] methods.{feature} = {method!r}: an embedding takes one of "
                f"{', '.join(EMBEDDING_METHODS)} (Evidently's embedding drift methods)"
            )
        return
    if method == "auto":
        return
    known = _column_test_names()
    if method not in known:
        raise ConfigError(
            f"[drift] methods.{feature} = {method!r} is not one of Evidently's tests; use auto "
            f"or one of {', '.join(sorted(known))}"
        )


def _is_p_value(test: Any) -> bool:
    # Evidently names its p-value tests so ("K-S p_value", "chi-square p_value"); distances
    # and divergences are named for what they are.
    return "p_value" in test.display_name


def column_test(
    feature: str,
    reference: np.ndarray,
    current: np.ndarray,
    method: str = "auto",
    threshold: float | None = None,
    p_value_threshold: float = 0.01,
) -> TestResult:
    """Evidently's drift test of ``feature`` between two samples (numbers, or category labels
    for ``model`` and ``error_rate``)."""
    import pandas as pd
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Categorical if feature in CATEGORY_FEATURES else ColumnType.Numerical
    ref, cur = pd.Series(reference), pd.Series(current)
    stattests = _stattests()
    test = stattests.get_stattest(ref, cur, kind, None if method == "auto" else method)
    p_value = _is_p_value(test)
    if threshold is None:
        threshold = p_value_threshold if p_value else test.default_threshold
    if pd.concat([ref, cur]).nunique() <= 1:
        # One value everywhere (no errors in either window): nothing moved, and some tests
        # divide by the spread.
        statistic = 1.0 if p_value else 0.0
        return TestResult(test.name, statistic, threshold, False, p_value)
    result = test(ref, cur, kind, threshold)
    statistic = float(result.drift_score)
    if math.isnan(statistic):
        statistic = 1.0 if p_value else 0.0
        return TestResult(test.name, statistic, threshold, False, p_value)
    return TestResult(test.name, statistic, threshold, bool(result.drifted), p_value)


def embedding_test(
    reference: np.ndarray,
    current: np.ndarray,
    method: str = "model",
    threshold: float | None = None,
) -> TestResult:
    """Evidently's embedding drift ``method`` between two sets of sentence vectors."""
    import pandas as pd

    _stattests()
    from evidently.legacy.metrics.data_drift import embedding_drift_methods as methods

    small = len(reference) < LARGE_SAMPLE
    options: dict[str, Any] = {}
    if threshold is not None:
        options["threshold"] = threshold
    if method == "model":
        drift_method = methods.model(bootstrap=small, quantile_probability=0.99, **options)
    elif method == "distance":
        drift_method = methods.distance(dist="cosine", **options)
    elif method == "ratio":
        drift_method = methods.ratio(**options)
    elif method == "mmd":
        drift_method = methods.mmd(bootstrap=small, quantile_probability=0.99, **options)
    else:
        check_method("input_embedding", method)
        raise AssertionError(method)
    # The model method adds a target column to the frames it is given: pass fresh ones.
    score, drifted, name = drift_method(pd.DataFrame(current), pd.DataFrame(reference))
    bootstrapped = bool(getattr(drift_method, "bootstrap", False))
    used = None if bootstrapped else float(drift_method.threshold)
    return TestResult(name, float(score), used, bool(drifted), False)
