"""The local InfluxDB 3 stand-in: line protocol in, Apache DataFusion SQL out, Parquet on disk.

InfluxDB 3 executes SQL with Apache DataFusion over Arrow data persisted as Parquet; this
store does the same with the ``datafusion`` package, so the InfluxDB 3 SQL the rules
compile to runs here exactly as the AWS adapter sends it (no translation).

It keeps InfluxDB 3's rules where they change what a query sees:

- **writes are line protocol**: transactions are encoded by the same code as the AWS adapter
  (:mod:`fraudcore.timeseries.line_protocol`) and read back by :mod:`fraudlocal.adapters.line_protocol`;
  a line that is not valid fails alone, with its line number and reason.
- **a table's columns are what was written**: tags are dictionary-encoded strings, each field
  has the type of its first write, and a later line writing another type is refused. A query
  naming a table or a column never written fails, as on the server.
- **primary key = tag set + time**: a point written again with the same key replaces the
  stored one (the field sets are merged, the new values winning): a replay is a no-op.

Storage: ``<directory>/<database>/<table>/part-NNNNNN.parquet``, one file per write (an
acknowledged write is on disk, as InfluxDB acknowledges a write once its WAL holds it);
opening the directory replays them in order. One process shares one store per directory
(:func:`open_store`), so every local function sees the others' writes, as they would share
one server.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datafusion import SessionContext

from fraudcore.model import Transaction
from fraudcore.ports import WriteOutcome
from fraudcore.timeseries import MissingColumnError, missing_column, unique_by_key
from fraudcore.timeseries.dialects import INFLUXDB3
from fraudcore.timeseries.line_protocol import PRECISION, encode_batch

from .line_protocol import Point, parse_lines

TIME = "time"
_TAG_TYPE = pa.dictionary(pa.int32(), pa.string())


class FieldTypeError(ValueError):
    """A field written with another type than its first write, or a tag written as a field."""


def _arrow_type(value: Any) -> pa.DataType:
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, tuple):  # ("u", n): an unsigned integer field
        return pa.uint64()
    if isinstance(value, float):
        return pa.float64()
    return pa.string()


def _type_name(kind: pa.DataType) -> str:
    return {
        pa.bool_(): "Boolean",
        pa.int64(): "Integer",
        pa.uint64(): "UInteger",
        pa.float64(): "Float",
        pa.string(): "String",
    }.get(kind, str(kind))


class DataFusionTimeseriesStore:
    """:class:`fraudcore.ports.TimeseriesStore` speaking InfluxDB 3 SQL, on DataFusion."""

    sql_dialect = INFLUXDB3

    def __init__(self, directory: str | Path, database: str, table: str):
        if not database or not table:
            raise ValueError(
                f"DataFusion time-series store needs a database and a table, got {database!r}.{table!r}"
            )
        self.database = database
        self.table = table
        self.directory = Path(directory) / database / table
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        #: column name -> Arrow type (tags are dictionary strings); the order columns appeared
        self._columns: dict[str, pa.DataType] = {}
        self._batches: list[pa.Table] = []
        self._dead: list[set[int]] = []
        self._index: dict[tuple[Any, ...], tuple[int, int]] = {}
        self._pending: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._parts = 0
        self._context: SessionContext | None = None
        self._closed = False
        self._load()

    # -- schema and keys ------------------------------------------------------------------

    def _tag_names(self) -> list[str]:
        return [name for name, kind in self._columns.items() if kind == _TAG_TYPE]

    @staticmethod
    def _key(point: Point) -> tuple[Any, ...]:
        return (tuple(sorted(point.tags.items())), point.time_ns)

    def _check_types(self, point: Point) -> dict[str, pa.DataType]:
        """The new columns this point adds; :class:`FieldTypeError` when it conflicts."""
        added: dict[str, pa.DataType] = {}
        for name in point.tags:
            known = self._columns.get(name)
            if known is not None and known != _TAG_TYPE:
                raise FieldTypeError(f"column {name!r} is a {_type_name(known)} field, not a tag")
            if known is None:
                added[name] = _TAG_TYPE
        for name, value in point.fields.items():
            kind = _arrow_type(value)
            known = self._columns.get(name) or added.get(name)
            if name == TIME:
                raise FieldTypeError("'time' is the timestamp column; it cannot be a field")
            if known == _TAG_TYPE:
                raise FieldTypeError(f"column {name!r} is a tag, not a field")
            if known is not None and known != kind:
                raise FieldTypeError(
                    f"invalid column type for column {name!r}, expected {_type_name(known)}, got {_type_name(kind)}"
                )
            added.setdefault(name, kind)
        return {name: kind for name, kind in added.items() if name not in self._columns}

    # -- writing --------------------------------------------------------------------------

    def write_points(self, points: Sequence[tuple[int, str, Point]]) -> list[dict[str, Any]]:
        """Store parsed lines; the per-line errors (``line_number``, ``error_message``...) of those refused."""
        errors: list[dict[str, Any]] = []
        with self._lock:
            self._open()
            for number, line, point in points:
                if point.measurement != self.table:
                    errors.append(
                        {
                            "original_line": line,
                            "line_number": number,
                            "error_message": f"table {point.measurement!r}: this store holds {self.table!r} only",
                        }
                    )
                    continue
                try:
                    added = self._check_types(point)
                except FieldTypeError as error:
                    errors.append({"original_line": line, "line_number": number, "error_message": str(error)})
                    continue
                self._columns.update(added)
                self._upsert(point)
            self._flush()
        return errors

    def _upsert(self, point: Point) -> None:
        key = self._key(point)
        row: dict[str, Any] = {TIME: point.time_ns, **point.tags}
        row.update({k: (v[1] if isinstance(v, tuple) else v) for k, v in point.fields.items()})
        pending = self._pending.get(key)
        if pending is not None:
            pending.update(row)  # same primary key: the field sets merge, the new values win
            return
        stored = self._index.pop(key, None)
        if stored is not None:
            batch, position = stored
            old = {
                k: v
                for k, v in self._batches[batch].slice(position, 1).to_pylist()[0].items()
                if v is not None
            }
            old[TIME] = point.time_ns
            self._dead[batch].add(position)
            row = {**old, **row}
        self._pending[key] = row

    def write(self, transactions: Sequence[Transaction]) -> WriteOutcome:
        """Write a batch through line protocol, as the InfluxDB 3 adapter does."""
        unique = unique_by_key(list(transactions))
        outcome = WriteOutcome(requests=1 if unique else 0)
        lines, refused = encode_batch(self.table, unique)
        outcome.rejected.update(refused)
        if not lines:
            return outcome
        points, errors = parse_lines("\n".join(line for _, line in lines), PRECISION)
        errors += self.write_points(points)
        failed_lines = {error["line_number"]: error["error_message"] for error in errors}
        for number, (transaction_id, _) in enumerate(lines, start=1):
            if number in failed_lines:
                outcome.rejected[transaction_id] = f"InfluxDB 3 refused the line: {failed_lines[number]}"
            else:
                outcome.stored.add(transaction_id)
        return outcome

    def load_arrow(self, data: pa.Table, tags: Sequence[str]) -> int:
        """Bulk-load rows already in the table's shape (``time``, the ``tags``, fields): benchmarks.

        The same rules as line protocol apply (types fixed by the first write, last write wins
        per tag set and time), without the text round trip. Returns the rows stored.
        """
        with self._lock:
            self._open()
            self._flush()
            columns: dict[str, pa.Array] = {TIME: data.column(TIME).cast(pa.timestamp("ns"))}
            for name in data.column_names:
                if name == TIME:
                    continue
                column = data.column(name)
                kind = _TAG_TYPE if name in tags else column.type
                known = self._columns.get(name)
                if known is not None and known != kind:
                    raise FieldTypeError(
                        f"column {name!r}: {_type_name(kind)} where the table has {_type_name(known)}"
                    )
                self._columns.setdefault(name, kind)
                columns[name] = column.cast(pa.string()).dictionary_encode() if kind == _TAG_TYPE else column
            times = columns[TIME].cast(pa.int64()).to_pylist()
            tag_values = [columns[name].to_pylist() for name in tags]
            last_row: dict[tuple[Any, ...], int] = {}
            for row, time_ns in enumerate(times):
                tag_set = tuple(
                    sorted((n, v[row]) for n, v in zip(tags, tag_values, strict=True) if v[row] is not None)
                )
                last_row[(tag_set, time_ns)] = row  # a key loaded twice keeps its last row
            keep = sorted(last_row.values())
            position_of = {row: position for position, row in enumerate(keep)}
            batch = self._conformed(
                pa.Table.from_pydict(columns).take(pa.array(keep, pa.int64())), set(), self._schema()
            )
            number = len(self._batches)
            self._batches.append(batch)
            self._dead.append(set())
            for key, row in last_row.items():
                stored = self._index.get(key)
                if stored is not None:
                    self._dead[stored[0]].add(stored[1])
                self._index[key] = (number, position_of[row])
            pq.write_table(batch, self.directory / f"part-{self._parts:06d}.parquet")
            self._parts += 1
            self._context = None
            return len(keep)

    # -- flushing to Arrow and Parquet ----------------------------------------------------

    def _schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(TIME, pa.timestamp("ns"), nullable=False)]
            + [pa.field(name, kind) for name, kind in self._columns.items()]
        )

    def _flush(self, persist: bool = True) -> None:
        if not self._pending:
            return
        schema = self._schema()
        rows = list(self._pending.values())
        columns = {}
        for field in schema:
            values = [row.get(field.name) for row in rows]
            if field.type == _TAG_TYPE:
                columns[field.name] = pa.array(values, pa.string()).dictionary_encode()
            else:
                columns[field.name] = pa.array(values, field.type)
        batch = pa.Table.from_pydict(columns, schema=schema)
        number = len(self._batches)
        self._batches.append(batch)
        self._dead.append(set())
        for position, key in enumerate(self._pending):
            self._index[key] = (number, position)
        self._pending.clear()
        if persist:
            pq.write_table(batch, self.directory / f"part-{self._parts:06d}.parquet")
            self._parts += 1
        self._context = None

    def _conformed(self, batch: pa.Table, dead: set[int], schema: pa.Schema) -> pa.Table:
        if dead:
            keep = pa.array([position not in dead for position in range(batch.num_rows)])
            batch = batch.filter(keep)
        columns = []
        for field in schema:
            if field.name in batch.column_names:
                columns.append(batch.column(field.name))
            else:
                columns.append(pa.nulls(batch.num_rows, field.type))
        return pa.Table.from_arrays(columns, schema=schema)

    def arrow_table(self) -> pa.Table | None:
        """Everything stored, as one Arrow table (None while nothing was ever written)."""
        with self._lock:
            self._flush()
            if not self._columns:
                return None
            schema = self._schema()
            tables = [self._conformed(b, d, schema) for b, d in zip(self._batches, self._dead, strict=True)]
            return pa.concat_tables(tables) if tables else schema.empty_table()

    def _session(self) -> SessionContext:
        self._flush()
        if self._context is None:
            context = SessionContext()
            data = self.arrow_table()
            if data is not None:  # a table exists once something was written to it
                context.register_record_batches(self.table, [data.to_batches()])
            self._context = context
        return self._context

    def _load(self) -> None:
        parts = sorted(self.directory.glob("part-*.parquet"))
        for path in parts:
            stored = pq.read_table(path)
            tags = [f.name for f in stored.schema if pa.types.is_dictionary(f.type)]
            fields = [f.name for f in stored.schema if f.name != TIME and f.name not in tags]
            for field in stored.schema:
                if field.name != TIME and field.name not in self._columns:
                    self._columns[field.name] = _TAG_TYPE if field.name in tags else field.type
            times = stored.column(TIME).cast(pa.int64()).to_pylist()
            tag_values = {name: stored.column(name).to_pylist() for name in tags}
            field_values = {name: stored.column(name).to_pylist() for name in fields}
            for row in range(stored.num_rows):
                point = Point(
                    self.table,
                    {n: v[row] for n, v in tag_values.items() if v[row] is not None},
                    {n: v[row] for n, v in field_values.items() if v[row] is not None},
                    times[row],
                )
                self._upsert(point)
            self._flush(persist=False)
        self._parts = len(parts)

    # -- the port -------------------------------------------------------------------------

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run InfluxDB 3 SQL on DataFusion; rows with the Timestream adapter's Python types.

        As on InfluxDB 3, a tag or field no stored point has carried is not in the table's
        schema: a query naming it fails (:class:`MissingColumnError`, DataFusion's message).
        """
        return _rows(self.query_arrow(sql))

    def query_arrow(self, sql: str) -> pa.Table:
        with self._lock:
            self._open()
            try:
                return self._session().sql(sql).to_arrow_table()
            except Exception as error:  # DataFusion raises plain exceptions with its message
                column = missing_column(str(error))
                if column is None:
                    raise
                raise MissingColumnError(column, str(error)) from None

    def count(self) -> int:
        with self._lock:
            return len(self._index) + len(self._pending)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush()
                self._closed = True
                self._context = None
        with _shared_lock:
            for key, store in list(_shared.items()):
                if store is self:
                    del _shared[key]

    def _open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the DataFusion time-series store {self.directory} is closed")

    def __enter__(self) -> DataFusionTimeseriesStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_shared: dict[tuple[Path, str, str], DataFusionTimeseriesStore] = {}
_shared_lock = threading.Lock()


def open_store(directory: str | Path, database: str, table: str) -> DataFusionTimeseriesStore:
    """The process's store for this directory, database and table (opened on first use)."""
    key = (Path(directory).resolve(), database, table)
    with _shared_lock:
        store = _shared.get(key)
        if store is None:
            store = _shared[key] = DataFusionTimeseriesStore(directory, database, table)
        return store


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    columns = {}
    for field in table.schema:
        column = table.column(field.name)
        kind = field.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
        elif pa.types.is_timestamp(kind):
            column = column.cast(pa.timestamp("us", tz=kind.tz or "UTC"), safe=False)
        elif pa.types.is_decimal(kind):
            column = column.cast(pa.float64())
        columns[field.name] = column.to_pylist()
    names = list(columns)
    rows = []
    for values in zip(*columns.values(), strict=True) if names else []:
        row = dict(zip(names, values, strict=True))
        rows.append(
            {
                k: (v.astimezone(UTC) if hasattr(v, "astimezone") and v is not None else v)
                for k, v in row.items()
            }
        )
    return rows
