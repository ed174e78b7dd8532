"""Token estimates and cost in USD, from the genai-prices database or ``[prices]`` overrides."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

log = logging.getLogger("llmvigil.collector")

#: USD per token (input, output) for a model; None when the model has no known price.
UnitPrice = tuple[float, float] | None


def estimate_tokens(text: str | None) -> int:
    """Rough token count of ``text`` when the provider reported none: about four characters
    per token, OpenAI's rule of thumb for English (no tokenizer download needed offline)."""
    return math.ceil(len(text) / 4) if text else 0


class PriceBook:
    """Prices per model: overrides first, then genai-prices; looked up once per model.

    genai-prices gives a price for a usage; the book asks it for one million
    input and one million output tokens once per model and keeps the unit
    prices, so pricing a span costs a multiplication, not a database search.
    Tiered prices (cheaper past a volume, dearer past a context length) are
    thereby taken at their first tier.

    Example::

        book = PriceBook({"my-model": (0.3, 1.2)})   # USD per million tokens
        book.cost("gpt-4o", 1000, 500)                # 0.0075
    """

    def __init__(self, overrides: Mapping[str, tuple[float, float]] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._units: dict[str, UnitPrice] = {
            model: (inp / 1e6, out / 1e6) for model, (inp, out) in self._overrides.items()
        }

    def overrides(self) -> dict[str, tuple[float, float]]:
        """The prices given to the book (USD per million input and output tokens), by model."""
        return dict(self._overrides)

    def unit_price(self, model: str) -> UnitPrice:
        """(USD per input token, USD per output token) for ``model``, or None if unknown."""
        if model not in self._units:
            self._units[model] = self._lookup(model)
        return self._units[model]

    @staticmethod
    def _lookup(model: str) -> UnitPrice:
        try:
            from genai_prices import Usage, calc_price

            million = 1_000_000
            inp = calc_price(Usage(input_tokens=million, output_tokens=0), model)
            out = calc_price(Usage(input_tokens=0, output_tokens=million), model)
            return float(inp.total_price) / million, float(out.total_price) / million
        except LookupError:
            log.info("llmvigil: no price known for model %r; its cost is left empty", model)
            return None
        except Exception as exc:  # an unexpected genai-prices failure must not stop the flush
            log.warning("llmvigil: pricing %r failed: %s", model, exc)
            return None

    def cost(self, model: str | None, prompt_tokens: int | None, completion_tokens: int | None):
        """Cost in USD of one call, or None when the model or its price is unknown."""
        if not model:
            return None
        unit = self.unit_price(model)
        if unit is None:
            return None
        return (prompt_tokens or 0) * unit[0] + (completion_tokens or 0) * unit[1]
