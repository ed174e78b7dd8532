"""Forward-only schema migrations, recorded in ``schema_version``.

Each migration is a function of a connection inside a transaction, appended to
:data:`MIGRATIONS` and never edited once released. A store written by a newer
llmvigil (a version above the last one known here) is refused rather than
guessed at.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from llmvigil.errors import StoreError
from llmvigil.storage import schema


def _create_v1_tables(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, checkfirst=True)


#: (version, description, step). Append only.
MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "spans, evaluations, feedback, drift_results, alert_events", _create_v1_tables),
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: sa.Connection) -> int:
    """The schema version recorded in the database (0 for an empty database)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
    return int(value or 0)


def migrate(engine: sa.Engine) -> int:
    """Bring the database up to :data:`LATEST`; return the version it is at."""
    with engine.begin() as conn:
        version = current_version(conn)
        if version > LATEST:
            raise StoreError(
                f"the store is at schema version {version}, newer than this llmvigil knows "
                f"({LATEST}); upgrade llmvigil (pip install -U llmvigil) to open it"
            )
        for number, description, step in MIGRATIONS:
            if number <= version:
                continue
            step(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=number,
                    description=description,
                    applied_at=datetime.now(UTC).replace(tzinfo=None),
                )
            )
            version = number
    return version
