"""IngestGraphFunction: Kinesis -> graph store (Neptune on AWS, the embedded engine locally)."""

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
    store = backends.graph_store(settings)
    return handle_kinesis_event(
        event,
        write=store.upsert_transactions,
        sink=backends.rejected_sink(settings),
        source="IngestGraphFunction",
        mapping=load_mapping(settings.field_mapping),
        context=context,
        max_amount=settings.max_amount,
    )
