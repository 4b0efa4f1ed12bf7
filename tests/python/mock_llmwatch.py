#!/usr/bin/env python3
"""A minimal Python stand-in for the llmwatch binary, to test the e2e harness itself.

    python mock_llmwatch.py serve --otlp-grpc ADDR --otlp-http ADDR --metrics ADDR

Needs ``opentelemetry-proto`` (run it with an e2e venv's python). It accepts
OTLP/HTTP protobuf on ``/v1/traces`` (``/v1/logs`` is accepted and ignored; the
gRPC address is ignored), turns GenAI spans into the llmwatch metric contract
and serves ``/metrics`` and ``/readyz`` on the metrics address. It knows only
the attributes the two pinned emitters send; it is NOT a model of llmwatch's
normalization, just enough to show that ``check_metrics.py`` passes on correct
numbers. ``run_e2e.sh`` uses it when ``LLMWATCH_BIN=mock``.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
           40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864]
STD = ("service_name", "gen_ai_provider_name", "gen_ai_operation_name",
       "gen_ai_request_model", "gen_ai_response_model")
FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter",
          "tool_calls": "tool_call", "tool_call": "tool_call", "function_call": "tool_call",
          "error": "error"}

lock = threading.Lock()
counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
hists: dict[str, dict[tuple, list]] = defaultdict(dict)  # key -> [bucket counts..., sum, count]
label_names: dict[str, tuple] = {}


def _val(v):
    k = v.WhichOneof("value")
    if k == "array_value":
        return [_val(x) for x in v.array_value.values]
    return getattr(v, k) if k else None


def inc(name, labels: dict, by=1.0):
    label_names[name] = tuple(labels)
    counters[name][tuple(labels.values())] += by


def observe(name, labels: dict, value: float, bounds):
    label_names[name] = tuple(labels)
    h = hists[name].setdefault(tuple(labels.values()), [0] * len(bounds) + [0.0, 0])
    for i, b in enumerate(bounds):
        if value <= b:
            h[i] += 1
    h[-2] += value
    h[-1] += 1


def ingest_span(service: str, sp) -> None:
    a = {kv.key: _val(kv.value) for kv in sp.attributes}
    op = a.get("gen_ai.operation.name") or a.get("llm.request.type")
    if not op:
        return
    std = {"service_name": service,
           "gen_ai_provider_name": a.get("gen_ai.provider.name") or a.get("gen_ai.system") or "",
           "gen_ai_operation_name": op,
           "gen_ai_request_model": a.get("gen_ai.request.model") or "",
           "gen_ai_response_model": a.get("gen_ai.response.model") or ""}
    err = a.get("error.type") or ("_OTHER" if sp.status.code == 2 else "")
    dur = (sp.end_time_unix_nano - sp.start_time_unix_nano) / 1e9
    inc("llmwatch_llm_calls_total", dict(std, error_type=err))
    flag = a.get("gen_ai.is_streaming", a.get("llm.is_streaming"))
    stream = "unknown" if flag is None else ("true" if flag else "false")
    observe("gen_ai_client_operation_duration_seconds",
            dict(std, error_type=err, gen_ai_request_stream=stream), dur, BUCKETS)
    tokens = {
        "input": a.get("gen_ai.usage.input_tokens"),
        "output": a.get("gen_ai.usage.output_tokens"),
        "cache_read": a.get("gen_ai.usage.cache_read.input_tokens"),
        "cache_write": a.get("gen_ai.usage.cache_creation.input_tokens"),
        "reasoning": a.get("gen_ai.usage.reasoning.output_tokens",
                           a.get("gen_ai.usage.reasoning_tokens")),
    }
    for kind, n in tokens.items():
        if n is not None:
            inc("llmwatch_tokens_total", dict(std, token_type=kind), n)
            if kind in ("input", "output"):
                observe("gen_ai_client_token_usage", dict(std, gen_ai_token_type=kind), n,
                        TOKEN_BUCKETS)
    for r in a.get("gen_ai.response.finish_reasons") or []:
        inc("llmwatch_finish_reasons_total", dict(std, finish_reason=FINISH.get(r, "other")))
    chunks = sorted(ev.time_unix_nano for ev in sp.events
                    if ev.name in ("gen_ai.content.completion.chunk", "llm.content.completion.chunk"))
    ttft = a.get("gen_ai.response.time_to_first_chunk")
    if ttft is None and chunks:
        ttft = (chunks[0] - sp.start_time_unix_nano) / 1e9
    if ttft is not None:
        observe("gen_ai_client_operation_time_to_first_chunk_seconds", std, ttft, BUCKETS)
    for prev, cur in zip(chunks, chunks[1:]):
        observe("gen_ai_client_operation_time_per_output_chunk_seconds", std,
                (cur - prev) / 1e9, BUCKETS)


def _lb(names, values, extra=""):
    def esc(v):
        return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    parts = [f'{k}="{esc(v)}"' for k, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


def render() -> str:
    out = []
    with lock:
        for name, series in counters.items():
            out.append(f"# TYPE {name} counter")
            for values, v in series.items():
                out.append(f"{name}{_lb(label_names[name], values)} {v:g}")
        for name, series in hists.items():
            bounds = TOKEN_BUCKETS if name == "gen_ai_client_token_usage" else BUCKETS
            out.append(f"# TYPE {name} histogram")
            for values, h in series.items():
                names = label_names[name]
                for i, b in enumerate(bounds):
                    le = 'le="%s"' % b
                    out.append(f"{name}_bucket{_lb(names, values, le)} {h[i]}")
                inf = 'le="+Inf"'
                out.append(f"{name}_bucket{_lb(names, values, inf)} {h[-1]}")
                out.append(f"{name}_sum{_lb(names, values)} {h[-2]:g}")
                out.append(f"{name}_count{_lb(names, values)} {h[-1]}")
    return "\n".join(out) + "\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def _reply(self, status, body: bytes, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/readyz":
            self._reply(200, b"ready")
        elif self.path == "/metrics":
            self._reply(200, render().encode(), "text/plain; version=0.0.4")
        else:
            self._reply(404, b"not found")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if (self.headers.get("Content-Encoding") or "") == "gzip":
            body = gzip.decompress(body)
        if self.path == "/v1/traces":
            req = ExportTraceServiceRequest()
            req.ParseFromString(body)
            with lock:
                for rs in req.resource_spans:
                    svc = next((_val(kv.value) for kv in rs.resource.attributes
                                if kv.key == "service.name"), "unknown_service")
                    for ss in rs.scope_spans:
                        for sp in ss.spans:
                            ingest_span(svc, sp)
        elif self.path != "/v1/logs":
            self._reply(404, b"not found")
            return
        self._reply(200, b"", "application/x-protobuf")


def _addr(s: str):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--otlp-grpc")
    s.add_argument("--otlp-http", required=True)
    s.add_argument("--metrics", required=True)
    args = ap.parse_args(argv)
    servers = [ThreadingHTTPServer(_addr(args.otlp_http), Handler)]
    if args.metrics != args.otlp_http:
        servers.append(ThreadingHTTPServer(_addr(args.metrics), Handler))
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("mock llmwatch listening", args.otlp_http, args.metrics, flush=True)
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
