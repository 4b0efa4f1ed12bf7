#!/usr/bin/env python3
"""Emitter (a'): ``opentelemetry-instrumentation-openai-v2`` with content in log events only.

    FAKE_OPENAI_URL=http://127.0.0.1:P LLMWATCH_OTLP_HTTP=http://127.0.0.1:4318 \
        python client_openai_v2_events.py [--service NAME]

The same pipeline as ``client_openai_v2.py`` (same venv), with content capture
``EVENT_ONLY``: spans carry no prompt or answer, only the
``gen_ai.client.inference.operation.details`` log events do. llmwatch must join
them to their spans (in either arrival order) for the safety monitor and
sessions, and must count exactly what it counts for the span-content service.
"""

import os
import runpy
import sys

os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "EVENT_ONLY"
# Logs leave before spans, as with the SDK's defaults (log batches every 1 s, span batches every
# 5 s), scaled to this run: llmwatch learns that the service sends content as events from its
# first log batch, and waits for the events of the spans that follow. (A service whose spans
# reach llmwatch before any of its content events loses the event content of those first spans.)
os.environ.setdefault("E2E_LOG_DELAY_MS", "100")
if "--service" not in sys.argv:
    sys.argv[1:1] = ["--service", "e2e-openai-v2-events"]
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "client_openai_v2.py"),
               run_name="__main__")
