"""A third-party evaluator: does the response say please or thank you?"""

from llmvigil.evaluators import Evaluator


class Politeness(Evaluator):
    name = "politeness"
    version = "1"
    needs = frozenset({"output"})

    def evaluate(self, batch):
        words = ("please", "thank")
        return [
            self.make_score(
                item.id,
                float(any(w in item.output.lower() for w in words)),
                "keyword",
                {"looked_for": list(words)},
            )
            for item in batch
        ]
