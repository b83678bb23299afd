"""A time-series store whose DuckDB file another process owns, asked through that process.

DuckDB lets one process at a time open a database file for writing. While the local
pipeline's span worker (:mod:`fraudlocal.pipeline.span_worker`) owns the file, the
functions the main process invokes get a :class:`ServedTimeseriesStore`: each query goes to
the owner with the calling thread's replay horizon
(:func:`~fraudlocal.adapters.timeseries_duckdb.read_horizon`), and comes back as the rows,
or as the error, that the file opened here would have given. Once the owner stops serving
the file, the store opens it itself.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from fraudcore.timeseries.dialects import TIMESTREAM

from .timeseries_duckdb import DuckDBTimeseriesStore, current_horizon


class TimeseriesOwner(Protocol):
    """The process that owns a time-series file, as this process reaches it."""

    pid: int | None

    def query(
        self, sql: str, horizon: datetime | None, database: str, table: str
    ) -> list[dict[str, Any]]: ...

    def count(self, database: str, table: str) -> int: ...


class StoreOwnedElsewhereError(RuntimeError):
    """A write to a time-series file another process owns (only that process writes it)."""


_owners: dict[Path, TimeseriesOwner] = {}
_owners_lock = threading.Lock()


def serve_from(path: str | Path, owner: TimeseriesOwner) -> None:
    """From now on, stores of ``path`` opened in this process ask ``owner``."""
    with _owners_lock:
        _owners[Path(path).resolve()] = owner


def stop_serving(path: str | Path, owner: TimeseriesOwner) -> None:
    """``owner`` no longer serves ``path``: its stores open the file themselves."""
    with _owners_lock:
        key = Path(path).resolve()
        if _owners.get(key) is owner:
            del _owners[key]


def owner_of(path: str | Path) -> TimeseriesOwner | None:
    with _owners_lock:
        return _owners.get(Path(path).resolve())


class ServedTimeseriesStore:
    """:class:`fraudcore.ports.TimeseriesStore` on a DuckDB file another process owns."""

    sql_dialect = TIMESTREAM

    def __init__(self, path: str | Path, database: str, table: str):
        self.path = Path(path)
        self.database = database
        self.table = table
        self._direct: Any = None
        self._lock = threading.Lock()

    def _opened(self) -> Any:
        with self._lock:
            if self._direct is None:
                self._direct = DuckDBTimeseriesStore(self.path, self.database, self.table)
            return self._direct

    def write(self, transactions: Sequence[Any]) -> Any:
        owner = owner_of(self.path)
        if owner is not None:
            raise StoreOwnedElsewhereError(
                f"{self.path} is owned by another process (pid {owner.pid}): only that process writes it"
            )
        return self._opened().write(transactions)

    def query(self, timestream_sql: str) -> list[dict[str, Any]]:
        owner = owner_of(self.path)
        if owner is None:
            return self._opened().query(timestream_sql)
        return owner.query(timestream_sql, current_horizon(self.path), self.database, self.table)

    def count(self) -> int:
        owner = owner_of(self.path)
        if owner is None:
            return self._opened().count()
        return owner.count(self.database, self.table)

    def close(self) -> None:
        with self._lock:
            if self._direct is not None:
                self._direct.close()
                self._direct = None
