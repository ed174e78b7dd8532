"""Alert rules, channels and hooks are checked on load; a message names the rule and the key."""

from __future__ import annotations

import pytest

from llmvigil.config import load_settings
from llmvigil.errors import ConfigError

GOOD = """
[alerting]
interval_s = 30

[[alerts]]
name = "slow-answers"
metric = "latency_ms.p95"
window = "10m"
op = ">"
threshold = 1500
min_samples = 20
for = "2m"
repeat = "4h"
group_by = ["model"]
where = { app = "support" }
severity = "critical"
channels = ["team-slack", "oncall-mail", "ops"]
hooks = ["retrain"]

[[alerts]]
name = "latency-week-on-week"
metric = "latency_ms.p95"
op = "change_pct"
baseline = "7d"
threshold = 50

[channels.team-slack]
type = "slack"
webhook_url_env = "SLACK_WEBHOOK_URL"

[channels.oncall-mail]
type = "email"
host = "smtp.example.com"
port = 587
starttls = true
username_env = "SMTP_USER"
password_env = "SMTP_PASSWORD"
from = "llmvigil@example.com"
to = ["oncall@example.com"]

[channels.ops]
type = "webhook"
url = "https://ops.example.com/llm-alerts"
secret_env = "LLMVIGIL_WEBHOOK_SECRET"

[hooks.retrain]
type = "command"
command = ["python", "retrain.py"]
timeout_s = 600
"""


def _load(tmp_path, text: str):
    path = tmp_path / "llmvigil.toml"
    path.write_text(text)
    return load_settings(path, environ={})


def test_the_issue_s_example_loads(tmp_path) -> None:
    settings = _load(tmp_path, GOOD)
    rule = settings.alerts[0]
    assert rule.for_ == "2m" and rule.group_by == ["model"] and rule.where == {"app": "support"}
    assert settings.channels["oncall-mail"].from_ == "llmvigil@example.com"
    assert settings.alerting.interval_s == 30 and settings.alerts[1].baseline == "7d"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('metric = "latency_ms.p95"', 'metric = "latency_ms.p42"'),
         ["[[alerts]] 'slow-answers' metric", "p95"]),
        (('op = ">"', 'op = "!="'), ["[[alerts]] 'slow-answers' op"]),
        (('window = "10m"', 'window = "ten minutes"'), ["[[alerts]] 'slow-answers' window"]),
        (('group_by = ["model"]', 'group_by = ["user_id"]'), ["'slow-answers' group_by"]),
        (('min_samples = 20', 'min_samples = -1'), ["'slow-answers' min_samples"]),
        (('metric = "latency_ms.p95"', 'metric = "collector.dropped"'),
         ["'slow-answers'", "collector.dropped", "not model"]),
        (('severity = "critical"', 'snooze = 1'), ["'slow-answers' snooze", "unknown key"]),
        (('baseline = "7d"\n', ''), ["'latency-week-on-week'", "baseline"]),
        (('hooks = ["retrain"]', 'hooks = ["retrian"]'), ["'slow-answers'", "[hooks.retrian]"]),
        (('url = "https://ops.example.com/llm-alerts"\n', ''), ["[channels] ops", "needs url"]),
        (('name = "latency-week-on-week"', 'name = "slow-answers"'), ["two [[alerts]] rules"]),
        (('command = ["python", "retrain.py"]\n', ''), ["[hooks] retrain", "needs command"]),
    ],
)  # fmt: skip
def test_a_bad_rule_channel_or_hook_is_named_with_its_key(tmp_path, change, expected) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, GOOD.replace(old, new, 1))
    for part in expected:
        assert part in str(caught.value), str(caught.value)
