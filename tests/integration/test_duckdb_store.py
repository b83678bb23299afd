"""The DuckDB time-series store on a real DuckDB file."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from fraudcore.model import DIMENSION_FIELDS, Transaction
from fraudcore.ports import TimeseriesStore
from fraudcore.timeseries import MissingColumnError
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore, read_horizon

START = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def tx(n: int, **fields: object) -> Transaction:
    values: dict[str, object] = {
        "transaction_id": f"tx-{n}",
        "timestamp": START + timedelta(seconds=n),
        "account_id": f"acct-{n % 5}",
        "amount": 10.0 * n,
    }
    values.update(fields)
    return Transaction(**values)


@pytest.fixture
def store(tmp_path: Path) -> DuckDBTimeseriesStore:
    with DuckDBTimeseriesStore(tmp_path / "timeseries.duckdb", "fraud", "transactions") as opened:
        yield opened


def test_implements_the_port_and_creates_the_documented_table(store: DuckDBTimeseriesStore) -> None:
    assert isinstance(store, TimeseriesStore)
    columns = store.query_duckdb(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'fraud' AND table_name = 'transactions' ORDER BY ordinal_position"
    )
    assert [(c["column_name"], c["data_type"]) for c in columns] == [
        ("time", "TIMESTAMP"),
        ("measure_name", "VARCHAR"),
        *[(name, "VARCHAR") for name in DIMENSION_FIELDS],
        ("amount", "DOUBLE"),
    ]
    keys = store.query_duckdb(
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE schema_name = 'fraud' AND table_name = 'transactions' AND constraint_type = 'PRIMARY KEY'"
    )
    assert keys == [{"constraint_column_names": ["transaction_id"]}]


def test_rows_hold_naive_utc_millisecond_time_and_null_for_absent_dimensions(
    store: DuckDBTimeseriesStore,
) -> None:
    # 16:00 at +02:00 is 14:00 UTC; microseconds are cut to the millisecond.
    store.write([tx(1, timestamp="2026-11-29T16:00:00.123456+02:00", device_id="dev-1", amount="12.5")])
    (row,) = store.query_duckdb("SELECT * FROM fraud.transactions")
    assert row["time"] == datetime(2026, 11, 29, 14, 0, 0, 123000, tzinfo=UTC)
    assert row["measure_name"] == "transaction"
    assert row["device_id"] == "dev-1" and row["card_id"] is None and row["currency"] == "USD"
    assert row["amount"] == 12.5
    (raw,) = store._open().execute("SELECT time FROM fraud.transactions").fetchall()
    assert raw[0].tzinfo is None  # stored naive UTC


def test_write_reports_every_id_stored_in_one_request(store: DuckDBTimeseriesStore) -> None:
    outcome = store.write([tx(n) for n in range(500)])
    assert len(outcome.stored) == 500 and outcome.requests == 1
    assert not outcome.rejected and not outcome.failed
    assert store.count() == 500


def test_replaying_a_batch_changes_no_count_and_keeps_first_values(store: DuckDBTimeseriesStore) -> None:
    batch = [tx(n) for n in range(100)]
    store.write(batch)
    replay = store.write([*batch, tx(5, amount=999.0)])
    assert replay.stored == {f"tx-{n}" for n in range(100)}
    assert store.count() == 100
    (row,) = store.query_duckdb("SELECT amount FROM fraud.transactions WHERE transaction_id = 'tx-5'")
    assert row["amount"] == 50.0


def test_repeated_id_inside_one_batch_is_stored_once(store: DuckDBTimeseriesStore) -> None:
    outcome = store.write([tx(1), tx(2), tx(1, amount=7.0)])
    assert outcome.stored == {"tx-1", "tx-2"}
    assert store.count() == 2


def test_empty_batch_makes_no_request(store: DuckDBTimeseriesStore) -> None:
    outcome = store.write([])
    assert outcome.requests == 0 and store.count() == 0


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "timeseries.duckdb"
    first = DuckDBTimeseriesStore(path, "fraud", "transactions")
    first.write([tx(n) for n in range(10)])
    first.close()
    again = DuckDBTimeseriesStore(path, "fraud", "transactions")
    assert again.count() == 10
    again.close()


def test_what_a_write_stored_survives_a_process_that_dies_before_any_checkpoint(tmp_path: Path) -> None:
    """The store checkpoints rarely (a checkpoint writes the id index whole): a write that
    returned is in DuckDB's log, and the next open replays it."""
    import subprocess
    import sys

    path = tmp_path / "timeseries.duckdb"
    script = (
        "import os\n"
        "from datetime import UTC, datetime, timedelta\n"
        "from fraudcore.model import Transaction\n"
        "from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore\n"
        f"store = DuckDBTimeseriesStore({str(path)!r}, 'fraud', 'transactions')\n"
        "start = datetime(2026, 11, 29, 12, tzinfo=UTC)\n"
        "outcome = store.write([Transaction(transaction_id=f'tx-{n}', timestamp=start + timedelta(seconds=n),"
        " account_id='acct-1', amount=1.0) for n in range(25)])\n"
        "assert len(outcome.stored) == 25, outcome\n"
        "os._exit(0)  # no close: no checkpoint\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert path.with_name(path.name + ".wal").stat().st_size > 0  # the records are in the log only
    again = DuckDBTimeseriesStore(path, "fraud", "transactions")
    try:
        assert again.count() == 25
    finally:
        again.close()


def test_closed_store_says_so(tmp_path: Path) -> None:
    store = DuckDBTimeseriesStore(tmp_path / "t.duckdb", "fraud", "transactions")
    store.close()
    with pytest.raises(RuntimeError, match="is closed"):
        store.count()


def test_query_runs_timestream_sql(store: DuckDBTimeseriesStore) -> None:
    store.write([tx(n, device_id="dev-shared" if n % 2 else None) for n in range(20)])
    rows = store.query(
        "SELECT account_id, count(*) AS tx_count, sum(amount) AS total, max(time) AS last_seen "
        'FROM "fraud"."transactions" WHERE measure_name = \'transaction\' '
        "GROUP BY account_id ORDER BY account_id"
    )
    assert [r["account_id"] for r in rows] == [f"acct-{i}" for i in range(5)]
    assert rows[0]["tx_count"] == 4 and rows[0]["total"] == 0.0 + 50 + 100 + 150
    assert rows[4]["last_seen"] == START + timedelta(seconds=19)
    assert rows[4]["last_seen"].tzinfo is UTC


def test_query_translates_timestream_functions(store: DuckDBTimeseriesStore) -> None:
    pytest.importorskip("fraudlocal.adapters.timestream_sql")
    store.write([tx(n) for n in range(600)])  # 10 minutes of one transaction per second
    rows = store.query(
        'SELECT bin(time, 5m) AS window_start, count(*) AS tx_count FROM "fraud"."transactions" '
        "GROUP BY bin(time, 5m) ORDER BY window_start"
    )
    assert rows == [
        {"window_start": START, "tx_count": 300},
        {"window_start": START + timedelta(minutes=5), "tx_count": 300},
    ]


def test_decimal_results_come_back_as_floats(store: DuckDBTimeseriesStore) -> None:
    (row,) = store.query_duckdb("SELECT 1.5 AS ratio, 2::BIGINT AS n")
    assert row == {"ratio": 1.5, "n": 2} and isinstance(row["ratio"], float)


def test_a_second_writer_process_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "timeseries.duckdb"
    store = DuckDBTimeseriesStore(path, "fraud", "transactions")
    try:
        other = subprocess.run(
            [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r})"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        store.close()
    assert other.returncode != 0
    assert "lock" in other.stderr.lower()
    assert duckdb.connect(str(path)).execute("SELECT count(*) FROM fraud.transactions").fetchone() == (0,)


# -- as strict as Timestream --------------------------------------------------------------------


def test_a_column_exists_once_a_record_has_used_it(store: DuckDBTimeseriesStore) -> None:
    from fraudcore.timeseries import MissingColumnError

    store.write([tx(1)])  # no card, device, ip, country
    sql = 'SELECT card_id, count(*) AS n FROM "fraud"."transactions"\nWHERE card_id IS NOT NULL GROUP BY card_id'
    with pytest.raises(MissingColumnError) as raised:
        store.query(sql)
    assert raised.value.column == "card_id"
    assert str(raised.value) == "ValidationException: line 1:8: Column 'card_id' does not exist"
    store.write([tx(2, card_id="card-9")])
    assert store.query(sql) == [{"card_id": "card-9", "n": 1}]
    # always there: time, measure_name, and what every record carries
    assert store.query('SELECT count(*) AS n FROM "fraud"."transactions" WHERE account_id IS NOT NULL')


def test_columns_in_use_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "timeseries.duckdb"
    with DuckDBTimeseriesStore(path, "fraud", "transactions") as first:
        first.write([tx(1, device_id="dev-1")])
    with DuckDBTimeseriesStore(path, "fraud", "transactions") as reopened:
        assert "device_id" in reopened.columns_in_use and "ip" not in reopened.columns_in_use
        assert reopened.query('SELECT device_id FROM "fraud"."transactions"') == [{"device_id": "dev-1"}]


def test_a_column_another_writer_used_is_seen_by_a_store_opened_before(tmp_path: Path) -> None:
    # The ingest function and micro-analysis each open the store; Timestream's columns are
    # the table's, not a connection's: once any writer stored a card, every reader can query it.
    path = tmp_path / "timeseries.duckdb"
    with DuckDBTimeseriesStore(path, "fraud", "transactions") as reader:
        reader.write([tx(1)])
        sql = 'SELECT card_id FROM "fraud"."transactions" WHERE card_id IS NOT NULL'
        with pytest.raises(MissingColumnError):
            reader.query(sql)
        with DuckDBTimeseriesStore(path, "fraud", "transactions") as writer:
            writer.write([tx(2, card_id="card-7")])
        assert reader.query(sql) == [{"card_id": "card-7"}]


def test_a_missing_column_costs_no_scan_of_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stores open on a file share what its records have used: asking again for a column
    # nobody has used does not scan the whole table each time (a replay asks at every tick).
    path = tmp_path / "timeseries.duckdb"
    with DuckDBTimeseriesStore(path, "fraud", "transactions") as store:
        store.write([tx(n) for n in range(50)])
        scans: list[int] = []
        scan = DuckDBTimeseriesStore._first_uses_in_store
        monkeypatch.setattr(
            DuckDBTimeseriesStore, "_first_uses_in_store", lambda self: scans.append(1) or scan(self)
        )
        sql = 'SELECT card_id FROM "fraud"."transactions" WHERE card_id IS NOT NULL'
        for _ in range(20):
            with pytest.raises(MissingColumnError):
                store.query(sql)
        assert scans == []
        # SQL run past the store's own writes may use a column: the next miss scans once
        store.query_duckdb(
            "INSERT INTO fraud.transactions (time, measure_name, transaction_id, account_id, card_id, amount)"
            " VALUES (TIMESTAMP '2026-11-29 13:00:00', 'transaction', 'tx-raw', 'acct-1', 'card-raw', 1.0)"
        )
        assert store.query(sql) == [{"card_id": "card-raw"}]
        assert len(scans) == 1
        with pytest.raises(MissingColumnError):
            store.query('SELECT ip FROM "fraud"."transactions" WHERE ip IS NOT NULL')
        assert len(scans) == 1


def test_a_record_over_timestreams_limits_is_rejected_not_stored(store: DuckDBTimeseriesStore) -> None:
    # The canonical model already refuses identifiers this long; the store checks again, as
    # Timestream would, so the value is set past the model's validation.
    oversized = tx(1).model_copy(update={"device_id": "d" * 2100})
    outcome = store.write([oversized, tx(2)])
    assert outcome.stored == {"tx-2"}
    assert "Timestream would refuse the record" in outcome.rejected["tx-1"]
    assert store.count() == 1
    assert "device_id" not in store.columns_in_use  # the refused record created no column


# -- a replay's horizon ---------------------------------------------------------------------------


def test_a_replay_horizon_hides_later_rows_from_its_own_thread_only(store: DuckDBTimeseriesStore) -> None:
    store.write([tx(n) for n in range(1, 11)])  # one a second from START + 1 s
    sql = 'SELECT count(*) AS n FROM "fraud"."transactions"'
    seen_elsewhere: list[object] = []
    with read_horizon(store.path, START + timedelta(seconds=5)):
        assert store.query(sql) == [{"n": 4}]  # before the horizon only
        # the rules of the next span, evaluated on another thread meanwhile, see every row
        other = threading.Thread(target=lambda: seen_elsewhere.append(store.query(sql)))
        other.start()
        other.join()
        with read_horizon(store.path, START + timedelta(seconds=3)):
            assert store.query(sql) == [{"n": 2}]
        assert store.query(sql) == [{"n": 4}]
    assert seen_elsewhere == [[{"n": 10}]]
    assert store.query(sql) == [{"n": 10}]


def test_under_a_horizon_a_column_first_used_after_it_does_not_exist_yet(tmp_path: Path) -> None:
    path = tmp_path / "timeseries.duckdb"
    sql = 'SELECT device_id FROM "fraud"."transactions" WHERE device_id IS NOT NULL'
    with DuckDBTimeseriesStore(path, "fraud", "transactions") as reader:
        reader.write([tx(1)])
        with DuckDBTimeseriesStore(path, "fraud", "transactions") as writer:  # the ingest function's
            writer.write([tx(8, device_id="dev-8"), tx(2)])
            with read_horizon(path, START + timedelta(seconds=5)):
                for store in (reader, writer):
                    with pytest.raises(MissingColumnError, match="Column 'device_id' does not exist"):
                        store.query(sql)
            # a late record using it, before the horizon: the column exists there now
            writer.write([tx(4, device_id="dev-4")])
        with read_horizon(path, START + timedelta(seconds=5)):
            assert reader.query(sql) == [{"device_id": "dev-4"}]
        assert sorted(row["device_id"] for row in reader.query(sql)) == ["dev-4", "dev-8"]
