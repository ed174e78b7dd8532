"""Settings: one object, loaded from ``llmvigil.toml`` and overridden by ``LLMVIGIL_*`` variables.

Where the file comes from, first match wins: the ``path`` argument (the CLI's
``--config``), the ``LLMVIGIL_CONFIG`` variable, ``./llmvigil.toml``. No file
means defaults. Every environment variable ``LLMVIGIL_<SECTION>_<KEY>``
overrides ``[section] key`` (``LLMVIGIL_STORE_URL``, ``LLMVIGIL_COLLECTOR_SINK``).
Unknown keys and bad values fail at load with a :class:`ConfigError` naming
the key, the value and the fix.

Example::

    settings = load_settings()
    settings.store.url            # 'duckdb:///llmvigil.duckdb'
    settings.collector.sink       # 'spool'
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmvigil.errors import ConfigError

CONFIG_FILE = "llmvigil.toml"
ENV_PREFIX = "LLMVIGIL_"
# Variables with this prefix that are not settings: where the file is, and test plumbing.
_ENV_NOT_SETTINGS = ("LLMVIGIL_CONFIG", "LLMVIGIL_TEST_")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class StoreSettings(_Section):
    """``[store]``: where spans and scores live."""

    url: str = Field(
        "duckdb:///llmvigil.duckdb",
        description="duckdb:///path/to/file.duckdb or postgresql+psycopg://user:pw@host/db",
    )

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("duckdb://", "postgresql")):
            raise ValueError(
                "must start with duckdb:/// (a file) or postgresql+psycopg:// (a server)"
            )
        return value


class CollectorSettings(_Section):
    """``[collector]``: how the decorator buffers and where batches go."""

    app: str = "default"
    environment: str = "production"
    sink: Literal["spool", "direct"] = "spool"
    spool_dir: str = ".llmvigil/spool"
    queue_size: int = Field(100_000, gt=0)
    batch_size: int = Field(2_000, gt=0)
    flush_interval_s: float = Field(1.0, gt=0)
    max_block_ms: float = Field(0.0, ge=0)
    max_text_bytes: int = Field(65_536, ge=256)
    redact_pii: bool = True
    redact_patterns: list[str] = Field(default_factory=list)
    capture_input: bool = True
    capture_output: bool = True

    @field_validator("redact_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        import re

        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {pattern!r} is not a valid regular expression: {exc}"
                ) from None
        return value


class Price(_Section):
    """``[prices."model-name"]``: USD per million tokens, overriding genai-prices for that model."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class EvaluatorSettings(_Section):
    """``[evaluators]``: which evaluators run, how often, on how much traffic."""

    enabled: list[str] = Field(
        default_factory=lambda: [
            "relevance",
            "completeness",
            "brevity",
            "toxicity",
            "prompt_toxicity",
            "factuality",
        ]
    )
    kinds: list[str] = Field(default_factory=lambda: ["llm", "chain", "agent"])
    batch_size: int = Field(256, gt=0)
    interval_s: float = Field(60.0, gt=0)
    sampling: dict[str, float] = Field(default_factory=dict)
    detoxify_checkpoint: str | None = None
    detoxify_model_type: str = "original"
    embeddings_backend: Literal["auto", "onnx", "torch"] = "auto"
    cache_dir: str | None = None

    @field_validator("sampling")
    @classmethod
    def _rates_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for name, rate in value.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate for {name!r} is {rate}; use a number from 0.0 to 1.0")
        return value


class JudgeSettings(_Section):
    """``[judge]``: an OpenAI-compatible endpoint for ragas; the key comes from the environment."""

    base_url: str
    model: str
    embedding_model: str = "text-embedding-3-small"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0)


class Settings(_Section):
    """All of llmvigil's settings. Build with :func:`load_settings`."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    prices: dict[str, Price] = Field(default_factory=dict)
    evaluators: EvaluatorSettings = Field(default_factory=EvaluatorSettings)
    judge: JudgeSettings | None = None

    #: The file these settings came from, if any (not a setting).
    source: str | None = Field(None, exclude=True)


def find_config_file(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to load: ``path``, else ``$LLMVIGIL_CONFIG``, else ``./llmvigil.toml``."""
    environ = os.environ if environ is None else environ
    if path is not None:
        chosen = Path(path)
        if not chosen.is_file():
            raise ConfigError(
                f"config file {chosen} does not exist; run `llmvigil init` to write one"
            )
        return chosen
    env = environ.get("LLMVIGIL_CONFIG")
    if env:
        chosen = Path(env)
        if not chosen.is_file():
            raise ConfigError(
                f"LLMVIGIL_CONFIG points to {chosen}, which does not exist; fix or unset it"
            )
        return chosen
    local = Path.cwd() / CONFIG_FILE
    return local if local.is_file() else None


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load, merge and validate settings; raise :class:`ConfigError` naming the bad key."""
    environ = os.environ if environ is None else environ
    file = find_config_file(path, environ)
    data: dict[str, Any] = {}
    origin = "defaults"
    if file is not None:
        origin = str(file)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from None
    _apply_environment(data, environ)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origin)) from None
    return settings.model_copy(update={"source": origin})


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    sections = {
        name: field.annotation
        for name, field in Settings.model_fields.items()
        if name not in ("prices", "source")
    }
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var.startswith(_ENV_NOT_SETTINGS):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(
                f"environment variable {var} names no setting; use LLMVIGIL_<SECTION>_<KEY> "
                f"with a section of {sorted(sections)}, for example LLMVIGIL_STORE_URL"
            )
        key = rest[len(section) + 1 :]
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError(f"[{section}] must be a table")
        data[section][key] = _parse_env_value(raw)


def _parse_env_value(raw: str) -> Any:
    # Lists and tables can be given as JSON; everything else stays a string for pydantic to coerce.
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _explain(exc: ValidationError, origin: str) -> str:
    lines = [f"invalid settings (from {origin} and LLMVIGIL_* variables):"]
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        where = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else loc[0] if loc else "?"
        env = ENV_PREFIX + "_".join(loc[:2]).upper() if len(loc) >= 2 else None
        if error["type"] == "extra_forbidden":
            lines.append(
                f"  {where}: unknown key; remove it or check its spelling "
                f"(`llmvigil init` writes every known key)"
            )
            continue
        value = error.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        hint = f" (or the variable {env})" if env else ""
        lines.append(f"  {where}{shown}: {error['msg']}; fix it in the file{hint}")
    return "\n".join(lines)


STARTER_TOML = """\
# llmvigil.toml: settings for llmvigil. Every key is optional; shown are the defaults.
# Any key can be overridden by an environment variable LLMVIGIL_<SECTION>_<KEY>,
# for example LLMVIGIL_STORE_URL or LLMVIGIL_COLLECTOR_SINK.

[store]
# One embedded DuckDB file (default), or a PostgreSQL server by URL:
#   url = "postgresql+psycopg://llmvigil:secret@db.internal:5432/llmvigil"
url = "duckdb:///llmvigil.duckdb"

[collector]
app = "default"              # the application name stored on every span
environment = "production"
# spool: batches are written as segment files that `llmvigil ingest` (or `llmvigil up`)
#        loads into the store; any number of app processes, no locks, nothing lost.
# direct: this process writes into the store itself (scripts, notebooks, PostgreSQL).
sink = "spool"
spool_dir = ".llmvigil/spool"
queue_size = 100000          # spans held in memory; past this the oldest are dropped, counted
batch_size = 2000            # spans per write
flush_interval_s = 1.0       # the flush thread writes at least this often
max_block_ms = 0             # how long a call may wait for room when the queue is full (0: never)
max_text_bytes = 65536       # longer prompts and responses are cut and flagged `truncated`
redact_pii = true            # e-mail addresses, phone numbers and card numbers become [EMAIL] etc.
redact_patterns = []         # more regular expressions to redact, e.g. ["ACCT-[0-9]{8}"]
capture_input = true
capture_output = true

# Prices come from the genai-prices database; override or add a model here (USD per 1M tokens).
# [prices."my-finetuned-model"]
# input_per_mtok = 0.30
# output_per_mtok = 1.20

[evaluators]
enabled = ["relevance", "completeness", "brevity", "toxicity", "prompt_toxicity", "factuality"]
kinds = ["llm", "chain", "agent"]   # span kinds scored (retrieval and tool spans are not answers)
batch_size = 256
interval_s = 60              # `llmvigil evaluate --watch` and `llmvigil up` run them this often
# sampling = { relevance = 1.0, factuality = 0.25 }
# detoxify_checkpoint = "/models/toxic_original.ckpt"   # use Detoxify instead of the built-in head
embeddings_backend = "auto"  # auto: ONNX Runtime when installed (faster, same vectors), else torch
# cache_dir = "~/.cache/llmvigil"   # where the ONNX export of the embedding model is kept

# An OpenAI-compatible endpoint for the optional LLM judge (ragas); scores are stored beside
# the offline ones under their own method.
# [judge]
# base_url = "http://localhost:8000/v1"
# model = "gpt-4o-mini"
# embedding_model = "text-embedding-3-small"
# api_key_env = "OPENAI_API_KEY"
"""
