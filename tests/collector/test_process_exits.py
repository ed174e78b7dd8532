"""Every way a process ends delivers its spans: forks, os._exit, SIGTERM, a slow exit, a full disk.

Each case runs a real Python process (the script is written into the test's
folder) that records spans into a spool folder; the test then loads the
folder into a DuckDB store and counts.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from llmvigil.collector.spool import ingest_spool, is_raw
from llmvigil.storage import Store

REPO = Path(__file__).resolve().parents[2]

PREAMBLE = textwrap.dedent(
    """
    import os, sys, time
    import llmvigil

    SPOOL = sys.argv[1]
    llmvigil.configure(sink="spool", spool_dir=SPOOL)

    @llmvigil.observe(model="gpt-4o")
    def answer(i, who="parent"):
        return {"choices": [{"message": {"content": f"{who} {i}"}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
    """
)


def run(tmp_path: Path, body: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run PREAMBLE + ``body`` as a script with the spool folder as its first argument."""
    script = tmp_path / f"app_{uuid.uuid4().hex[:6]}.py"
    script.write_text(PREAMBLE + textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "spool"), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stored(tmp_path: Path) -> list[dict]:
    with Store(f"duckdb:///{tmp_path / 'store.duckdb'}") as store:
        report = ingest_spool(store, tmp_path / "spool")
        assert not report.bad
        return store.spans(limit=None)


def outputs(rows: list[dict]) -> list[str]:
    return sorted(r["output_text"] for r in rows)


@pytest.mark.slow
def test_multiprocessing_children_that_return_deliver_their_last_spans(tmp_path) -> None:
    result = run(
        tmp_path,
        """
        import multiprocessing as mp

        def child(k):
            for i in range(50):
                answer(i, who=f"child{k}")

        answer(0)
        procs = [mp.get_context("fork").Process(target=child, args=(k,)) for k in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        print("exitcodes", [p.exitcode for p in procs])
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "exitcodes [0, 0, 0]" in result.stdout
    rows = stored(tmp_path)
    assert outputs(rows) == sorted(
        ["parent 0"] + [f"child{k} {i}" for k in range(3) for i in range(50)]
    )


@pytest.mark.slow
def test_pool_workers_deliver_their_spans_when_the_pool_is_terminated(tmp_path) -> None:
    # `with Pool()` ends in terminate(): its workers get SIGTERM while idle.
    result = run(
        tmp_path,
        """
        import multiprocessing as mp

        def task(i):
            answer(i, who="task")
            return i

        with mp.get_context("fork").Pool(2) as pool:
            print(sum(pool.map(task, range(40))))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert outputs(stored(tmp_path)) == sorted(f"task {i}" for i in range(40))


@pytest.mark.slow
def test_pytorch_dataloader_workers_deliver_their_spans(tmp_path) -> None:
    # Looked up, not imported: the app imports torch, this process need not pay for it.
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    result = run(
        tmp_path,
        """
        import torch
        from torch.utils.data import DataLoader, Dataset

        class Questions(Dataset):
            def __len__(self):
                return 30

            def __getitem__(self, i):
                answer(i, who="worker")
                return i

        loader = DataLoader(Questions(), batch_size=5, num_workers=2,
                            multiprocessing_context="fork")
        print(sum(int(b.sum()) for b in loader))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert outputs(stored(tmp_path)) == sorted(f"worker {i}" for i in range(30))


@pytest.mark.slow
def test_a_bare_fork_that_leaves_through_os_exit_delivers_its_spans(tmp_path) -> None:
    result = run(
        tmp_path,
        """
        pid = os.fork()
        if pid == 0:
            for i in range(25):
                answer(i, who="child")
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child status", status)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "child status 0" in result.stdout
    assert outputs(stored(tmp_path)) == sorted(f"child {i}" for i in range(25))


@pytest.mark.slow
def test_children_forked_while_the_flush_thread_works_never_hang(tmp_path) -> None:
    # The parent's flush thread is busy with big batches (holding the runtime's lock) while
    # it forks: every child must still record, exit normally and deliver.
    result = run(
        tmp_path,
        """
        big = "passage " * 2_000
        pids = []
        for k in range(12):
            for i in range(300):
                answer(big, who="bulk")
            pid = os.fork()
            if pid == 0:
                answer(k, who="child")
                sys.exit(0)
            pids.append(pid)
        deadline = time.monotonic() + 60
        hung = set(pids)
        while hung and time.monotonic() < deadline:
            for pid in list(hung):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    hung.discard(pid)
            time.sleep(0.05)
        for pid in hung:
            os.kill(pid, 9)
        print("hung", len(hung))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "hung 0" in result.stdout
    children = [r for r in stored(tmp_path) if r["output_text"].startswith("child")]
    assert len(children) == 12, result.stderr
    assert outputs(children) == sorted(f"child {k}" for k in range(12))


@pytest.mark.slow
def test_children_forked_while_the_collector_loads_still_price_their_spans(tmp_path) -> None:
    # Forks right at start-up, while the collector's modules and price data are loading.
    result = run(
        tmp_path,
        """
        pids = []
        for k in range(8):
            pid = os.fork()
            if pid == 0:
                answer(k, who="child")
                os._exit(0)
            pids.append(pid)
            time.sleep(0.03)
        for pid in pids:
            os.waitpid(pid, 0)
        """,
    )
    assert result.returncode == 0, result.stderr
    rows = stored(tmp_path)
    assert outputs(rows) == sorted(f"child {k}" for k in range(8))
    assert all(r["cost_usd"] and r["cost_usd"] > 0 for r in rows), [r["cost_usd"] for r in rows]


@pytest.mark.slow
def test_a_fork_inside_an_observed_call_keeps_the_trace_a_tree(tmp_path) -> None:
    result = run(
        tmp_path,
        """
        @llmvigil.observe(kind="chain")
        def handle():
            pid = os.fork()
            if pid == 0:
                answer(1, who="child")
                answer(2, who="child")
                os._exit(0)
            os.waitpid(pid, 0)
            answer(1, who="parent")
            return "done"

        handle()
        """,
    )
    assert result.returncode == 0, result.stderr
    rows = stored(tmp_path)
    by_output = {r["output_text"]: r for r in rows}
    handle = by_output["done"]
    assert len({r["span_id"] for r in rows}) == len(rows) == 4
    for name in ("child 1", "child 2", "parent 1"):
        row = by_output[name]
        assert row["parent_id"] == handle["span_id"] != row["span_id"]
        assert row["trace_id"] == handle["trace_id"]


@pytest.mark.slow
def test_sigterm_delivers_the_spans_and_still_kills(tmp_path) -> None:
    script = tmp_path / "served.py"
    script.write_text(
        PREAMBLE
        + textwrap.dedent(
            """
            for i in range(30):
                answer(i, who="served")
            print("ready", flush=True)
            time.sleep(120)
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "spool")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM
    assert outputs(stored(tmp_path)) == sorted(f"served {i}" for i in range(30))


@pytest.mark.slow
def test_an_exit_with_more_than_the_deadline_can_process_loses_nothing(tmp_path) -> None:
    # 6,000 calls with 10 KB prompts and an e-mail address in each, and an exit deadline
    # too short to process them: the rest is spilled raw and finished (redacted) at ingest.
    result = run(
        tmp_path,
        """
        llmvigil.configure(sink="spool", spool_dir=SPOOL, exit_timeout_s=0.2)

        @llmvigil.observe(model="gpt-4o")
        def ask(prompt, i):
            return f"answer {i}"

        passage = "Section 4.2, updated 2024-03-01: refunds are paid within 14 days. "
        prompt = ("Write to jo.bloggs@example.com. " + passage * 150)[:10_000]
        for i in range(6_000):
            ask(prompt, i)
        print("queued", llmvigil.stats()["queued"])
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "lost" not in result.stderr
    spilled = [p for p in (tmp_path / "spool").glob("spans-*") if is_raw(pq.read_table(p))]
    assert spilled  # the deadline was too short: this run went through the raw path
    rows = stored(tmp_path)
    assert len(rows) == 6_000
    assert sorted(int(r["output_text"].split()[1]) for r in rows) == list(range(6_000))
    leaked = [r for r in rows if "jo.bloggs@example.com" in r["input_text"]]
    assert not leaked, (len(leaked), leaked[0]["metadata"], leaked[0]["input_text"][:200])
    assert all(r["prompt_tokens"] and r["cost_usd"] for r in rows)


@pytest.fixture
def tiny_disk(tmp_path) -> Path:
    """A 256 KiB tmpfs mounted in the test's folder (needs root, as on CI)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs: {done.stderr!r}")
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_leaves_no_partial_files_and_counts_what_is_lost(tmp_path, tiny_disk) -> None:
    result = run(
        tmp_path,
        f"""
        llmvigil.configure(sink="spool", spool_dir={str(tiny_disk / "spool")!r},
                           flush_interval_s=0.05)
        import random
        noise = "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8000))
        for i in range(400):
            answer(noise + str(i))
            time.sleep(0.005)
        time.sleep(1)
        print("stats", llmvigil.stats()["pending"], llmvigil.stats()["write_failures"])
        """,
    )
    assert result.returncode == 0, result.stderr
    assert not list((tiny_disk / "spool").glob(".tmp-*"))
    pending = int(result.stdout.split()[1])
    assert pending > 0
    assert f"{pending} spans lost at shutdown" in result.stderr


@pytest.mark.slow
def test_the_flush_thread_imports_nothing_on_its_first_batch(tmp_path) -> None:
    # Under a caller's tight loop, an import on the flush thread waits for the GIL at every
    # file it touches: whatever the first batch needs is loaded before it, in the background.
    result = run(
        tmp_path,
        """
        from llmvigil.collector import runtime
        assert runtime._warmed.wait(60)
        before = set(sys.modules)
        for i in range(100):
            answer(i)
        assert llmvigil.flush()
        print("new modules", sorted(set(sys.modules) - before))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "new modules []" in result.stdout


@pytest.mark.slow
def test_a_flush_thread_stuck_at_exit_ends_the_exit_in_time_and_counts_the_loss(tmp_path) -> None:
    # A lazy mapping whose items come from a server that never answers stops the flush thread
    # inside the batch (as would a lock a forked child inherited held), and the raw spill too.
    result = run(
        tmp_path,
        """
        import threading
        from collections.abc import Mapping

        class Remote(Mapping):
            def __getitem__(self, key):
                threading.Event().wait()

            def __iter__(self):
                threading.Event().wait()
                yield from ()

            def __len__(self):
                return 1

        @llmvigil.observe(model="gpt-4o")
        def ask(request):
            return "ok"

        llmvigil.configure(sink="spool", spool_dir=SPOOL, exit_timeout_s=1)
        ask(Remote())
        """,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "flush thread is stuck (at " in result.stderr, result.stderr
    assert "__iter__" in result.stderr  # where it is stuck
    assert "1 spans dropped" in result.stderr  # the loss is counted and said


def test_sigterm_during_an_exit_flush_lets_that_flush_finish(tmp_path) -> None:
    # A pool worker told to stop (SIGTERM) as it leaves through os._exit: the handler ran a
    # second flush inside the first, which waited for the lock the first one held, for ever.
    result = run(
        tmp_path,
        """
        from llmvigil.collector import runtime
        for i in range(50):
            answer(i)
        flushed = []
        real_shutdown = runtime.shutdown
        def shutdown(timeout=10.0):
            runtime._sigterm(15, None)  # the signal lands inside the exit flush
            flushed.append(real_shutdown(timeout))
            return flushed[-1]
        runtime.shutdown = shutdown
        runtime._exit_flush()
        print("alive", flushed)
        """,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "alive [True]" in result.stdout
    assert len(stored(tmp_path)) == 50
