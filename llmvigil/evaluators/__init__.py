"""Offline evaluators: relevance, completeness, brevity, toxicity, factuality, and plug-ins."""

from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.registry import available, get, register

__all__ = ["EvalItem", "Evaluator", "Score", "available", "get", "register"]
