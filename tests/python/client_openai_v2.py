#!/usr/bin/env python3
"""Emitter (a): official ``opentelemetry-instrumentation-openai-v2`` (2.4b0).

    FAKE_OPENAI_URL=http://127.0.0.1:P LLMWATCH_OTLP_HTTP=http://127.0.0.1:4318 \
        python client_openai_v2.py [--service NAME]

Sets OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental and content
capture SPAN_AND_EVENT. (With opentelemetry-util-genai 1.1b0,
``is_experimental_mode()`` always returns True, so the v1.30 "legacy" shape is
unreachable anyway: spans carry gen_ai.provider.name either way.) Each call
gives a ``chat {model}`` span and a ``gen_ai.client.inference.operation.details``
log event with the same usage attributes. Manual instrumentation with our own
SDK pipeline: traces and logs go over OTLP/HTTP protobuf to $LLMWATCH_OTLP_HTTP;
no metrics are exported.
"""

import argparse
import os
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--service", default="e2e-openai-v2")
args = ap.parse_args()
service = args.service

# These must be set before the instrumentation reads them.
os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_AND_EVENT")

from opentelemetry import _logs, trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

import e2e_driver  # noqa: E402

otlp = e2e_driver.otlp_base()
resource = e2e_driver.resource_for(service)
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(
    BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp}/v1/traces", timeout=10),
                       schedule_delay_millis=500)
)
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(
    BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{otlp}/v1/logs", timeout=10),
                            schedule_delay_millis=int(os.environ.get("E2E_LOG_DELAY_MS", "500")))
)
trace.set_tracer_provider(tracer_provider)
_logs.set_logger_provider(logger_provider)

OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)

failures = e2e_driver.run_scenarios(service)

ok_t = tracer_provider.force_flush(timeout_millis=10_000)
ok_l = logger_provider.force_flush(timeout_millis=10_000)
tracer_provider.shutdown()
logger_provider.shutdown()
print(f"[{service}] flushed traces={ok_t} logs={ok_l}; unexpected outcomes: {failures}", flush=True)
sys.exit(1 if failures or not (ok_t and ok_l) else 0)
