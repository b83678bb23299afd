"""Powertools Logger, Tracer and Metrics, shared by every function.

Service name and metrics namespace come from ``POWERTOOLS_SERVICE_NAME`` and
``POWERTOOLS_METRICS_NAMESPACE`` (set in template.yaml). When the local runner sets
``FRAUD_LOCAL_RUN=1`` logs go to stderr, so a handler's JSON response alone is on stdout.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from .pii import mask_value

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "fraud-detection")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "FraudDetection")
# X-Ray keeps a handler's response as trace metadata by default: responses name entities
# (emails, phones, cards, IPs), so they stay out of traces.
os.environ.setdefault("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "false")

_local = os.environ.get("FRAUD_LOCAL_RUN") == "1"


class MaskingFormatter(LambdaPowertoolsFormatter):
    """Structured JSON logs with every email, phone, card and IP masked (see fraudcore.pii)."""

    def serialize(self, log: dict[str, Any]) -> str:
        return super().serialize(mask_value(log))


logger = Logger(stream=sys.stderr if _local else None, logger_formatter=MaskingFormatter())
tracer = Tracer()
metrics = Metrics()
