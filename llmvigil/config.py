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
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from llmvigil.errors import ConfigError, StoreError
from llmvigil.storage.urls import duckdb_database

if TYPE_CHECKING:
    from llmvigil.storage.retention import RetentionPolicy

CONFIG_FILE = "llmvigil.toml"
ENV_PREFIX = "LLMVIGIL_"
#: The default variable of the server's API keys (a secret, so not a setting in the file).
API_KEYS_ENV = "LLMVIGIL_API_KEYS"
# Variables with this prefix that are not settings: where the file is, the API keys, and
# test plumbing.
_ENV_NOT_SETTINGS = ("LLMVIGIL_CONFIG", API_KEYS_ENV, "LLMVIGIL_TEST_")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty; give a value, or remove the key to use its default")
    return value


#: A string setting that must say something (an empty spool_dir would spool into ".").
Text = Annotated[str, AfterValidator(_not_blank)]


class _Section(BaseModel):
    # No float setting may be inf or NaN: a wait of inf seconds kills the thread that waits.
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )


class StoreSettings(_Section):
    """``[store]``: where spans and scores live."""

    url: str = Field(
        "duckdb:///llmvigil.duckdb",
        description="duckdb:///path/to/file.duckdb or postgresql+psycopg://user:pw@host/db",
    )

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value.startswith("duckdb"):
            # The same check the Store makes, so a bad URL fails here, at load, and not
            # later as a store that silently keeps everything in memory.
            try:
                duckdb_database(value)
            except StoreError as exc:
                raise ValueError(str(exc)) from None
            return value
        if not value.startswith("postgresql"):
            raise ValueError(
                "must start with duckdb:/// (a file) or postgresql+psycopg:// (a server)"
            )
        return value


class CollectorSettings(_Section):
    """``[collector]``: how the decorator buffers and where batches go."""

    app: Text = "default"
    environment: Text = "production"
    sink: Literal["spool", "direct", "http"] = "spool"
    spool_dir: Text = ".llmvigil/spool"
    #: With ``sink = "http"``: the running ``llmvigil up`` (``http://host:4319``), and the
    #: environment variable holding its ingest key, if it needs one.
    endpoint: Text | None = None
    api_key_env: Text | None = None
    # Upper bounds: what a process can hold, and waits a thread can make (an hour at most).
    queue_size: int = Field(100_000, gt=0, le=10_000_000)
    batch_size: int = Field(2_000, gt=0, le=1_000_000)
    flush_interval_s: float = Field(1.0, gt=0, le=3600)
    max_block_ms: float = Field(0.0, ge=0, le=60_000)
    exit_timeout_s: float = Field(5.0, gt=0, le=600)
    max_text_bytes: int = Field(65_536, ge=256, le=64 * 1024 * 1024)
    redact_pii: bool = True
    redact_patterns: list[str] = Field(default_factory=list)
    redact_ip: bool = True
    capture_input: bool = True
    capture_output: bool = True

    @model_validator(mode="after")
    def _http_needs_an_endpoint(self) -> CollectorSettings:
        if self.sink == "http" and not self.endpoint:
            raise ValueError(
                'sink = "http" needs endpoint, the address of `llmvigil up` '
                '(endpoint = "http://127.0.0.1:4319")'
            )
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint {self.endpoint!r} must start with http:// or https://")
        return self

    @field_validator("redact_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        # RE2 only: its matching is linear in the text, so no pattern can stall the flush
        # thread (Python's re can backtrack for ever, holding the GIL: the whole app stops).
        import re2

        options = re2.Options()
        options.log_errors = False
        for i, pattern in enumerate(value):
            try:
                re2.compile(pattern, options)
            except re2.error as exc:
                raise ValueError(
                    f"redact_patterns[{i}] {pattern!r} is not a valid RE2 regular expression "
                    f"({exc}); RE2 has no lookarounds or backreferences: match the text "
                    "itself, e.g. 'ACCT-[0-9]{8}', or put the part to redact in a group, e.g. "
                    "'ref ([A-Z0-9]+)' keeps 'ref '"
                ) from None
        return value


class Price(_Section):
    """``[prices."model-name"]``: USD per million tokens, overriding genai-prices for that model."""

    input_per_mtok: float = Field(ge=0, le=1_000_000)
    output_per_mtok: float = Field(ge=0, le=1_000_000)


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
    batch_size: int = Field(256, gt=0, le=100_000)
    interval_s: float = Field(60.0, gt=0, le=86_400)
    sampling: dict[str, float] = Field(default_factory=dict)
    detoxify_checkpoint: Text | None = None
    detoxify_model_type: Text = "original"
    embeddings_backend: Literal["auto", "onnx", "torch"] = "auto"
    cache_dir: Text | None = None

    @field_validator("sampling")
    @classmethod
    def _rates_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for name, rate in value.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate for {name!r} is {rate}; use a number from 0.0 to 1.0")
        return value


#: Drift features by name (``score.<evaluator>`` are added for every evaluator with scores).
DRIFT_FEATURES = (
    "latency_ms",
    "ttft_ms",
    "input_length",
    "output_length",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "error_rate",
    "model",
    "input_embedding",
    "output_embedding",
)


def _duration(value: str) -> str:
    from llmvigil.storage.metrics import parse_grain

    try:
        parse_grain(value)
    except Exception as exc:
        raise ValueError(str(exc)) from None
    return value


def _moment(value: str | None) -> str | None:
    from llmvigil.storage.metrics import parse_moment

    if value is not None:
        try:
            parse_moment(value, option="the time")
        except Exception as exc:
            raise ValueError(str(exc)) from None
    return value


class DriftSettings(_Section):
    """``[drift]``: which windows drift compares, over which spans, with which tests."""

    window: Annotated[str, AfterValidator(_duration)] = "1h"
    interval_s: float = Field(300.0, gt=0, le=86_400)
    reference_since: Annotated[str | None, AfterValidator(_moment)] = None
    reference_until: Annotated[str | None, AfterValidator(_moment)] = None
    kind: Text | None = "llm"
    min_count: int = Field(30, ge=2, le=10_000_000)
    features: list[str] = Field(default_factory=lambda: [*DRIFT_FEATURES, "score.*"])
    methods: dict[str, str] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)
    p_value_threshold: float = Field(0.01, gt=0, lt=1)
    embedding_sample: int = Field(2_000, ge=10, le=100_000)
    vector_share: float = Field(0.25, ge=0, le=1)
    max_topics: int = Field(5, ge=1, le=50)

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in DRIFT_FEATURES and not name.startswith("score."):
                raise ValueError(
                    f"{name!r} is not a drift feature; use {', '.join(DRIFT_FEATURES)}, "
                    "score.<evaluator> or score.* (every evaluator)"
                )
        return value

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: dict[str, str]) -> dict[str, str]:
        from llmvigil.evaluators.drift.stats import check_method

        for feature, method in value.items():
            try:
                check_method(feature, method)
            except ConfigError as exc:
                raise ValueError(str(exc).split(": ", 1)[-1]) from None
        return value

    @field_validator("reference_until")
    @classmethod
    def _reference_in_pairs(cls, value: str | None, info: Any) -> str | None:
        since = info.data.get("reference_since")
        if (since is None) != (value is None):
            raise ValueError(
                "reference_since and reference_until go together: set both for a fixed "
                "baseline, or neither for the window just before the current one"
            )
        return value


#: For sections with a key that is a Python keyword (``for``, ``from``): read by its alias.
_ALIASED = ConfigDict(**_Section.model_config, populate_by_name=True)


def _duration_or_zero(value: str) -> str:
    from llmvigil.storage.metrics import _span_seconds

    seconds = _span_seconds(value)
    if seconds is None or seconds > 366 * 86400:
        raise ValueError(
            f"{value!r} is not a duration; use a number and a unit (s, m, h, d), such as "
            "0m, 90s, 10m or 4h"
        )
    return value


Duration = Annotated[str, AfterValidator(_duration)]
DurationOrZero = Annotated[str, AfterValidator(_duration_or_zero)]
#: Span fields an alert rule can group by or filter on.
ALERT_FIELDS = ("app", "model", "environment", "prompt_version")


class AlertRule(_Section):
    """One ``[[alerts]]`` rule: a metric over a window, compared with a threshold.

    Example::

        [[alerts]]
        name = "slow-answers"
        metric = "latency_ms.p95"
        window = "10m"
        op = ">"
        threshold = 1500
        group_by = ["model"]
        channels = ["team-slack"]
    """

    model_config = _ALIASED

    name: Text
    metric: Text
    window: Duration = "10m"
    op: Literal[">", ">=", "<", "<=", "change_pct"] = ">"
    threshold: float
    #: With ``op = "change_pct"``: how far back the window it is compared with lies.
    baseline: Duration | None = None
    min_samples: int = Field(1, ge=0, le=10_000_000)
    for_: DurationOrZero = Field("0m", alias="for")
    repeat: Duration | None = None
    group_by: list[Literal["app", "model", "environment", "prompt_version"]] = Field(
        default_factory=list
    )
    where: dict[Literal["app", "model", "environment", "prompt_version", "kind"], Text] = Field(
        default_factory=dict
    )
    severity: Literal["info", "warning", "critical"] = "warning"
    channels: list[Text] = Field(default_factory=list)
    hooks: list[Text] = Field(default_factory=list)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        from llmvigil.alerts.metrics import parse_metric

        parse_metric(value)  # raises ValueError naming the metrics there are
        return value

    @model_validator(mode="after")
    def _baseline_with_change(self) -> AlertRule:
        if (self.op == "change_pct") != (self.baseline is not None):
            raise ValueError(
                'op = "change_pct" and baseline go together: set baseline = "7d" (how far '
                "back the window compared with lies) with it, and only with it"
            )
        if self.metric == "collector.dropped":
            from llmvigil.alerts.metrics import COLLECTOR_FIELDS

            other = [f for f in (*self.group_by, *self.where) if f not in COLLECTOR_FIELDS]
            if other:
                raise ValueError(
                    f"collector.dropped: group_by and where take {' and '.join(COLLECTOR_FIELDS)}"
                    f" only, not {', '.join(other)} (a collector reports its app and "
                    "environment, no model)"
                )
        return self


class ChannelSettings(_Section):
    """One ``[channels.<name>]``: where notifications go.

    ``type`` is ``log``, ``webhook`` (``url``, optional ``secret_env`` for an
    HMAC-SHA256 signature), ``slack`` (``webhook_url`` or ``webhook_url_env``),
    ``email`` (``host``, ``port``, ``starttls``, ``username_env``,
    ``password_env``, ``from``, ``to``) or ``apprise`` (``urls``).
    """

    model_config = _ALIASED

    type: Literal["log", "webhook", "slack", "email", "apprise"]
    url: Text | None = None
    secret_env: Text | None = None
    webhook_url: Text | None = None
    webhook_url_env: Text | None = None
    host: Text | None = None
    port: int = Field(587, ge=1, le=65_535)
    starttls: bool = True
    ssl: bool = False
    #: A CA bundle to verify the SMTP server's certificate with (default: the system's).
    ca_file: Text | None = None
    username_env: Text | None = None
    password_env: Text | None = None
    from_: Text | None = Field(None, alias="from")
    to: list[Text] = Field(default_factory=list)
    urls: list[Text] = Field(default_factory=list)
    timeout_s: float = Field(10.0, gt=0, le=300)
    #: Send a notice when the alert resolves (Alertmanager's send_resolved); default: yes.
    send_resolved: bool = True

    @model_validator(mode="after")
    def _complete(self) -> ChannelSettings:
        needed = {
            "webhook": ("url",),
            "email": ("host", "from_", "to"),
            "apprise": ("urls",),
        }.get(self.type, ())
        missing = [k.rstrip("_") for k in needed if not getattr(self, k)]
        if self.type == "slack" and not (self.webhook_url or self.webhook_url_env):
            missing.append("webhook_url or webhook_url_env")
        if missing:
            raise ValueError(f"a {self.type} channel needs {', '.join(missing)}")
        if self.ssl and self.starttls and self.type == "email":
            raise ValueError("ssl (SMTPS, port 465) and starttls exclude each other; set one")
        return self


class HookSettings(_Section):
    """One ``[hooks.<name>]``: a retraining hook run when a rule fires.

    ``type`` is ``command`` (``command``, the payload JSON on stdin), ``python``
    (``callable = "package.module:function"``, given the payload) or ``webhook``
    (``url``, the payload as the body).
    """

    type: Literal["command", "python", "webhook"]
    command: list[Text] = Field(default_factory=list)
    callable: Text | None = None
    url: Text | None = None
    timeout_s: float = Field(600.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _complete(self) -> HookSettings:
        needed = {"command": "command", "python": "callable", "webhook": "url"}[self.type]
        if not getattr(self, needed):
            raise ValueError(f"a {self.type} hook needs {needed}")
        if self.type == "python" and ":" not in (self.callable or ""):
            raise ValueError('callable is "package.module:function"')
        return self


class AlertingSettings(_Section):
    """``[alerting]``: how often rules are checked and deliveries retried.

    (The rules themselves are ``[[alerts]]``: TOML cannot hold an ``[alerts]``
    table beside an ``[[alerts]]`` list, so these settings have their own name.)
    """

    interval_s: float = Field(60.0, gt=0, le=86_400)
    #: First retry of a failed delivery after this long, doubling each time up to an hour.
    retry_base_s: float = Field(30.0, gt=0, le=3600)
    max_attempts: int = Field(8, ge=1, le=100)
    export_dir: Text = ".llmvigil/exports"
    examples: int = Field(5, ge=0, le=50)


class ServerSettings(_Section):
    """``[server]``: the long-running owner, ``llmvigil up``."""

    host: Text = "127.0.0.1"
    port: int = Field(4319, ge=1, le=65_535)
    #: The environment variable holding the API keys: KEY, ingest:KEY or read:KEY, comma-separated.
    api_keys_env: Text = API_KEYS_ENV
    max_body_bytes: int = Field(16 * 2**20, ge=1024, le=2**31)
    max_batch_spans: int = Field(10_000, ge=1, le=1_000_000)
    #: How often the spool folder is loaded into the store.
    ingest_interval_s: float = Field(1.0, gt=0, le=3600)

    @field_validator("api_keys_env")
    @classmethod
    def _not_a_setting_name(cls, value: str) -> str:
        if value.startswith(ENV_PREFIX) and value != API_KEYS_ENV:
            raise ValueError(
                f"{value}: LLMVIGIL_* variables are settings; name another variable, or "
                f"leave the default {API_KEYS_ENV}"
            )
        return value


class DashboardSettings(_Section):
    """``[dashboard]``: the Streamlit app (``llmvigil dashboard``, and ``llmvigil up`` when
    ``enabled``)."""

    #: Whether ``llmvigil up`` serves the dashboard too.
    enabled: bool = False
    host: Text = "127.0.0.1"
    #: 0: any free port (``llmvigil up`` prints the address).
    port: int = Field(8501, ge=0, le=65_535)
    #: The environment variable holding the password's hash (``llmvigil dashboard
    #: --hash-password`` makes one). Unset: the server's read keys open it, when configured.
    password_hash_env: Text | None = None
    #: How long a page's query results are reused, in seconds.
    cache_ttl_s: float = Field(10.0, ge=0, le=3600)
    #: The auto-refresh interval a wall screen can switch on, in seconds.
    refresh_s: float = Field(30.0, ge=2, le=3600)


#: The longest retention a setting may ask for (a century): past it, keep for ever (0).
MAX_RETENTION_DAYS = 36_500


def _days(value: Any) -> int:
    # Whole days only: a fraction (0.1) is more likely a slip than an intent, and it deletes.
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():  # from a variable
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            "is not a number of days; give a whole number of days, such as 30, or 0 to keep "
            "spans for ever"
        )
    if not 0 <= value <= MAX_RETENTION_DAYS:
        raise ValueError(
            f"is not from 0 to {MAX_RETENTION_DAYS:,} days; give a whole number of days, such "
            "as 30, or 0 to keep spans for ever"
        )
    return value


#: A retention in whole days; 0 keeps for ever.
Days = Annotated[int, BeforeValidator(_days)]


class RetentionSettings(_Section):
    """``[retention]``: how long spans (with their scores, vectors and feedback) are kept.

    ``spans_days`` applies to every app, ``apps`` overrides it for some (0 keeps
    that app's spans for ever); the owner deletes in batches of ``batch_size``
    spans every ``interval_s``.

    Example::

        [retention]
        spans_days = 30
        apps = { checkout = 7, internal = 90 }
    """

    spans_days: Days = 0
    apps: dict[str, Days] = Field(default_factory=dict)
    batch_size: int = Field(5_000, gt=0, le=1_000_000)
    interval_s: float = Field(3600.0, gt=0, le=86_400)

    @field_validator("apps")
    @classmethod
    def _apps_named(cls, value: dict[str, int]) -> dict[str, int]:
        if any(not name.strip() for name in value):
            raise ValueError(
                "has an app with an empty name; name each app as its spans do ([collector] "
                "app), e.g. apps = { checkout = 7 }"
            )
        return value

    @property
    def configured(self) -> bool:
        """True when some spans are ever deleted (a positive ``spans_days`` or override)."""
        return self.spans_days > 0 or any(days > 0 for days in self.apps.values())

    def policy(self) -> RetentionPolicy:
        """These settings as the store's :class:`~llmvigil.storage.retention.RetentionPolicy`."""
        from llmvigil.storage.retention import RetentionPolicy  # storage: not at import time

        return RetentionPolicy(
            spans_days=self.spans_days, apps=dict(self.apps), batch_size=self.batch_size
        )


class JudgeSettings(_Section):
    """``[judge]``: an OpenAI-compatible endpoint for ragas; the key comes from the environment."""

    base_url: Text
    model: Text
    embedding_model: Text = "text-embedding-3-small"
    api_key_env: Text = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0, le=3600)


class Settings(_Section):
    """All of llmvigil's settings. Build with :func:`load_settings`."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    prices: dict[str, Price] = Field(default_factory=dict)
    evaluators: EvaluatorSettings = Field(default_factory=EvaluatorSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    judge: JudgeSettings | None = None
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    alerts: list[AlertRule] = Field(default_factory=list)
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    hooks: dict[str, HookSettings] = Field(default_factory=dict)

    #: The file these settings came from, if any (not a setting).
    source: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _rules_name_what_exists(self) -> Settings:
        seen: set[str] = set()
        for rule in self.alerts:
            if rule.name in seen:
                raise ValueError(f"two [[alerts]] rules are named {rule.name!r}; names are keys")
            seen.add(rule.name)
            for kind, names, known in (
                ("channel", rule.channels, self.channels),
                ("hook", rule.hooks, self.hooks),
            ):
                for name in names:
                    if name not in known:
                        raise ValueError(
                            f"[[alerts]] {rule.name!r} names the {kind} {name!r}, which is not "
                            f"defined; add a [{kind}s.{name}] table or remove it (defined: "
                            f"{', '.join(sorted(known)) or 'none'})"
                        )
        return self


def find_config_file(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to load: ``path``, else ``$LLMVIGIL_CONFIG``, else ``./llmvigil.toml``.

    Raises :class:`ConfigError` when the file named does not exist, or is a folder.
    """
    environ = os.environ if environ is None else environ
    if path is not None:
        if not str(path).strip():
            raise ConfigError(
                "the config path is empty; name a settings file (llmvigil.toml), or leave "
                "--config out to use ./llmvigil.toml"
            )
        return _config_file(Path(path), f"config file {path}", "run `llmvigil init` to write one")
    env = environ.get("LLMVIGIL_CONFIG")
    if env:
        return _config_file(Path(env), f"LLMVIGIL_CONFIG points to {env}, which", "fix or unset it")
    local = Path.cwd() / CONFIG_FILE
    if local.is_dir():
        raise ConfigError(
            f"{local} is a folder, not a settings file; remove or rename it, or name the "
            "file to read with --config or LLMVIGIL_CONFIG"
        )
    return local if local.exists() else None


def _config_file(chosen: Path, subject: str, fix: str) -> Path:
    if chosen.is_dir():
        raise ConfigError(
            f"{subject} is a folder; a settings file is wanted, for example "
            f"{chosen / CONFIG_FILE}: {fix}"
        )
    if not chosen.exists():
        raise ConfigError(f"{subject} does not exist; {fix}")
    return chosen


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
        except OSError as exc:
            raise ConfigError(f"cannot read the settings file {file}: {exc.strerror}") from None
    _apply_environment(data, environ)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origin, data)) from None
    return settings.model_copy(update={"source": origin})


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    sections = {
        name: field.annotation
        for name, field in Settings.model_fields.items()
        if name not in ("prices", "source", "alerts", "channels", "hooks")
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


def _rule_name(data: Mapping[str, Any], index: object) -> str:
    """``'slow-answers'`` for the rule at ``index`` of ``[[alerts]]``, or ``number 3``."""
    rules = data.get("alerts")
    if isinstance(index, int) and isinstance(rules, list) and index < len(rules):
        rule = rules[index]
        if isinstance(rule, dict) and isinstance(rule.get("name"), str):
            return repr(rule["name"])
    return f"number {int(index) + 1}" if isinstance(index, int) else str(index)


def _explain(exc: ValidationError, origin: str, data: Mapping[str, Any]) -> str:
    lines = [f"invalid settings (from {origin} and LLMVIGIL_* variables):"]
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        where = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else loc[0] if loc else "?"
        if loc[:1] == ["alerts"] and len(loc) > 1:  # name the rule, not its place in the list
            where = f"[[alerts]] {_rule_name(data, error['loc'][1])}" + (
                f" {'.'.join(loc[2:])}" if len(loc) > 2 else ""
            )
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
# One embedded DuckDB file (default; duckdb:///relative/path.duckdb with three slashes,
# duckdb:////absolute/path.duckdb with four), or a PostgreSQL server by URL:
#   url = "postgresql+psycopg://llmvigil:secret@db.internal:5432/llmvigil"
url = "duckdb:///llmvigil.duckdb"

[collector]
app = "default"              # the application name stored on every span
environment = "production"
# spool: batches are written as segment files that `llmvigil ingest` (or `llmvigil up`)
#        loads into the store; any number of app processes, no locks, nothing lost.
# direct: this process writes into the store itself (scripts, notebooks, PostgreSQL).
# http: batches are posted to a running `llmvigil up` at endpoint (spooled while it is down).
sink = "spool"
spool_dir = ".llmvigil/spool"
# endpoint = "http://127.0.0.1:4319"   # with sink = "http"
# api_key_env = "INGEST_API_KEY"   # the variable holding an ingest key, if up needs one
queue_size = 100000          # spans held in memory; past this the oldest are dropped, counted
batch_size = 2000            # spans per write
flush_interval_s = 1.0       # the flush thread writes at least this often
max_block_ms = 0             # how long a call may wait for room when the queue is full (0: never)
exit_timeout_s = 5.0         # at exit, what is not processed by then is spooled raw, never lost
max_text_bytes = 65536       # longer prompts and responses are cut and flagged `truncated`
# redact_pii: e-mail addresses, phone numbers, cards, IBANs, SSNs, API keys, tokens and
# passwords become [EMAIL], [PHONE], [CARD], [IBAN], [SSN], [SECRET], [PASSWORD]
redact_pii = true
redact_patterns = []         # more regular expressions to redact, e.g. ["ACCT-[0-9]{8}"]
redact_ip = true             # with redact_pii: IP addresses (v4 and v6) become [IP]
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
# detoxify_model_type = "original"   # its kind: original, unbiased or multilingual
embeddings_backend = "auto"  # auto: ONNX Runtime when installed (faster, same vectors), else torch
# cache_dir = "~/.cache/llmvigil"   # where the ONNX export of the embedding model is kept

[drift]
window = "1h"                # the current window: the last hour; the reference is the hour before
interval_s = 300             # `llmvigil evaluate --watch` and `llmvigil up` run drift this often
# A fixed baseline instead of the window before (or pin one: `llmvigil drift baseline`):
# reference_since = "2026-11-01T00:00"
# reference_until = "2026-11-08T00:00"
kind = "llm"                 # span kind compared (model calls)
# features = ["latency_ms", "ttft_ms", "input_length", "output_length", "prompt_tokens",
#             "completion_tokens", "cost_usd", "error_rate", "model", "input_embedding",
#             "output_embedding", "score.*"]   # what is compared (default: all)
min_count = 30               # fewer values than this in either window: the feature is skipped
# Evidently's tests: "auto" picks as Evidently does (K-S / chi-square / Z up to 1,000 rows,
# Wasserstein / Jensen-Shannon above); embeddings: model (default), distance, ratio, mmd.
# methods = { latency_ms = "ks", input_embedding = "mmd" }
# thresholds = { latency_ms = 0.2 }
p_value_threshold = 0.01     # for p-value tests: about 12 features a run, so 0.05 cries wolf
embedding_sample = 2000      # spans per window whose prompt and response vectors are compared
vector_share = 0.25          # share of spans whose vectors the evaluators keep for drift
max_topics = 5               # new topics listed for a drifted embedding

[alerting]
interval_s = 60              # `evaluate --watch` and `llmvigil up` check the rules this often
retry_base_s = 30            # a failed notification is retried after 30 s, 60 s, ... (at most 1 h)
max_attempts = 8             # then it is given up (and recorded)
export_dir = ".llmvigil/exports"   # where retraining hooks' span exports are written
examples = 5                 # example spans in a notification

# Alert rules: a metric over a window against a threshold (README: Alerts).
# [[alerts]]
# name = "slow-answers"
# metric = "latency_ms.p95"
# window = "10m"
# op = ">"
# threshold = 1500
# min_samples = 20
# for = "2m"
# group_by = ["model"]
# channels = ["team-slack"]
#
# [channels.team-slack]
# type = "slack"
# webhook_url_env = "SLACK_WEBHOOK_URL"

[server]
host = "127.0.0.1"           # `llmvigil up` listens here; beyond loopback it needs an API key
port = 4319
api_keys_env = "LLMVIGIL_API_KEYS"   # KEY, ingest:KEY or read:KEY, comma-separated
max_body_bytes = 16777216    # a larger request body (gzip inflated) is refused with 413
max_batch_spans = 10000      # so is a batch of more spans
ingest_interval_s = 1.0      # the spool folder is loaded this often

[retention]
# Spans older than this many days are deleted with their scores, vectors and feedback, by
# `llmvigil up` every interval_s (`llmvigil retention --dry-run` says what would go).
spans_days = 0               # whole days; 0 keeps spans for ever
# apps = { checkout = 7, internal = 90 }   # per app, overriding spans_days (0: for ever)
batch_size = 5000            # spans deleted per transaction: a crash keeps the store whole
interval_s = 3600            # how often `llmvigil up` and `evaluate --watch` delete

[dashboard]
# `llmvigil dashboard` serves it; `llmvigil up` too when enabled (or with --dashboard).
enabled = false
host = "127.0.0.1"           # another address needs password_hash_env, read keys or --insecure
port = 8501                  # 0: any free port
# password_hash_env = "DASHBOARD_PASSWORD_HASH"   # holds `llmvigil dashboard --hash-password`
cache_ttl_s = 10             # how long a page reuses its query results
refresh_s = 30               # the auto-refresh interval, when switched on in the sidebar

# An OpenAI-compatible endpoint for the optional LLM judge (ragas); scores are stored beside
# the offline ones under their own method.
# [judge]
# base_url = "http://localhost:8000/v1"
# model = "gpt-4o-mini"
# embedding_model = "text-embedding-3-small"
# api_key_env = "OPENAI_API_KEY"
"""
