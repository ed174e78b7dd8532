"""Settings refuse values that would break llmvigil later: infinities, NaN, numbers past what
the code can wait for or hold, empty names, and folders where a file is wanted."""

from __future__ import annotations

import pytest

from llmvigil.config import Settings, load_settings
from llmvigil.errors import ConfigError


def _float_settings() -> list[tuple[str, str]]:
    """Every float key of every section, found from the models so a new one is covered too."""
    from llmvigil.config import JudgeSettings, Price

    keys = []
    for section, field in Settings.model_fields.items():
        model = {"prices": Price, "judge": JudgeSettings}.get(section, field.annotation)
        for key, info in getattr(model, "model_fields", {}).items():
            if info.annotation is float:
                keys.append((section, key))
    return keys


FLOAT_KEYS = _float_settings()


def _toml(section: str, key: str, value: str) -> str:
    """A file setting ``key`` to ``value`` (TOML text), with the section's required keys."""
    required = {
        "prices": {"input_per_mtok": "1.0", "output_per_mtok": "1.0"},
        "judge": {"base_url": '"http://localhost:1/v1"', "model": '"m"'},
    }
    keys = {**required.get(section, {}), key: value}
    head = '[prices."m"]' if section == "prices" else f"[{section}]"
    return head + "\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())


def test_every_section_has_float_keys_to_check() -> None:
    sections = {section for section, _ in FLOAT_KEYS}
    assert {"collector", "evaluators", "judge", "prices"} <= sections


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
@pytest.mark.parametrize(("section", "key"), FLOAT_KEYS)
def test_float_settings_must_be_finite(tmp_path, section, key, value) -> None:
    (tmp_path / "llmvigil.toml").write_text(_toml(section, key, value))
    with pytest.raises(ConfigError, match=key):
        load_settings(environ={})


@pytest.mark.parametrize("value", ["inf", "nan", "Infinity"])
def test_infinite_values_from_the_environment_are_refused(value) -> None:
    with pytest.raises(ConfigError, match="LLMVIGIL_COLLECTOR_FLUSH_INTERVAL_S"):
        load_settings(environ={"LLMVIGIL_COLLECTOR_FLUSH_INTERVAL_S": value})


def test_sampling_rates_must_be_finite(tmp_path) -> None:
    (tmp_path / "llmvigil.toml").write_text("[evaluators]\nsampling = { brevity = nan }\n")
    with pytest.raises(ConfigError, match="sampling"):
        load_settings(environ={})


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("collector", "flush_interval_s", "7200"),  # past an hour: spans wait too long
        ("collector", "flush_interval_s", "1e10"),  # past what threading can wait for
        ("collector", "max_block_ms", "1e13"),
        ("collector", "queue_size", "100000000000000000000"),  # past a C ssize_t
        ("collector", "batch_size", "100000000000"),
        ("collector", "max_text_bytes", "100000000000"),
        ("evaluators", "batch_size", "100000000000"),
        ("evaluators", "interval_s", "1e10"),
        ("judge", "timeout_s", "1e10"),
        ("collector", "app", '""'),
        ("collector", "environment", '" "'),
        ("collector", "spool_dir", '""'),  # would spool into the working folder itself
        ("evaluators", "cache_dir", '""'),
        ("evaluators", "detoxify_checkpoint", '""'),
        ("judge", "model", '""'),
        ("judge", "base_url", '""'),
        ("judge", "api_key_env", '""'),
    ],
)
def test_values_past_a_sensible_bound_are_refused(tmp_path, section, key, value) -> None:
    (tmp_path / "llmvigil.toml").write_text(_toml(section, key, value))
    with pytest.raises(ConfigError, match=rf"\[{section}\] {key}"):
        load_settings(environ={})


def test_bounds_keep_the_documented_ranges(tmp_path) -> None:
    (tmp_path / "llmvigil.toml").write_text(
        "[collector]\nflush_interval_s = 3600\nmax_block_ms = 60000\nqueue_size = 10000000\n"
    )
    settings = load_settings(environ={})
    assert settings.collector.flush_interval_s == 3600


def test_a_folder_given_as_config_says_a_file_is_wanted(tmp_path) -> None:
    with pytest.raises(ConfigError, match="is a folder") as caught:
        load_settings(tmp_path, environ={})
    assert "does not exist" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"LLMVIGIL_CONFIG.*is a folder"):
        load_settings(environ={"LLMVIGIL_CONFIG": str(tmp_path)})


def test_a_folder_named_llmvigil_toml_is_not_silently_skipped(tmp_path) -> None:
    (tmp_path / "llmvigil.toml").mkdir()
    with pytest.raises(ConfigError, match=r"llmvigil\.toml is a folder"):
        load_settings(environ={})


def test_an_empty_config_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="empty"):
        load_settings("", environ={})
