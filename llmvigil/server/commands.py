"""Commands while the owner runs: a command that needs the store asks ``llmvigil up`` to run it.

A DuckDB file admits one process. While ``llmvigil up`` holds it, ``metrics``,
``drift``, ``alerts list`` and the other store commands would meet a lock
error; instead the command finds the owner in the store's listen file
(:mod:`.listen`), posts its own arguments to ``POST /v1/commands`` with the
token written there, and prints what the owner printed, with its exit
status. The owner runs the very same command code over its open store, so
the output is the same as when the command opens the store itself.

Paths in the arguments are made absolute first (the owner runs elsewhere),
and the settings file this command found is named, so the owner reads the
same one. ``evaluate --dataset`` needs no store and runs where it is asked.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmvigil.errors import StoreError

#: The scopes a caller needs to run each command through the owner, by the CLI function
#: that runs it. Reading needs ``read``; a command that changes the store needs a key with
#: every scope; one that writes a file on the owner's machine, the owner's own token.
_READ = frozenset({"read"})
_EVERY = frozenset({"read", "ingest"})
_OWNER = frozenset({"owner"})
NEEDS: dict[str, frozenset[str]] = {
    "cmd_metrics": _READ,
    "cmd_drift_history": _READ,
    "cmd_alerts_list": _READ,
    "cmd_alerts_history": _READ,
    "cmd_drift": _EVERY,
    "cmd_drift_baseline": _EVERY,
    "cmd_alerts_check": _EVERY,
    "cmd_alerts_test": _EVERY,
    "cmd_ingest": _EVERY,
    "cmd_evaluate": _EVERY,
    "cmd_retention": _EVERY,
    "cmd_export": _OWNER,
}
#: Options whose value is a path on the caller's machine.
_PATH_OPTIONS = ("--config", "--output", "--spool", "--dataset")

# Set in the owner's process: its own commands never ask themselves.
_in_owner = False
# The store the owner lends to the commands it runs (see borrowed_store).
_lent: Any = None
# One command at a time: their output is captured from the process's stdout and stderr.
_running = threading.Lock()


@dataclass
class CommandResult:
    """What a command run by the owner printed, and its exit status."""

    exit_code: int
    stdout: str
    stderr: str


def mark_owner() -> None:
    """Say this process is the owner (``llmvigil up`` calls it)."""
    global _in_owner
    _in_owner = True


def borrowed_store(url: str) -> Any:
    """The owner's open store for a command it runs, when ``url`` is that store; else None.

    Returned as a context manager that leaves the store open: the command's
    ``with`` must not close the owner's store.
    """
    store = _lent
    if store is None:
        return None
    if not _same_store(url, store.url):
        raise StoreError(
            f"this llmvigil up owns {store.display_url}, not {url}; run the command with "
            "that store's --store, or where its owner runs"
        )
    return contextlib.nullcontext(store)


def _same_store(url: str, owned: str) -> bool:
    from llmvigil.storage.store import duckdb_database, is_in_memory

    if url == owned:
        return True
    if url.startswith("duckdb") and owned.startswith("duckdb") and not is_in_memory(url):
        return Path(duckdb_database(url)).resolve() == Path(duckdb_database(owned)).resolve()
    return False


@contextlib.contextmanager
def _lending(store: Any) -> Iterator[None]:
    global _lent
    _lent = store
    try:
        yield
    finally:
        _lent = None


def run_in_owner(store: Any, argv: Sequence[str], width: int | None = None) -> CommandResult:
    """Run ``llmvigil <argv>`` in this process over ``store``, capturing what it prints."""
    from llmvigil import cli

    out, err = io.StringIO(), io.StringIO()
    redirected = contextlib.redirect_stdout(out), contextlib.redirect_stderr(err)
    with _running, _lending(store), redirected[0], redirected[1]:
        previous = cli.console.width
        cli.console.width = width or previous
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse: a usage error, already printed
            code = exc.code if isinstance(exc.code, int) else 2
        finally:
            cli.console.width = previous
    return CommandResult(code, out.getvalue(), err.getvalue())


def command_needs(argv: Sequence[str]) -> tuple[str, frozenset[str]]:
    """The command ``argv`` runs and the scopes it needs; ValueError if it cannot be forwarded."""
    from llmvigil import cli

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args = cli.build_parser().parse_args(list(argv))
    except SystemExit:
        raise ValueError("these are not the arguments of an llmvigil command") from None
    name = getattr(args.run, "__name__", "")
    if name not in NEEDS or getattr(args, "watch", False) or getattr(args, "dataset", None):
        raise ValueError(f"{args.command!r} is not run through the owner; run it yourself")
    return args.command, NEEDS[name]


# -- the caller's side ---------------------------------------------------------------------


def forward_to_owner(args: argparse.Namespace, argv: Sequence[str]) -> int | None:
    """Run the command through the owner of its store, if one runs; its exit status, or None
    when the command should open the store itself (no owner, PostgreSQL, not a store
    command)."""
    name = getattr(args.run, "__name__", "")
    if _in_owner or name not in NEEDS or getattr(args, "dataset", None):
        return None
    from llmvigil.config import load_settings
    from llmvigil.server.listen import listen_path, running_owner
    from llmvigil.storage.store import is_in_memory

    try:
        settings = load_settings(args.config)
    except Exception:  # the command itself says what is wrong with the settings
        return None
    url = getattr(args, "store", None) or settings.store.url
    if not url.startswith("duckdb") or is_in_memory(url):
        return None  # PostgreSQL admits every process; an in-memory store is the command's own
    owner = running_owner(listen_path(settings, url))
    if owner is None:
        return None
    if getattr(args, "watch", False):
        raise StoreError(
            f"llmvigil up (pid {owner.pid}) owns {owner.store} and already evaluates it on "
            "its schedule; stop it to run evaluate --watch instead"
        )
    forwarded = _absolute_paths(argv)
    if args.config is None and settings.source != "defaults":
        forwarded = ["--config", str(Path(settings.source).resolve()), *forwarded]
    result = _post(owner.url, owner.token, forwarded, owner.pid)
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.write(result.stderr)
    return result.exit_code


def _absolute_paths(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    take_next = False
    for arg in argv:
        if take_next:
            out.append(os.path.abspath(arg))
            take_next = False
            continue
        option, sep, value = arg.partition("=")
        if option in _PATH_OPTIONS and sep:
            out.append(f"{option}={os.path.abspath(value)}")
        else:
            out.append(arg)
            take_next = arg in _PATH_OPTIONS
    return out


def _post(url: str, token: str, argv: list[str], pid: int) -> CommandResult:
    width = shutil.get_terminal_size((200, 24)).columns if sys.stdout.isatty() else None
    body = json.dumps({"argv": argv, "width": width}).encode()
    request = urllib.request.Request(f"{url}/v1/commands", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=None) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise StoreError(
            f"llmvigil up (pid {pid}, {url}) holds this store and refused the command "
            f"({exc.code}: {detail})"
        ) from None
    except OSError as exc:
        raise StoreError(
            f"llmvigil up (pid {pid}, {url}) holds this store but did not answer ({exc}); "
            "wait for it, or stop it and run the command again"
        ) from None
    return CommandResult(int(data["exit_code"]), data["stdout"], data["stderr"])
