"""Who may open the dashboard: a password (its scrypt hash in an environment variable) or,
when none is set, any of the server's API keys with the read scope.

``llmvigil dashboard --hash-password`` prints a hash for ``[dashboard]
password_hash_env``: ``scrypt$N$r$p$salt$hash`` (base64), so the password itself is
never stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from llmvigil.config import Settings
from llmvigil.errors import ConfigError
from llmvigil.server.auth import load_keys

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` in the form :func:`verify` reads."""
    if len(password) < 8:
        raise ConfigError("the dashboard password must be at least 8 characters long")
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    encode = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify(password: str, stored: str) -> bool:
    """Whether ``password`` matches the hash ``stored`` (constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.strip().split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def gated(settings: Settings) -> bool:
    """Whether the dashboard asks for a password (or a read key)."""
    name = settings.dashboard.password_hash_env
    if name:
        if not os.environ.get(name):
            raise ConfigError(
                f"[dashboard] password_hash_env names ${name}, which is not set; set it to the "
                "output of `llmvigil dashboard --hash-password`, or remove the setting"
            )
        return True
    return load_keys(settings.server.api_keys_env, None).configured


def admits(settings: Settings, presented: str) -> bool:
    """Whether ``presented`` opens the dashboard: the password, or else a key that may read."""
    name = settings.dashboard.password_hash_env
    if name:
        return verify(presented, os.environ.get(name, ""))
    return "read" in load_keys(settings.server.api_keys_env, None).scopes(presented)
