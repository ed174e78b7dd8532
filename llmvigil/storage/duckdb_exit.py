"""Keep DuckDB's "nanobind: leaked N instances!" report out of our users' runs.

DuckDB's Python module holds its type constants (``duckdb.sqltypes.BIGINT`` and the rest)
in module globals that point back at their module. In a process that loaded DuckDB's
SQLAlchemy dialect and then torch (``python -c "import duckdb_engine; import torch"``
does it with nothing of llmvigil loaded), the interpreter's teardown reaches nanobind's
leak check before it frees them, and nanobind prints a page of "leaked instance" lines
that read like a bug in llmvigil. Nothing leaks while the process runs: it is only the
order of the last teardown. Two kinds of holder keep them: DuckDB's own modules, and the
result-type memo of each SQLAlchemy dialect a store opened (keyed by the DuckDB types of
the columns it read), whoever made the engine: both are emptied.

:func:`register` is called by ``import llmvigil`` (the collector's runtime) just before
the collector registers its exit flush. Exit handlers run last-registered first, so this
one runs after that flush and every other handler of ours: by then nothing of llmvigil
uses DuckDB, and dropping what holds the types frees them before nanobind looks.
"""

from __future__ import annotations

import atexit
import gc
import sys

#: The modules that hold DuckDB's type constants, in duckdb 2.0.
_MODULES = ("duckdb.value.constant", "duckdb.sqltypes", "duckdb.typing", "_duckdb._sqltypes")

_registered = False


def register() -> None:
    """Release DuckDB's type constants at interpreter exit (once per process)."""
    global _registered
    if not _registered:
        _registered = True
        atexit.register(_release_duckdb_types)


def _release_duckdb_types() -> None:
    if "_duckdb" not in sys.modules:
        return  # DuckDB was never loaded: nothing to release
    dialect = getattr(sys.modules.get("duckdb_engine"), "Dialect", None)
    if dialect is not None:
        # Engines are made by stores, tests and users alike, so they are found, not tracked:
        # one pass over the live objects, tens of milliseconds, once, at exit.
        for obj in gc.get_objects():
            if type(obj) is dialect:
                getattr(obj, "_type_memos", {}).clear()
    for name in _MODULES:
        module = sys.modules.get(name)
        if module is None:
            continue
        for key, value in list(vars(module).items()):
            if type(value).__name__ == "DuckDBPyType":
                delattr(module, key)
