"""Starting the dashboard: Streamlit as a child process, beside the store's owner.

Streamlit's server wants its own main thread and event loop, and a page that
fails must not take ingest down with it, so the app runs in a process of its
own and reads the store through the owner (see :mod:`.source`). Streamlit's
calls home are switched off on its command line: ``browser.gatherUsageStats``
false, and ``browser.serverAddress`` set, so a headless start does not look
up its external address (OFFLINE.md: up to 20 s with DNS dropped).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from llmvigil.config import Settings
from llmvigil.errors import ConfigError

APP = Path(__file__).with_name("app.py")


def check_bind(settings: Settings, host: str, insecure: bool) -> None:
    """Refuse a bind beyond this machine when nothing gates the dashboard."""
    from llmvigil.dashboard.access import gated
    from llmvigil.hosts import is_loopback

    if not is_loopback(host) and not gated(settings) and not insecure:
        raise ConfigError(
            f"--host {host} serves the dashboard beyond this machine and no password is set; "
            "set [dashboard] password_hash_env (llmvigil dashboard --hash-password makes the "
            "hash), or configure the server's read keys, or pass --insecure"
        )


def command(host: str, port: int) -> list[str]:
    """The command line that serves the app on ``host:port``."""
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", shown,
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",
        "--logger.level", "warning",
    ]  # fmt: skip


@dataclass
class Dashboard:
    """A running dashboard process and the address it serves."""

    process: subprocess.Popen
    url: str

    def wait_ready(self, timeout_s: float = 60.0) -> bool:
        """Whether the app answers its health check before ``timeout_s`` (False if it died)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the app: SIGTERM, then SIGKILL after ``timeout_s``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(settings: Settings, store_url: str, host: str, port: int) -> Dashboard:
    """Start the app over ``store_url`` (the config file and store passed in its environment)."""
    if port == 0:  # Streamlit takes no "any free port": find one
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    environment = dict(os.environ)
    environment["LLMVIGIL_STORE_URL"] = store_url
    environment["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    if settings.source and settings.source != "defaults":  # the file these settings came from
        environment["LLMVIGIL_CONFIG"] = str(Path(settings.source).resolve())
    process = subprocess.Popen(command(host, port), env=environment, stdout=subprocess.DEVNULL)
    return Dashboard(process, f"http://{host if ':' not in host else f'[{host}]'}:{port}")
