"""Alerts: threshold rules over windows, notifications, and retraining hooks.

Rules are ``[[alerts]]`` in ``llmvigil.toml`` (:class:`~llmvigil.config.AlertRule`);
:func:`check_alerts` evaluates them all as of a moment, moves each rule and
group through OK, PENDING, FIRING and RESOLVED (or NO_DATA), records the
transitions in the store and delivers what is due.
"""
