#!/usr/bin/env python3
"""A throwaway OTLP/HTTP receiver that saves request bodies, and a decoder for them.

    capture_otlp.py serve --out DIR [--port 0] [--port-file F]
    capture_otlp.py dump FILE_OR_DIR... [--json]
    capture_otlp.py merge DIR OUT_PREFIX

``serve`` needs only the standard library. It accepts ``POST /v1/traces``,
``/v1/logs`` and ``/v1/metrics`` (protobuf or JSON, gzip or not), answers 200
with an empty export response, and writes each body, decompressed, to
``DIR/NNNN-<signal>.pb`` (``.json`` for OTLP/JSON), e.g. ``0003-traces.pb``.

``merge`` (needs ``opentelemetry-proto``) merges all ``*traces*.pb`` bodies of
DIR into ``OUT_PREFIX-traces.pb`` and all ``*logs*.pb`` into ``OUT_PREFIX-logs.pb``
(one export request each; a signal with no bodies gives no file).

``dump`` needs the ``opentelemetry-proto`` package (any e2e venv has it). It
decodes saved ``*traces*.pb`` / ``*logs*.pb`` files and prints the resource,
spans (name, kind, duration, attributes, events) and log records
(event name, attributes, body) in a readable form, or as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNALS = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("capture_otlp: " + (fmt % args) + "\n")

    def _reply(self, status: int, body: bytes = b"", ctype: str = "application/x-protobuf"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._reply(200 if self.path in ("/healthz", "/readyz") else 404, b"ok", "text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        signal = SIGNALS.get(self.path.split("?", 1)[0])
        if signal is None:
            self._reply(404, b"unknown path", "text/plain")
            return
        enc = (self.headers.get("Content-Encoding") or "").lower()
        if enc == "gzip":
            body = gzip.decompress(body)
        elif enc == "deflate":
            body = zlib.decompress(body)
        is_json = "json" in (self.headers.get("Content-Type") or "")
        with self.server.lock:
            self.server.seq += 1
            name = f"{self.server.seq:04d}-{signal}.{'json' if is_json else 'pb'}"
        with open(os.path.join(self.server.out, name), "wb") as f:
            f.write(body)
        if is_json:
            self._reply(200, b"{}", "application/json")
        else:
            self._reply(200)


def serve(args) -> int:
    os.makedirs(args.out, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    server.daemon_threads = True
    server.out = args.out
    server.lock = threading.Lock()
    server.seq = 0
    server.verbose = args.verbose
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"PORT {port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


# ---------------------------------------------------------------- decoding


def _any(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def _attrs(kvs) -> dict:
    return {kv.key: _any(kv.value) for kv in kvs}


def decode_file(path: str) -> dict:
    """Decode one saved body into plain Python data."""
    base = os.path.basename(path)
    with open(path, "rb") as f:
        data = f.read()
    if "traces" in base:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        req = ExportTraceServiceRequest()
        req.ParseFromString(data)
        out = []
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    out.append({
                        "resource": _attrs(rs.resource.attributes),
                        "scope": f"{ss.scope.name} {ss.scope.version}".strip(),
                        "name": sp.name,
                        "kind": sp.kind,
                        "duration_s": (sp.end_time_unix_nano - sp.start_time_unix_nano) / 1e9,
                        "status": {"code": sp.status.code, "message": sp.status.message},
                        "attributes": _attrs(sp.attributes),
                        "events": [
                            {
                                "name": ev.name,
                                "offset_s": (ev.time_unix_nano - sp.start_time_unix_nano) / 1e9,
                                "attributes": _attrs(ev.attributes),
                            }
                            for ev in sp.events
                        ],
                    })
        return {"file": base, "signal": "traces", "spans": out}
    if "logs" in base:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        req = ExportLogsServiceRequest()
        req.ParseFromString(data)
        out = []
        for rl in req.resource_logs:
            for sl in rl.scope_logs:
                for lr in sl.log_records:
                    out.append({
                        "resource": _attrs(rl.resource.attributes),
                        "scope": f"{sl.scope.name} {sl.scope.version}".strip(),
                        "event_name": lr.event_name,
                        "severity": lr.severity_number,
                        "attributes": _attrs(lr.attributes),
                        "body": _any(lr.body),
                        "trace_id": lr.trace_id.hex(),
                    })
        return {"file": base, "signal": "logs", "records": out}
    return {"file": base, "signal": "other", "bytes": len(data)}


def dump(args) -> int:
    files: list[str] = []
    for p in args.paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, n) for n in os.listdir(p) if n.endswith(".pb"))
        else:
            files.append(p)
    decoded = [decode_file(f) for f in files]
    if args.json:
        json.dump(decoded, sys.stdout, indent=2, default=str)
        print()
        return 0
    for d in decoded:
        print(f"=== {d['file']}")
        for sp in d.get("spans", []):
            print(f"  span {sp['name']!r} kind={sp['kind']} dur={sp['duration_s']:.3f}s "
                  f"status={sp['status']['code']} service={sp['resource'].get('service.name')}")
            for k, v in sorted(sp["attributes"].items()):
                print(f"    {k} = {v!r}")
            for ev in sp["events"]:
                print(f"    event {ev['name']!r} +{ev['offset_s']:.3f}s {ev['attributes']}")
        for lr in d.get("records", []):
            print(f"  log event_name={lr['event_name']!r} attrs={lr['attributes']} "
                  f"body={json.dumps(lr['body'], default=str)[:200]}")
    return 0


def merge(args) -> int:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    names = sorted(n for n in os.listdir(args.dir) if n.endswith(".pb"))
    for signal, cls in (("traces", ExportTraceServiceRequest), ("logs", ExportLogsServiceRequest)):
        files = [n for n in names if signal in n]
        if not files:
            continue
        merged = cls()
        for n in files:
            part = cls()
            with open(os.path.join(args.dir, n), "rb") as f:
                part.ParseFromString(f.read())
            merged.MergeFrom(part)
        out = f"{args.out_prefix}-{signal}.pb"
        with open(out, "wb") as f:
            f.write(merged.SerializeToString())
        print(f"{out}: {len(files)} request(s) merged")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="OTLP/HTTP capture receiver and decoder")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--out", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--port-file")
    s.add_argument("--verbose", action="store_true")
    d = sub.add_parser("dump")
    d.add_argument("paths", nargs="+")
    d.add_argument("--json", action="store_true")
    g = sub.add_parser("merge")
    g.add_argument("dir")
    g.add_argument("out_prefix")
    args = ap.parse_args(argv)
    return {"serve": serve, "dump": dump, "merge": merge}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
