"""Several evaluate workers over one PostgreSQL store: they share the spans, each scored once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from llmvigil.evaluators.runner import Runner
from llmvigil.storage import Store, schema
from tests.evaluators.test_runner import Length
from tests.storage.spans_factory import make_span

pytestmark = pytest.mark.postgres


class SlowLength(Length):
    """Scores like a model would: a little time per batch, so the workers interleave."""

    def evaluate(self, batch):
        time.sleep(0.005)
        return super().evaluate(batch)


def test_three_workers_share_5000_spans_and_score_each_exactly_once(postgres_url) -> None:
    with Store(postgres_url) as store:
        for start in range(0, 5_000, 1_000):
            store.append_spans([make_span(i) for i in range(start, start + 1_000)])
    workers = [SlowLength() for _ in range(3)]
    reports = [None] * 3
    ready = threading.Barrier(3)

    def work(k: int) -> None:
        with Store(postgres_url) as own:  # each its own connections, as its own process would
            ready.wait()
            reports[k] = Runner([workers[k]], batch_size=50).run(own)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    scored = Counter(span_id for w in workers for batch in w.calls for span_id in batch)
    assert len(scored) == 5_000 and set(scored.values()) == {1}  # each span once, none twice
    assert all(r.spans > 0 for r in reports), [r.spans for r in reports]  # the work was shared
    assert sum(r.spans for r in reports) == 5_000
    with Store(postgres_url) as store:
        assert len(store.evaluations()) == 5_000
        with store.engine.connect() as conn:  # every claim let go
            left = conn.execute(sa.select(schema.evaluation_leases)).all()
            assert not left, (len(left), left[:3], [r.spans for r in reports])


def test_a_dead_worker_s_claims_pass_to_the_others(postgres_url) -> None:
    with Store(postgres_url) as store:
        store.append_spans([make_span(i) for i in range(30)])
        wanted = [("length", "1")]
        held = store.claim_spans_missing_evaluations(wanted, "alive", limit=10)
        assert len(held) == 10
        # A worker that claimed and died: its lease has passed.
        store.claim_spans_missing_evaluations(wanted, "dead", limit=10, lease_s=0)
        survivor = Length()
        report = Runner([survivor], batch_size=100).run(store)
        assert report.spans == 20  # the dead worker's ten and the ten nobody held
        assert not {i for batch in survivor.calls for i in batch} & {r["span_id"] for r in held}
        store.release_claims("alive", [r["span_id"] for r in held])
        assert Runner([Length()]).run(store).spans == 10
