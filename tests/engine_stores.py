"""The same transactions in the local DuckDB store and in the local DataFusion (InfluxDB 3) store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fraudcore.model import Transaction
from fraudlocal.adapters.timeseries_datafusion import DataFusionTimeseriesStore
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore


def both_engines(
    root: Path, transactions: Sequence[Transaction]
) -> tuple[DuckDBTimeseriesStore, DataFusionTimeseriesStore]:
    """Both stores under ``root``, holding ``transactions`` (every one stored in each)."""
    duck = DuckDBTimeseriesStore(root / "ts.duckdb", "fraud", "transactions")
    fusion = DataFusionTimeseriesStore(root / "datafusion", "fraud", "transactions")
    for start in range(0, len(transactions), 1000):
        assert not duck.write(transactions[start : start + 1000]).failed
        outcome = fusion.write(transactions[start : start + 1000])
        assert not outcome.failed and not outcome.rejected
    return duck, fusion
