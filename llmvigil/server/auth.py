"""API keys and scopes: ``Authorization: Bearer KEY``, compared in constant time.

Keys come from the environment variable ``[server] api_keys_env`` names, comma
separated: ``KEY`` has every scope, ``ingest:KEY`` may send spans and feedback,
``read:KEY`` may read. The owner's own token (in its listen file, readable by
its user only) has every scope, so local commands need no key. With no key
configured, every route is open (loopback only, unless ``--insecure``).
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field

from llmvigil.errors import ConfigError

SCOPES = ("ingest", "read")


@dataclass
class Keys:
    """The accepted keys, each with its scopes."""

    scopes_by_key: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        """Whether any API key was configured (the owner's token aside)."""
        return any(key for key, scopes in self.scopes_by_key.items() if scopes != _OWNER)

    def scopes(self, presented: str | None) -> frozenset[str]:
        """The scopes of the key presented, empty when it matches none."""
        if not presented:
            return frozenset()
        found: frozenset[str] = frozenset()
        for key, scopes in self.scopes_by_key.items():
            # Every key is compared, so the time taken says nothing of which one matched.
            if hmac.compare_digest(key.encode(), presented.encode()):
                found = scopes
        return found


_OWNER = frozenset({*SCOPES, "owner"})


def load_keys(variable: str, owner_token: str | None, environ=os.environ) -> Keys:
    """The keys of ``$variable`` and the owner's token; :class:`ConfigError` if malformed."""
    keys = Keys()
    for entry in filter(None, (part.strip() for part in environ.get(variable, "").split(","))):
        scope, sep, key = entry.partition(":")
        if not sep:
            scope, key = "", entry
        if scope and scope not in SCOPES:
            raise ConfigError(
                f"${variable}: {scope!r} is not a scope; write KEY (every scope), ingest:KEY "
                "or read:KEY, comma-separated"
            )
        if len(key) < 16:
            raise ConfigError(f"${variable}: a key must be at least 16 characters long")
        keys.scopes_by_key[key] = frozenset(SCOPES) if not scope else frozenset({scope})
    if owner_token:
        keys.scopes_by_key[owner_token] = _OWNER
    return keys
