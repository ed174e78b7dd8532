"""Spans with known distributions for the drift tests: two windows, each feature controllable."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.storage.spans_factory import make_span

NOW = datetime(2026, 12, 1, 12, 0)
HOUR = timedelta(hours=1)
#: The current window is the last hour before NOW; the reference is the hour before it.
CURRENT = (NOW - HOUR, NOW)
REFERENCE = (NOW - 2 * HOUR, NOW - HOUR)

SUPPORT = [
    "How do I update my billing address?",
    "Why was I charged twice this month?",
    "Can I get a refund for my last invoice?",
    "How do I reset my password?",
    "Where is my package? It has not arrived yet.",
    "How do I change my shipping address?",
    "My card was declined, what should I do?",
    "How can I download my invoices as PDF?",
    "Can I switch my plan to the annual one?",
    "How long does delivery take to Canada?",
    "How do I add a second user to my account?",
    "Can I pause my subscription for a month?",
]
CRASHES = [
    "The app crashes when I open it after the update.",
    "Android app keeps crashing on startup since version 5.",
    "After updating, the iPhone app freezes and closes itself.",
    "The mobile app crashes whenever I tap the camera button.",
    "Since the latest release the app shuts down on the login screen.",
]
OPENERS = ["", "Hi, ", "Hello! ", "Quick question: ", "Hey there, "]
CLOSERS = ["", " Thanks.", " Please help.", " I need this today.", " Thank you!"]
ANSWERS = [
    "Open Settings, choose Billing and edit the address.",
    "Refunds reach your card within 5 to 7 business days.",
    "Use 'Forgot password' on the sign-in page.",
    "Delivery takes 4 to 8 days.",
]


def phrase(rng: random.Random, pool: list[str]) -> str:
    """One question from ``pool`` with varied wording around it."""
    return rng.choice(OPENERS) + rng.choice(pool) + rng.choice(CLOSERS)


@dataclass
class Window:
    """How one window's spans are drawn."""

    latency: tuple[float, float] = (800.0, 150.0)
    new_topic_share: float = 0.0
    models: dict[str, float] = field(default_factory=lambda: {"gpt-4o-mini": 0.8, "gpt-4o": 0.2})
    error_share: float = 0.02
    score: tuple[float, float] = (0.85, 0.08)


def draw(
    rng: random.Random, window: Window, bounds: tuple[datetime, datetime], count: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` spans over ``bounds``, drawn as ``window`` says, and their relevance scores."""
    start, end = bounds
    step = (end - start) / count
    spans, scores = [], []
    models, weights = zip(*window.models.items(), strict=True)
    for i in range(count):
        moment = start + step * i
        question = phrase(rng, CRASHES if rng.random() < window.new_topic_share else SUPPORT)
        error = rng.random() < window.error_share
        latency = max(1.0, rng.gauss(*window.latency))
        prompt_tokens = rng.randint(150, 400)
        span = make_span(
            0,
            span_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            start_time=moment,
            end_time=moment + timedelta(milliseconds=latency),
            latency_ms=latency,
            model=rng.choices(models, weights)[0],
            input_text=question,
            output_text=None if error else rng.choice(ANSWERS),
            status="error" if error else "ok",
            prompt_tokens=prompt_tokens,
            completion_tokens=rng.randint(20, 80),
            cost_usd=prompt_tokens * 2.5e-6,
            app="support",
        )
        spans.append(span)
        if not error:
            value = min(1.0, max(0.0, rng.gauss(*window.score)))
            scores.append(
                {
                    "span_id": span["span_id"],
                    "evaluator": "relevance",
                    "evaluator_version": "2",
                    "score": value,
                    "method": "test",
                }
            )
    return spans, scores


def fill(
    store,
    reference: Window,
    current: Window,
    count: int = 400,
    seed: int = 0,
    reference_bounds: tuple[datetime, datetime] = REFERENCE,
    current_bounds: tuple[datetime, datetime] = CURRENT,
    scores: bool = True,
) -> None:
    """Store both windows' spans and (unless ``scores`` is false) their relevance scores."""
    rng = random.Random(seed)
    for window, bounds in ((reference, reference_bounds), (current, current_bounds)):
        spans, relevance = draw(rng, window, bounds, count)
        store.append_spans(spans)
        if scores:
            store.write_evaluations(relevance)


class CountingEncoder:
    """The real shared model, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        from llmvigil.evaluators.vectors import shared_vectors

        self.inner = shared_vectors()
        self.texts = 0

    def encode(self, texts):
        self.texts += len(texts)
        return self.inner.encode(texts)
