"""OpenTelemetry: one tracer provider per process; FastStream's middleware carries the
trace context in message headers, so a trace follows a message across services.

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` names a collector (spans are then
exported if the OTLP exporter package is installed); otherwise no spans are made at all,
because nobody would see them.
"""

from __future__ import annotations

import logging
import os
from functools import cache

from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger("postwire.tracing")


def tracing_enabled() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


@cache
def tracer_provider() -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "postwire"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp "
                "is not installed; spans are not exported"
            )
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


@cache
def broker_tracing_middleware() -> RabbitTelemetryMiddleware:
    return RabbitTelemetryMiddleware(tracer_provider=tracer_provider())
