"""Settings: file, environment, validation messages and the starter file."""

from __future__ import annotations

import pytest

from llmvigil.config import STARTER_TOML, Settings, load_settings
from llmvigil.errors import ConfigError


def test_defaults_without_a_file(tmp_path) -> None:
    settings = load_settings(environ={})
    assert settings == Settings(source="defaults")
    assert settings.store.url == "duckdb:///llmvigil.duckdb"
    assert settings.collector.sink == "spool" and settings.collector.redact_pii is True


def test_the_starter_file_loads_to_the_defaults(tmp_path) -> None:
    (tmp_path / "llmvigil.toml").write_text(STARTER_TOML)
    settings = load_settings(environ={})
    assert settings.model_dump() == Settings().model_dump()
    assert settings.source.endswith("llmvigil.toml")


def test_file_then_environment(tmp_path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text(
        '[collector]\napp = "bot"\nqueue_size = 10\n[store]\nurl = "duckdb:///a.duckdb"\n'
    )
    settings = load_settings(
        path,
        environ={
            "LLMVIGIL_COLLECTOR_QUEUE_SIZE": "99",
            "LLMVIGIL_STORE_URL": "postgresql+psycopg://u@h/db",
            "LLMVIGIL_COLLECTOR_REDACT_PATTERNS": '["ACCT-\\\\d+"]',
            "LLMVIGIL_EVALUATORS_SAMPLING": '{"factuality": 0.5}',
        },
    )
    assert settings.collector.app == "bot" and settings.collector.queue_size == 99
    assert settings.store.url.startswith("postgresql")
    assert settings.collector.redact_patterns == ["ACCT-\\d+"]
    assert settings.evaluators.sampling == {"factuality": 0.5}


def test_config_file_from_the_environment(tmp_path, monkeypatch) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('[collector]\napp = "from-env-file"\n')
    assert load_settings(environ={}).collector.app == "default"
    assert load_settings(environ={"LLMVIGIL_CONFIG": str(path)}).collector.app == "from-env-file"
    monkeypatch.setenv("LLMVIGIL_CONFIG", str(path))
    assert load_settings().collector.app == "from-env-file"
    monkeypatch.setenv("LLMVIGIL_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match="LLMVIGIL_CONFIG points to"):
        load_settings()


@pytest.mark.parametrize(
    ("toml", "environ", "expected"),
    [
        ("[collector]\nqueu_size = 5\n", {}, r"\[collector\] queu_size: unknown key"),
        ("[colector]\n", {}, r"colector: unknown key"),
        ("[collector]\nqueue_size = -1\n", {}, r"\[collector\] queue_size = -1: .*greater than 0"),
        ("[collector]\nsink = 'kafka'\n", {}, r"\[collector\] sink = 'kafka'.*'direct' or 'http'"),
        ("[store]\nurl = 'mysql://x'\n", {}, r"\[store\] url .*duckdb:///"),
        (
            "[collector]\nredact_patterns = ['(']\n",
            {},
            r"redact_patterns\[0\] '\(' is not a valid RE2",
        ),
        # Python's re could backtrack for ever on it, holding the GIL: the whole app would stop.
        (
            "[collector]\nredact_patterns = ['x', '(a+)+b(?=x)']\n",
            {},
            r"redact_patterns\[1\].*lookarounds",
        ),
        ("[evaluators]\nsampling = {x = 2.0}\n", {}, r"rate for 'x' is 2.0"),
        ("", {"LLMVIGIL_COLLECTOR_QUEUE_SIZE": "lots"}, r"LLMVIGIL_COLLECTOR_QUEUE_SIZE"),
        ("", {"LLMVIGIL_NOPE": "1"}, r"LLMVIGIL_NOPE names no setting"),
        ("not toml [", {}, r"not valid TOML"),
    ],
)
def test_bad_settings_name_the_key_and_the_fix(tmp_path, toml, environ, expected) -> None:
    (tmp_path / "llmvigil.toml").write_text(toml)
    with pytest.raises(ConfigError, match=expected):
        load_settings(environ=environ)


def test_a_missing_explicit_file_says_how_to_make_one(tmp_path) -> None:
    with pytest.raises(ConfigError, match="llmvigil init"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_prices_and_judge_sections(tmp_path) -> None:
    (tmp_path / "llmvigil.toml").write_text(
        '[prices."m"]\ninput_per_mtok = 1\noutput_per_mtok = 2\n'
        '[judge]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "judge"\n'
    )
    settings = load_settings(environ={})
    assert settings.prices["m"].output_per_mtok == 2
    assert settings.judge is not None and settings.judge.api_key_env == "OPENAI_API_KEY"


def test_the_starter_file_names_every_key_of_every_section() -> None:
    from llmvigil.config import ALERT_FIELDS  # noqa: F401 (the rules' fields are documented)

    for name, field in Settings.model_fields.items():
        section = field.annotation
        fields = getattr(section, "model_fields", None)
        if name in ("prices", "source", "alerts", "channels", "hooks", "judge") or not fields:
            continue
        assert f"[{name}]" in STARTER_TOML, name
        for key, info in fields.items():
            shown = info.alias or key
            assert f"\n{shown} =" in STARTER_TOML or f"# {shown} =" in STARTER_TOML, (name, key)


def test_retention_from_the_file_and_the_environment(tmp_path) -> None:
    assert not load_settings(environ={}).retention.configured  # kept for ever by default
    (tmp_path / "llmvigil.toml").write_text(
        "[retention]\nspans_days = 30\napps = { checkout = 7, internal = 0 }\n"
    )
    retention = load_settings(environ={}).retention
    assert retention.configured and retention.apps == {"checkout": 7, "internal": 0}
    policy = retention.policy()
    assert (policy.spans_days, policy.batch_size) == (30, 5_000)
    settings = load_settings(
        environ={
            "LLMVIGIL_RETENTION_SPANS_DAYS": "0",
            "LLMVIGIL_RETENTION_APPS": '{"checkout": 3}',
            "LLMVIGIL_RETENTION_BATCH_SIZE": "100",
            "LLMVIGIL_RETENTION_INTERVAL_S": "60",
        }
    )
    retention = settings.retention
    assert (retention.spans_days, retention.apps) == (0, {"checkout": 3})
    assert (retention.batch_size, retention.interval_s) == (100, 60.0)
    assert retention.configured  # an override alone deletes that app's old spans
    kept = {"LLMVIGIL_RETENTION_SPANS_DAYS": "0", "LLMVIGIL_RETENTION_APPS": '{"checkout": 0}'}
    assert not load_settings(environ=kept).retention.configured


@pytest.mark.parametrize(
    ("toml", "environ", "expected"),
    [
        ("spans_days = -1", {}, r"\[retention\] spans_days = -1: .*from 0 to 36,500 days"),
        ("spans_days = 0.5", {}, r"spans_days = 0.5: .*whole number of days.*0 to keep"),
        ("spans_days = true", {}, r"spans_days = True: .*not a number of days"),
        ("spans_days = '30d'", {}, r"spans_days = '30d': .*whole number of days, such as 30"),
        ("spans_days = 100000", {}, r"spans_days = 100000: .*from 0 to 36,500"),
        ("apps = { checkout = -7 }", {}, r"\[retention\] apps.checkout = -7: .*days"),
        ("apps = { ' ' = 7 }", {}, r"\[retention\] apps: .*app with an empty name"),
        ("apps = 7", {}, r"\[retention\] apps = 7: .*dictionary"),
        ("batch_size = 0", {}, r"\[retention\] batch_size = 0: .*greater than 0"),
        ("interval_s = 0", {}, r"\[retention\] interval_s = 0: .*greater than 0"),
        ("spans_day = 30", {}, r"\[retention\] spans_day: unknown key"),
        ("", {"LLMVIGIL_RETENTION_SPANS_DAYS": "-3"}, r"'-3': .*from 0.*RETENTION_SPANS_DAYS"),
        ("", {"LLMVIGIL_RETENTION_APPS": "checkout=7"}, r"LLMVIGIL_RETENTION_APPS"),
    ],
)
def test_bad_retention_values_name_the_key_and_the_fix(tmp_path, toml, environ, expected) -> None:
    (tmp_path / "llmvigil.toml").write_text(f"[retention]\n{toml}\n")
    with pytest.raises(ConfigError, match=expected):
        load_settings(environ=environ)
