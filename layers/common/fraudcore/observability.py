"""Powertools Logger, Tracer and Metrics, shared by every function.

Service name and metrics namespace come from ``POWERTOOLS_SERVICE_NAME`` and
``POWERTOOLS_METRICS_NAMESPACE`` (set in template.yaml). When the local runner sets
``FRAUD_LOCAL_RUN=1`` logs go to stderr, so a handler's JSON response alone is on stdout.
"""

from __future__ import annotations

import os
import sys

from aws_lambda_powertools import Logger, Metrics, Tracer

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "fraud-detection")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "FraudDetection")

_local = os.environ.get("FRAUD_LOCAL_RUN") == "1"

logger = Logger(stream=sys.stderr if _local else None)
tracer = Tracer()
metrics = Metrics()
