"""The optional LLM judge: ragas faithfulness and answer relevancy on an OpenAI-compatible endpoint.

Two evaluators, added by the runner only when ``[judge]`` is configured (they
are not registered with :func:`~llmvigil.evaluators.registry.register`)::

    from llmvigil.evaluators.judge import judge_evaluators

    for evaluator in judge_evaluators(settings.judge):
        scores = evaluator.evaluate(batch)

* ``relevance_judge``: ragas ``AnswerRelevancy``. The judge writes questions
  the response would answer; the score is their mean cosine similarity (by the
  endpoint's embedding model) to the real question, 0 when the judge calls
  every answer noncommittal. ``details``: the generated questions.
* ``factuality_judge``: ragas ``Faithfulness``. The judge splits the response
  into statements and gives each a verdict against the evidence (the context
  passages and the reference answer); the score is the share supported.
  ``details``: each statement with its verdict and reason. No context and no
  reference: no score, and ``details["reason"]`` says so.

``method`` is ``ragas:faithfulness:<model>`` / ``ragas:answer_relevancy:<model>``.

Failures never leave :meth:`~llmvigil.evaluators.base.Evaluator.evaluate`:
an item the judge could not score (HTTP error, a reply of the wrong shape, no
answer within ``timeout_s``) gets ``score=None``, ``label="judge_error"`` and
``details={"error": "<type>: <message>"}``; the offline scores are untouched.
Each item has ``timeout_s`` for all of its judge calls together, items are
scored :data:`CONCURRENCY` at a time, and after :data:`MAX_FAILURES_IN_A_ROW`
failures in a row the rest of the batch is not sent (each of those items gets
a ``judge_error`` saying so), so a hung endpoint delays a batch by about
``2 * timeout_s``, not ``len(batch) / CONCURRENCY * timeout_s``.

The API key is read from the environment variable named by ``[judge]
api_key_env``. When it is unset (or empty) and ``base_url`` is on this machine
(``localhost``, ``127.0.0.0/8``, ``::1``), a local server such as vLLM or
Ollama is assumed to need no key and the placeholder :data:`PLACEHOLDER_KEY` is
sent (and logged at INFO); for any other host a missing key is an
:class:`~llmvigil.errors.EvaluatorError` naming the variable. A keyless
endpoint elsewhere: set the variable to any value, for example ``none``.

ragas sends a blocking usage ping to its own server from every factory and LLM
call unless ``RAGAS_DO_NOT_TRACK`` is ``true`` (2.7 s to 93 s per scoring
offline); importing this module sets it, unless the user
already set it. ragas itself is imported only when a judge is built.
"""

from __future__ import annotations

import os

# Before ragas is imported anywhere: it reads this once and caches the answer.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

import asyncio
import contextvars
import functools
import logging
import math
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from llmvigil.config import JudgeSettings
from llmvigil.errors import EvaluatorError
from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.hosts import is_loopback

log = logging.getLogger(__name__)

#: Items scored at the same time, per evaluator.
CONCURRENCY = 4
#: Failed items in a row after which the rest of a batch is not sent to the judge.
MAX_FAILURES_IN_A_ROW = 2 * CONCURRENCY
#: HTTP retries by the openai client (it honours Retry-After on 429 and 5xx). ragas'
#: instructor layer makes up to 3 attempts on top; ``timeout_s`` bounds it all.
HTTP_RETRIES = 1
#: The key sent to a local endpoint when the key variable is unset.
PLACEHOLDER_KEY = "not-needed"
#: ragas requires a question; faithfulness uses it only to phrase the statements.
NO_QUESTION = "(no question was recorded)"
NO_EVIDENCE = "no context and no reference to check against"
JUDGE_ERROR = "judge_error"
_MAX_ERROR_CHARS = 500

# The structured replies of the judge for the item being scored (one list per asyncio task).
_replies: contextvars.ContextVar[list[tuple[str, dict[str, Any]]] | None] = contextvars.ContextVar(
    "llmvigil_judge_replies", default=None
)


def judge_evaluators(settings: JudgeSettings) -> list[Evaluator]:
    """The judge evaluators for ``[judge]``: ``[RelevanceJudge, FactualityJudge]``.

    Raises :class:`EvaluatorError` when ragas is not installed, ``base_url`` is
    not an http(s) URL, or the API key is missing for a remote endpoint.
    """
    return [RelevanceJudge(settings), FactualityJudge(settings)]


class _Judge(Evaluator):
    """What both judges share: the endpoint, the key, the event loop, timeouts, failures."""

    metric_name: ClassVar[str]
    threshold = 0.5

    def __init__(self, settings: JudgeSettings) -> None:
        _check_base_url(settings.base_url)
        _import_ragas()
        self.settings = settings
        self.api_key = _api_key(settings)
        self.method = f"ragas:{self.metric_name}:{settings.model}"

    def __repr__(self) -> str:
        settings = self.settings
        return f"{type(self).__name__}(base_url={settings.base_url!r}, model={settings.model!r})"

    # -- per item, in subclasses ----------------------------------------------------

    def _skip(self, item: EvalItem) -> Score | None:
        """A score without asking the judge (missing fields), or None to ask it."""
        raise NotImplementedError

    def _make_metric(self, client: Any) -> Any:
        raise NotImplementedError

    async def _ascore(self, metric: Any, item: EvalItem) -> float:
        raise NotImplementedError

    def _judged(self, item: EvalItem, value: float, replies: list[tuple[str, dict]]) -> Score:
        raise NotImplementedError

    # -- the batch ------------------------------------------------------------------

    def evaluate(self, batch: Sequence[EvalItem]) -> list[Score]:
        items = list(batch)
        scores: list[Score | None] = [self._skip(item) for item in items]
        todo = [i for i, score in enumerate(scores) if score is None]
        if todo:
            try:
                judged = _run_coroutine(lambda: self._score_all([items[i] for i in todo]))
            except Exception as exc:  # a bug or a broken install: still one score per item
                log.exception("%s: the judge could not run", self.name)
                judged = [self._error(items[i], _describe(exc)) for i in todo]
            for i, score in zip(todo, judged, strict=True):
                scores[i] = score
        result = [score for score in scores if score is not None]
        failed = [s for s in result if s.label == JUDGE_ERROR]
        if failed:
            log.warning(
                "%s: the judge at %s did not score %d of %d items (%s)",
                self.name,
                self.settings.base_url,
                len(failed),
                len(result),
                failed[-1].details["error"],
            )
        return result

    async def _score_all(self, items: list[EvalItem]) -> list[Score]:
        from openai import AsyncOpenAI

        # One client per run: its connection pool belongs to this event loop.
        client = AsyncOpenAI(
            base_url=self.settings.base_url,
            api_key=self.api_key,
            timeout=self.settings.timeout_s,
            max_retries=HTTP_RETRIES,
        )
        try:
            metric = self._make_metric(client)
            breaker = _Breaker()
            semaphore = asyncio.Semaphore(CONCURRENCY)

            async def one(item: EvalItem) -> Score:
                async with semaphore:
                    if breaker.open:
                        return self._error(item, breaker.reason())
                    score = await self._score_one(metric, item)
                    breaker.record(score)
                    return score

            return list(await asyncio.gather(*(one(item) for item in items)))
        finally:
            await client.close()

    async def _score_one(self, metric: Any, item: EvalItem) -> Score:
        replies: list[tuple[str, dict[str, Any]]] = []
        _replies.set(replies)  # this task's own context: gather() runs each in a copy
        timeout = self.settings.timeout_s
        try:
            value = await asyncio.wait_for(self._ascore(metric, item), timeout)
            return self._judged(item, value, replies)
        except TimeoutError:
            return self._error(item, f"TimeoutError: no answer from the judge within {timeout:g} s")
        except Exception as exc:
            return self._error(item, _describe(exc))

    def _error(self, item: EvalItem, error: str) -> Score:
        return self.make_score(item.id, None, self.method, {"error": error}, JUDGE_ERROR)

    def _unscored(self, item: EvalItem, reason: str) -> Score:
        return self.make_score(item.id, None, self.method, {"reason": reason})


class RelevanceJudge(_Judge):
    """Does the response address the question? ragas answer relevancy, judged by an LLM."""

    name = "relevance_judge"
    version = "1"
    needs = frozenset({"input", "output"})
    metric_name = "answer_relevancy"

    def _skip(self, item: EvalItem) -> Score | None:
        missing = [f for f in ("input", "output") if not (getattr(item, f) or "").strip()]
        if missing:
            return self._unscored(item, f"no {' and no '.join(missing)} to judge")
        return None

    def _make_metric(self, client: Any) -> Any:
        from ragas.embeddings.base import embedding_factory
        from ragas.llms import llm_factory
        from ragas.metrics.collections import AnswerRelevancy

        llm = _recording(llm_factory(self.settings.model, client=client))
        embeddings = embedding_factory("openai", model=self.settings.embedding_model, client=client)
        return AnswerRelevancy(llm=llm, embeddings=embeddings)

    async def _ascore(self, metric: Any, item: EvalItem) -> float:
        result = await metric.ascore(user_input=item.input, response=item.output)
        return float(result.value)

    def _judged(self, item: EvalItem, value: float, replies: list[tuple[str, dict]]) -> Score:
        generated = [reply for kind, reply in replies if kind == "AnswerRelevanceOutput"]
        details: dict[str, Any] = {
            "model": self.settings.model,
            "embedding_model": self.settings.embedding_model,
            "questions": [g.get("question") for g in generated],
            "noncommittal": [bool(g.get("noncommittal")) for g in generated],
        }
        if math.isnan(value):
            details["reason"] = "the judge's questions could not be compared (empty embeddings)"
            return self.make_score(item.id, None, self.method, details)
        # Cosine similarity can dip below 0; the score is kept in [0, 1] like every other.
        score = min(1.0, max(0.0, value))
        if generated and all(details["noncommittal"]):
            label = "noncommittal"
        else:
            label = "relevant" if score >= self.threshold else "irrelevant"
        return self.make_score(item.id, score, self.method, details, label)


class FactualityJudge(_Judge):
    """Are the response's statements supported by the context and reference? ragas faithfulness."""

    name = "factuality_judge"
    version = "1"
    needs = frozenset({"output"})
    metric_name = "faithfulness"

    def _skip(self, item: EvalItem) -> Score | None:
        if not (item.output or "").strip():
            return self._unscored(item, "no output to judge")
        if not _evidence(item):
            return self._unscored(item, NO_EVIDENCE)
        return None

    def _make_metric(self, client: Any) -> Any:
        from ragas.llms import llm_factory
        from ragas.metrics.collections import Faithfulness

        return Faithfulness(llm=_recording(llm_factory(self.settings.model, client=client)))

    async def _ascore(self, metric: Any, item: EvalItem) -> float:
        result = await metric.ascore(
            user_input=(item.input or "").strip() or NO_QUESTION,
            response=item.output,
            retrieved_contexts=_evidence(item),
        )
        return float(result.value)

    def _judged(self, item: EvalItem, value: float, replies: list[tuple[str, dict]]) -> Score:
        verdicts = [
            {
                "statement": s.get("statement"),
                "verdict": int(s.get("verdict") or 0),
                "reason": s.get("reason"),
            }
            for kind, reply in replies
            if kind == "NLIStatementOutput"
            for s in reply.get("statements", [])
        ]
        details: dict[str, Any] = {
            "model": self.settings.model,
            "evidence": len(_evidence(item)),
            "statements": verdicts,
            "supported": sum(v["verdict"] for v in verdicts),
            "total": len(verdicts),
        }
        if math.isnan(value):
            details["reason"] = "the judge found no statements in the output"
            return self.make_score(item.id, None, self.method, details)
        label = "supported" if value >= self.threshold else "unsupported"
        return self.make_score(item.id, value, self.method, details, label)


# -- helpers -------------------------------------------------------------------------


class _Breaker:
    """Counts failed items in a row; open once there are MAX_FAILURES_IN_A_ROW."""

    def __init__(self) -> None:
        self.in_a_row = 0
        self.last = ""

    @property
    def open(self) -> bool:
        return self.in_a_row >= MAX_FAILURES_IN_A_ROW

    def record(self, score: Score) -> None:
        if score.label == JUDGE_ERROR:
            self.in_a_row += 1
            self.last = score.details["error"]
        else:
            self.in_a_row = 0

    def reason(self) -> str:
        return (
            f"JudgeUnavailable: not sent after {self.in_a_row} failed items in a row "
            f"(last: {self.last})"
        )[:_MAX_ERROR_CHARS]


def _evidence(item: EvalItem) -> list[str]:
    passages = [p for p in item.context if p and p.strip()]
    if item.reference and item.reference.strip():
        passages.append(item.reference)
    return passages


def _describe(exc: BaseException) -> str:
    # instructor wraps the last failure after its retries; report that one.
    inner = exc.args[0] if getattr(exc, "n_attempts", None) and exc.args else None
    if isinstance(inner, BaseException):
        exc = inner
    message = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {message}"[:_MAX_ERROR_CHARS]


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine to completion from sync code, with or without a running loop here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # Called from async code (a notebook, an async app): a private loop in a private thread.
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = asyncio.run(factory())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name="llmvigil-judge", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def _check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EvaluatorError(
            f"[judge] base_url = {base_url!r} is not an http(s) URL; "
            f"use e.g. 'http://localhost:8000/v1' or 'https://api.openai.com/v1'"
        )


def _is_local(base_url: str) -> bool:
    return is_loopback(urlsplit(base_url).hostname)


def _api_key(settings: JudgeSettings) -> str:
    name = settings.api_key_env
    key = (os.environ.get(name) or "").strip()
    if key:
        return key
    if _is_local(settings.base_url):
        log.info(
            "judge: %s is not set; %s is on this machine, so the placeholder key %r is sent",
            name,
            settings.base_url,
            PLACEHOLDER_KEY,
        )
        return PLACEHOLDER_KEY
    raise EvaluatorError(
        f"the judge at {settings.base_url} needs an API key: set the environment variable "
        f"{name} (named by [judge] api_key_env); if that endpoint needs no key, "
        f"set {name} to any value, for example 'none'"
    )


def _import_ragas() -> None:
    try:
        import openai  # noqa: F401
        import ragas.metrics.collections  # noqa: F401
    except ImportError as exc:
        raise EvaluatorError(
            f"the LLM judge needs ragas and openai ({exc}); "
            f"install them with: pip install 'llmvigil[judge]'"
        ) from None


def _recording(llm: Any) -> Any:
    """``llm`` wrapped so the structured replies of each item are kept for its ``details``."""
    return _recording_class()(llm)


@functools.cache
def _recording_class() -> type:
    # Defined on first use: the base class comes from ragas, which is imported lazily.
    from ragas.llms import InstructorBaseRagasLLM

    class RecordingLLM(InstructorBaseRagasLLM):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def generate(self, prompt: str, response_model: Any) -> Any:
            return _note(self.inner.generate(prompt, response_model))

        async def agenerate(self, prompt: str, response_model: Any) -> Any:
            return _note(await self.inner.agenerate(prompt, response_model))

        def __getattr__(self, name: str) -> Any:
            if name == "inner":
                raise AttributeError(name)
            return getattr(self.inner, name)

    return RecordingLLM


def _note(reply: Any) -> Any:
    replies = _replies.get()
    if replies is not None and hasattr(reply, "model_dump"):
        replies.append((type(reply).__name__, reply.model_dump()))
    return reply


__all__ = [
    "CONCURRENCY",
    "JUDGE_ERROR",
    "NO_EVIDENCE",
    "PLACEHOLDER_KEY",
    "FactualityJudge",
    "RelevanceJudge",
    "judge_evaluators",
]
