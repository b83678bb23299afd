"""IngestTimeseriesFunction: Kinesis -> time-series store (Timestream on AWS, DuckDB locally)."""

from fraudcore import backends
from fraudcore.ingest import handle_kinesis_event
from fraudcore.mapping import load_mapping
from fraudcore.observability import logger, metrics, tracer
from fraudcore.settings import get_settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    settings = get_settings()
    store = backends.timeseries_store(settings)
    return handle_kinesis_event(
        event,
        write=store.write,
        sink=backends.rejected_sink(settings),
        source="IngestTimeseriesFunction",
        mapping=load_mapping(settings.field_mapping),
        context=context,
        max_amount=settings.max_amount,
    )
