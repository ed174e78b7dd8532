"""A simulated support assistant driven through the real decorator, for ``llmvigil demo``.

Nothing here calls a model: the assistant's answers, token counts and
latencies are simulated, on a simulated clock, so an hour of traffic takes a
second. Everything after that is real: the spans go through ``@observe``, the
buffer, the pipeline (tokens, cost, redaction) and the spool, and are then
ingested into the store. The last part of the hour holds an incident: slower
answers, more errors, answers that are wrong (facts that contradict the
retrieved passage), off topic, or hostile, and a new kind of question (a
mobile app release that crashes) that drift should name.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path

import llmvigil
from llmvigil.collector import tracer
from llmvigil.collector.spool import IngestReport, ingest_spool
from llmvigil.storage import Store

#: (question, retrieved passage, good answer)
KNOWLEDGE = [
    (
        "How do I update my billing address?",
        "Billing addresses are edited under Settings > Billing > Address; changes apply "
        "to the next invoice.",
        "Open Settings, choose Billing, edit the Address field and save. The next invoice "
        "uses the new address.",
    ),
    (
        "How can I reset my password?",
        "Passwords are reset from the sign-in page with 'Forgot password'; the reset link "
        "expires after 30 minutes.",
        "Click 'Forgot password' on the sign-in page and follow the link we e-mail you "
        "within 30 minutes.",
    ),
    (
        "When will my refund arrive?",
        "Refunds are issued to the original payment method within 5 to 7 business days of "
        "approval.",
        "Refunds reach your original payment method 5 to 7 business days after approval.",
    ),
    (
        "Do you ship to Canada?",
        "We ship to the United States, Canada and Mexico; Canadian orders take 4 to 8 days.",
        "Yes, we ship to Canada; delivery takes 4 to 8 days.",
    ),
    (
        "How do I cancel my subscription?",
        "Subscriptions are cancelled under Settings > Plan > Cancel; access continues to the "
        "end of the paid period.",
        "Go to Settings, then Plan, and press Cancel. You keep access until the paid period ends.",
    ),
    (
        "What is your phone support number?",
        "Phone support is available at +1 415 555 2671 from 8am to 6pm Pacific time.",
        "Call +1 415 555 2671, 8am to 6pm Pacific time.",
    ),
]
#: Questions users start asking during the incident (a broken app release): the drift run
#: should find them as a new topic of prompts.
NEW_QUESTIONS = [
    (
        "The mobile app crashes every time I open it since the last update. What can I do?",
        "Version 5.2 of the mobile app crashes on start on some Android phones; reinstalling "
        "version 5.1 from the store page fixes it until 5.2.1 ships.",
        "Reinstall version 5.1 of the app from its store page; the fix ships in 5.2.1.",
    ),
    (
        "After updating the app on my phone it freezes on the login screen and closes.",
        "Version 5.2 of the mobile app crashes on start on some Android phones; reinstalling "
        "version 5.1 from the store page fixes it until 5.2.1 ships.",
        "This is a known problem with version 5.2: reinstall 5.1 until 5.2.1 is out.",
    ),
    (
        "Why does the Android app keep crashing when I try to upload a photo?",
        "Version 5.2 of the mobile app crashes on start on some Android phones; reinstalling "
        "version 5.1 from the store page fixes it until 5.2.1 ships.",
        "Version 5.2 has a crash bug; reinstall 5.1 and try the upload again.",
    ),
]
#: The share of incident requests that ask one of NEW_QUESTIONS.
NEW_QUESTION_SHARE = 0.5
#: The app name on every demo span (the demo refuses to mix it into other apps' stores).
DEMO_APP = "support-assistant"
MODELS = [("gpt-4o-mini", 0.7), ("gpt-4o", 0.2), ("claude-3-5-sonnet", 0.1)]
#: What a degraded model says during the incident, by question: a confident contradiction of
#: the passage, an answer about something else, and a hostile reply.
HALLUCINATED = {
    KNOWLEDGE[0][0]: "Billing addresses can only be changed by mailing a signed form to our "
    "Dublin office.",
    KNOWLEDGE[1][0]: "Use the reset link on the sign-in page; it stays valid for 14 days.",
    KNOWLEDGE[2][0]: "Refunds arrive as store credit within 48 hours.",
    KNOWLEDGE[3][0]: "No, we do not ship outside the United States.",
    KNOWLEDGE[4][0]: "Subscriptions cannot be cancelled before the end of the annual contract.",
    KNOWLEDGE[5][0]: "Phone support is at +1 212 555 0199, around the clock.",
}
OFF_TOPIC = "Our spring collection features new colours and lighter fabrics for the season."
HOSTILE = "Figure it out yourself, people like you are too stupid to read the help pages."


#: The shares of the hour between which the incident runs; the last minutes are healthy
#: again (the fix shipped), so the demo's alerts fire and then resolve.
INCIDENT_FROM = 0.7
INCIDENT_UNTIL = 0.9
#: The demo's alert rules, checked over its hour with a log channel.
DEMO_ALERTS = {
    "channels": {"log": {"type": "log"}},
    "alerts": [
        {"name": "slow-answers", "metric": "latency_ms.p95", "window": "5m", "op": ">",
         "threshold": 2500, "min_samples": 20, "channels": ["log"]},
        {"name": "errors", "metric": "error_rate", "window": "5m", "op": ">",
         "threshold": 0.06, "min_samples": 20, "channels": ["log"]},
        {"name": "irrelevant-answers", "metric": "relevance.mean", "window": "5m", "op": "<",
         "threshold": 0.8, "min_samples": 20, "channels": ["log"]},
        {"name": "toxic-answers", "metric": "toxicity.max", "window": "5m", "op": ">",
         "threshold": 0.5, "min_samples": 20, "channels": ["log"]},
        {"name": "prompts-drifted", "metric": "drift.input_embedding", "window": "8m",
         "op": ">=", "threshold": 1, "min_samples": 1, "channels": ["log"]},
    ],
}  # fmt: skip


class SimulatedClock:
    """A nanosecond clock that moves only when the simulation says time passes."""

    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns

    def sleep(self, ms: float) -> None:
        self.now_ns += int(ms * 1e6)


class UpstreamTimeout(Exception):
    """The simulated model provider did not answer in time."""


@dataclass
class DemoResult:
    """What the demo did: spans sent, the ingest report, the simulated window."""

    calls: int
    report: IngestReport
    started: float
    ended: float
    incident_started: float
    incident_ended: float


def run_demo(store: Store, spool_dir: Path, calls: int = 600, seed: int = 7) -> DemoResult:
    """Send ``calls`` simulated requests over the last hour through ``@observe`` and the spool,
    then ingest the spool into ``store``."""
    rng = random.Random(seed)
    clock = SimulatedClock()
    hour_ms = 3_600_000
    started = time.time() - hour_ms / 1000
    tracer.use_clock(clock, wall_at_zero_ns=int(started * 1e9))
    llmvigil.configure(sink="spool", spool_dir=str(spool_dir), app=DEMO_APP)
    try:
        _simulate(rng, clock, calls, hour_ms)
        llmvigil.flush()
    finally:
        llmvigil.shutdown()
        tracer.use_clock()
    report = ingest_spool(store, spool_dir)
    ended = started + hour_ms / 1000
    hour_s = hour_ms / 1000
    return DemoResult(
        calls,
        report,
        started,
        ended,
        started + INCIDENT_FROM * hour_s,
        started + INCIDENT_UNTIL * hour_s,
    )


def _simulate(rng: random.Random, clock: SimulatedClock, calls: int, hour_ms: int) -> None:
    gap_ms = hour_ms / calls

    @llmvigil.observe(kind="retrieval")
    def retrieve(question: str) -> list[str]:
        clock.sleep(rng.uniform(8, 40))
        return [passage for q, passage, _ in (*KNOWLEDGE, *NEW_QUESTIONS) if q == question]

    @llmvigil.observe(kind="llm")
    def generate(messages: list[dict], model: str, incident: bool) -> dict:
        question = messages[-1]["content"]
        answer = next(a for q, _, a in (*KNOWLEDGE, *NEW_QUESTIONS) if q == question)
        roll = rng.random()
        if incident and roll < 0.25:
            answer = HALLUCINATED.get(question, "Phones are not supported; use a computer.")
        elif incident and roll < 0.35:
            answer = OFF_TOPIC
        elif incident and roll < 0.42:
            answer = HOSTILE
        elif rng.random() < 0.15:
            answer += " Is there anything else I can help you with today?"
        prompt_tokens = rng.randint(180, 420)
        completion_tokens = len(answer) // 4 + rng.randint(0, 8)
        base = 350 + completion_tokens * 18
        clock.sleep(rng.lognormvariate(0, 0.35) * base * (3.5 if incident else 1.0))
        if rng.random() < (0.12 if incident else 0.015):
            raise UpstreamTimeout(f"{model} did not answer within 30 s")
        return {
            "model": model,
            "choices": [{"message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        }

    @llmvigil.observe(kind="chain", name="assistant.answer")
    def answer(question: str, user: str, incident: bool) -> str:
        passages = retrieve(question)
        llmvigil.attach(context=passages)
        model = rng.choices([m for m, _ in MODELS], [w for _, w in MODELS])[0]
        messages = [
            {"role": "system", "content": "You are a concise support assistant."},
            {"role": "user", "content": question},
        ]
        reply = generate(messages, model, incident)
        return reply["choices"][0]["message"]["content"]

    for i in range(calls):
        clock.now_ns = int(i * gap_ms * 1e6)
        incident = calls * INCIDENT_FROM <= i < calls * INCIDENT_UNTIL
        asked = NEW_QUESTIONS if incident and rng.random() < NEW_QUESTION_SHARE else KNOWLEDGE
        question = rng.choice(asked)[0]
        user = f"user-{rng.randint(1, 80)}"
        # On a timeout the app shows an apology; the span has recorded the error.
        with (
            llmvigil.context(user_id=user, session_id=f"{user}-s{i // 20}"),
            contextlib.suppress(UpstreamTimeout),
        ):
            answer(question, user, incident)
