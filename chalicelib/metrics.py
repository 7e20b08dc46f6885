"""Counts in CloudWatch embedded metric format (Powertools Metrics), one JSON line each.

Namespace `FuseBridge` (POWERTOOLS_METRICS_NAMESPACE). Each count is written at once, so nothing
is lost when an invocation fails, and a count's own dimension (a reason, a code) stays with it.
"""

from __future__ import annotations

import os

from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "FuseBridge")


def count(name: str, value: float = 1, **dimensions: str) -> None:
    emit(name, value, MetricUnit.Count, dimensions)


def seconds(name: str, value: float, **dimensions: str) -> None:
    """A duration: how long something took or waited."""
    emit(name, value, MetricUnit.Seconds, dimensions)


def emit(name: str, value: float, unit: MetricUnit, dimensions: dict[str, str]) -> None:
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
        for dimension, dimension_value in dimensions.items():
            metric.add_dimension(name=dimension, value=dimension_value)
