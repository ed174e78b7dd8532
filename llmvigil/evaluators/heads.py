"""Logistic-regression heads shipped as JSON weights: relevance, completeness, framing.

Each is trained by its script in ``scripts/`` on public or our own labelled
lines and read here once per process. A file that is missing, unreadable, of
another head or over other features is an :class:`EvaluatorError` that says
how to get a right one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from llmvigil.errors import EvaluatorError

H = TypeVar("H", bound="LogisticHead")


@dataclass(frozen=True)
class LogisticHead:
    """Weights ``coef`` and ``intercept`` of a logistic regression, and their version."""

    coef: np.ndarray
    intercept: float
    version: str

    @classmethod
    def read(
        cls: type[H],
        path: Path | str,
        what: str,
        weights_format: str,
        script: str,
        features: tuple[str, ...] | None = None,
    ) -> H:
        """Read a weights file of ``weights_format`` (over ``features``, when given)."""
        path = Path(path)
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise EvaluatorError(
                f"{what} weights not found at {path}; run `python {script}` or reinstall llmvigil"
            ) from None
        except (OSError, ValueError) as exc:
            raise EvaluatorError(f"cannot read {what} weights {path}: {exc}") from exc
        wrong_features = features is not None and tuple(data.get("features", ())) != features
        if data.get("format") != weights_format or wrong_features:
            over = f" for features {features}" if features is not None else ""
            raise EvaluatorError(
                f"{path} is not a {what} head{over} (format {data.get('format')!r}, expected "
                f"{weights_format!r}); retrain it with `python {script}`"
            )
        return cls(
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),
            version=str(data["version"]),
        )

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The positive class's probability for each row of ``features``."""
        z = features.astype(np.float64) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))
