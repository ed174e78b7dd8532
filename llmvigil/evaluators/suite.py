"""The evaluators a configuration asks for, and a runner over them."""

from __future__ import annotations

from llmvigil.config import Settings
from llmvigil.evaluators.base import Evaluator
from llmvigil.evaluators.runner import Runner, build_evaluators
from llmvigil.evaluators.vectors import configure_shared_vectors

TOXICITY_EVALUATORS = ("toxicity", "prompt_toxicity")


def evaluators_from_settings(settings: Settings, with_judge: bool = True) -> list[Evaluator]:
    """``[evaluators] enabled`` as instances, plus the LLM judge's when ``[judge]`` is set."""
    config = settings.evaluators
    configure_shared_vectors(config.embeddings_backend, config.cache_dir)
    options = {}
    if config.detoxify_checkpoint:
        detoxify = {
            "detoxify_checkpoint": config.detoxify_checkpoint,
            "detoxify_model_type": config.detoxify_model_type,
        }
        options = {name: detoxify for name in TOXICITY_EVALUATORS}
    evaluators = build_evaluators(config.enabled, options)
    if with_judge and settings.judge is not None:
        from llmvigil.evaluators.judge import judge_evaluators

        evaluators.extend(judge_evaluators(settings.judge))
    return evaluators


def runner_from_settings(settings: Settings, with_judge: bool = True) -> Runner:
    """A :class:`Runner` with the configured evaluators, batch size, sampling and span kinds."""
    config = settings.evaluators
    return Runner(
        evaluators_from_settings(settings, with_judge),
        batch_size=config.batch_size,
        sampling=config.sampling,
        kinds=config.kinds,
        vector_share=settings.drift.vector_share,
    )
