"""A Python retraining hook for the tests: records the payloads it was given."""

from __future__ import annotations

import json
import os
from typing import Any


def record(payload: dict[str, Any]) -> str:
    with open(os.environ["LLMVIGIL_TEST_HOOK_OUT"], "a", encoding="utf-8") as out:
        out.write(json.dumps(payload) + "\n")
    return "recorded"
