"""Store URLs: which DuckDB file a ``duckdb:`` URL names, checked the same way by the
configuration and the :class:`~llmvigil.storage.store.Store`.

Light on purpose: the configuration imports it when ``llmvigil`` is imported, so
SQLAlchemy is imported only when a URL is checked.
"""

from __future__ import annotations

from pathlib import Path

from llmvigil.errors import StoreError

DUCKDB_URL_FORMS = (
    "duckdb:///relative/path.duckdb (three slashes: from the working folder) or "
    "duckdb:////absolute/path.duckdb (four slashes)"
)
_MEMORY = ":memory:"


def _is_memory(database: str) -> bool:
    # DuckDB also names in-memory databases ":memory:name".
    return database.startswith(_MEMORY)


def duckdb_database(url: str) -> str:
    """The database a ``duckdb:`` store URL names: a file path (``~`` expanded) or ``:memory:``.

    Raises :class:`StoreError` when the URL does not name one file clearly: a host part
    (``duckdb://file.duckdb`` reads ``file.duckdb`` as a server, and DuckDB then silently
    keeps everything in memory), no path at all, URL options llmvigil does not read, or a
    path ending in a folder separator. In memory only when asked for: ``duckdb:///:memory:``.
    The configuration's ``[store] url`` and :class:`Store` both check with this function.

    Example::

        duckdb_database("duckdb:///data/spans.duckdb")   # 'data/spans.duckdb'
        duckdb_database("duckdb://data/spans.duckdb")    # StoreError: ... duckdb:///data/...
    """
    # SQLAlchemy's URL parser, imported here: `import llmvigil` (which loads the
    # configuration) should not pay for SQLAlchemy on the app's thread.
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            f"store url {url!r} is not a URL llmvigil can read; write {DUCKDB_URL_FORMS}"
        ) from None
    if parsed.drivername != "duckdb":
        raise StoreError(
            f"store url {url!r} names the driver {parsed.drivername!r}; a DuckDB store is "
            f"written {DUCKDB_URL_FORMS}"
        )
    after = url.split("://", 1)[1].split("?", 1)[0] if "://" in url else ""
    if parsed.host or parsed.username or parsed.password or parsed.port:
        relative = f"duckdb:///{after.lstrip('/')}"
        absolute = f"duckdb:///{Path(after.lstrip('/')).absolute()}"
        raise StoreError(
            f"store url {url!r} has a host part ({parsed.host!r}): after duckdb:// comes a "
            "server, not a file, so DuckDB would keep the spans in memory and lose them at "
            f"exit. A DuckDB store is a file: write {relative} (three slashes, relative to "
            f"the working folder) or {absolute} (four slashes, an absolute path)"
        )
    if parsed.query:
        bare = url.split("?", 1)[0]
        raise StoreError(
            f"store url {url!r} has options ({', '.join(sorted(parsed.query))}) that llmvigil "
            f"does not read; remove them: {bare}"
        )
    database = parsed.database
    if not database:
        raise StoreError(
            f"store url {url!r} names no file; write {DUCKDB_URL_FORMS}, for example "
            "duckdb:///llmvigil.duckdb, or duckdb:///:memory: for a store that lives only "
            "as long as this process"
        )
    if _is_memory(database):
        return database
    if database.endswith(("/", "\\")):
        raise StoreError(
            f"store url {url!r} names the folder {database!r}; a DuckDB store is a file: "
            f"name one inside it, for example duckdb:///{database}llmvigil.duckdb"
        )
    return str(Path(database).expanduser())


def is_in_memory(url: str) -> bool:
    """True when ``url`` is a DuckDB URL for an in-memory store (``duckdb:///:memory:``).

    Raises :class:`StoreError` for a DuckDB URL that names no file clearly.
    """
    return url.startswith("duckdb") and _is_memory(duckdb_database(url))
