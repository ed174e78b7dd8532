"""What an evaluator is: the batch it reads, the scores it returns, the class it derives from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: Fields an evaluator may need from a span.
FIELDS = frozenset({"input", "output", "context", "reference"})


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One span (or dataset line) as an evaluator sees it."""

    id: str
    input: str | None = None
    output: str | None = None
    context: tuple[str, ...] = ()
    reference: str | None = None


@dataclass(slots=True)
class Score:
    """One evaluator's verdict on one item.

    ``score`` is ``None`` when the evaluator could not score the item (for
    example factuality with no context and no reference); ``details`` then says
    why. ``method`` names the model or judge that produced the score.
    """

    id: str
    score: float | None
    method: str
    passed: bool | None = None
    label: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Evaluator(ABC):
    """Base class of every evaluator, built-in or third-party.

    Subclasses set ``name``, ``version`` (bump it to re-score every span),
    ``needs`` (fields that must be present for a score) and ``threshold`` (the
    pass mark), and implement :meth:`evaluate` over a whole batch.

    ``higher_is_better`` is False for scores such as toxicity, where a high
    score is bad; ``passed`` is then ``score < threshold``.

    Example::

        class Politeness(Evaluator):
            name = "politeness"
            version = "1"
            needs = frozenset({"output"})

            def evaluate(self, batch):
                return [self.make_score(i.id, float("please" in i.output), "keyword")
                        for i in batch]
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    needs: ClassVar[frozenset[str]] = frozenset({"output"})
    threshold: ClassVar[float] = 0.5
    higher_is_better: ClassVar[bool] = True

    @abstractmethod
    def evaluate(self, batch: Sequence[EvalItem]) -> list[Score]:
        """Score every item of ``batch``; return one :class:`Score` per item, in order."""

    def make_score(
        self,
        item_id: str,
        score: float | None,
        method: str,
        details: dict[str, Any] | None = None,
        label: str | None = None,
    ) -> Score:
        """Build a :class:`Score`, deriving ``passed`` from the threshold and direction."""
        if score is None:
            passed = None
        elif self.higher_is_better:
            passed = score >= self.threshold
        else:
            passed = score < self.threshold
        return Score(item_id, score, method, passed, label, details or {})
