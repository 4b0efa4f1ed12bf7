#!/usr/bin/env python3
"""A scripted fake OpenAI-compatible server for llmwatch's end-to-end tests.

Standard library only, so it runs under any Python 3.8+ without a venv.

    python3 fake_openai.py [--port 0] [--port-file F] [--ledger ledger.json]

Binds 127.0.0.1 (port 0 = pick a free one), prints ``PORT <n>`` on stdout and,
with ``--port-file``, writes the port number there once it is listening.

Endpoints:

* ``POST /v1/chat/completions``: answers from ``SCENARIOS``. The scenario is
  picked by the last user message when it reads ``scenario:<id>``, otherwise by
  the request's ``model`` (the first scenario with that request model).
* ``GET /_scenarios``: the scenario list as JSON (the clients drive themselves
  from it, so the script lives in one place).
* ``GET /_ledger``: the ledger so far.
* ``GET /healthz``: 200.

Every answered chat call is appended to the ledger, which is rewritten
atomically to ``--ledger`` after each call. One ledger entry says exactly what
the server returned: emitter (from the ``X-E2E-Emitter`` request header),
scenario, request/response model, status, streamed, the usage that was sent
(``null`` when none was), finish reason, number of content chunks, first-chunk
delay, and error type.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Token fields use OpenAI's meaning: ``prompt`` includes ``cached``,
# ``completion`` includes ``reasoning``.
#
# First-chunk delays are chosen well inside a bucket of the spec's duration
# boundaries [..., 0.16, 0.32, 0.64, 1.28, ...] so client-side overhead (a few
# ms on loopback) cannot move a call to the next bucket.
SCENARIOS: list[dict] = [
    {
        "id": "basic-1",
        "description": "non-streaming, stop, cached + reasoning tokens, system_fingerprint",
        "model": "gpt-e2e-basic",
        "response_model": "gpt-e2e-basic-2025-01-01",
        "stream": False,
        "usage": {"prompt": 120, "cached": 64, "completion": 48, "reasoning": 16},
        "finish_reason": "stop",
        "content": "Hello from the fake server.",
        "system_fingerprint": "fp_e2e_basic",
    },
    {
        "id": "basic-2",
        "description": "non-streaming, same model again, no cache/reasoning (totals must add up)",
        "model": "gpt-e2e-basic",
        "response_model": "gpt-e2e-basic-2025-01-01",
        "stream": False,
        "usage": {"prompt": 200, "cached": 0, "completion": 10, "reasoning": 0},
        "finish_reason": "stop",
        "content": "Second answer.",
        "system_fingerprint": "fp_e2e_basic",
    },
    {
        "id": "length",
        "description": "non-streaming, finish_reason=length (max_tokens hit)",
        "model": "gpt-e2e-length",
        "response_model": "gpt-e2e-length-2025-02-02",
        "stream": False,
        "max_tokens": 8,
        "usage": {"prompt": 25, "cached": 0, "completion": 8, "reasoning": 0},
        "finish_reason": "length",
        "content": "This answer was cut",
        "system_fingerprint": "fp_e2e_length",
    },
    {
        "id": "tools",
        "description": "non-streaming, finish_reason=tool_calls with one tool call",
        "model": "gpt-e2e-tools",
        "response_model": "gpt-e2e-tools-2025-03-03",
        "stream": False,
        "tools": True,
        "usage": {"prompt": 80, "cached": 32, "completion": 20, "reasoning": 0},
        "finish_reason": "tool_calls",
        "tool_call": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
        "system_fingerprint": "fp_e2e_tools",
    },
    {
        "id": "stream-usage",
        "description": "streaming with stream_options.include_usage, 0.25 s before the first chunk",
        "model": "gpt-e2e-stream",
        "response_model": "gpt-e2e-stream-2025-04-04",
        "stream": True,
        "include_usage": True,
        "first_chunk_delay_s": 0.25,
        "chunks": ["Once ", "upon ", "a ", "time ", "there ", "was."],
        "inter_chunk_delay_s": 0.02,
        "usage": {"prompt": 40, "cached": 16, "completion": 12, "reasoning": 4},
        "finish_reason": "stop",
        "system_fingerprint": "fp_e2e_stream",
    },
    {
        "id": "stream-slow-length",
        "description": "streaming with usage, 0.45 s before the first chunk, finish_reason=length",
        "model": "gpt-e2e-stream-slow",
        "response_model": "gpt-e2e-stream-slow-2025-05-05",
        "stream": True,
        "include_usage": True,
        "max_tokens": 5,
        "first_chunk_delay_s": 0.45,
        "chunks": ["A ", "long ", "story ", "that ", "stops"],
        "inter_chunk_delay_s": 0.02,
        "usage": {"prompt": 15, "cached": 0, "completion": 5, "reasoning": 0},
        "finish_reason": "length",
        "system_fingerprint": "fp_e2e_stream_slow",
    },
    {
        "id": "stream-nousage",
        "description": "streaming without include_usage: the server sends no usage at all",
        "model": "gpt-e2e-stream-nousage",
        "response_model": "gpt-e2e-stream-nousage-2025-06-06",
        "stream": True,
        "include_usage": False,
        "first_chunk_delay_s": 0.25,
        "chunks": ["No ", "usage ", "here."],
        "inter_chunk_delay_s": 0.02,
        "usage": None,
        "finish_reason": "stop",
        "system_fingerprint": "fp_e2e_stream_nousage",
    },
    {
        "id": "pii",
        "description": "non-streaming, stop; the answer leaks an e-mail address (safety monitor)",
        "model": "gpt-e2e-pii",
        "response_model": "gpt-e2e-pii-2025-07-07",
        "stream": False,
        "usage": {"prompt": 30, "cached": 0, "completion": 12, "reasoning": 0},
        "finish_reason": "stop",
        "content": "Write to jane.doe@example.com for a refund.",
        "system_fingerprint": "fp_e2e_pii",
    },
    {
        "id": "ratelimit",
        "description": "429 with a JSON error body and Retry-After",
        "model": "gpt-e2e-ratelimit",
        "response_model": None,
        "stream": False,
        "status": 429,
        "retry_after": "1",
        "error": {
            "message": "Rate limit reached for gpt-e2e-ratelimit (fake).",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    },
]

SCENARIO_BY_ID = {s["id"]: s for s in SCENARIOS}


class Ledger:
    def __init__(self, path: str | None):
        self.path = path
        self.lock = threading.Lock()
        self.entries: list[dict] = []
        self._write()

    def add(self, entry: dict) -> None:
        with self.lock:
            entry["seq"] = len(self.entries)
            self.entries.append(entry)
            self._write()

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.entries)

    def _write(self) -> None:
        if not self.path:
            return
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            json.dump({"calls": self.entries}, f, indent=2)
        os.replace(tmp, self.path)


def usage_body(usage: dict) -> dict:
    return {
        "prompt_tokens": usage["prompt"],
        "completion_tokens": usage["completion"],
        "total_tokens": usage["prompt"] + usage["completion"],
        "prompt_tokens_details": {"cached_tokens": usage["cached"], "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage["reasoning"],
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def find_scenario(req: dict) -> dict | None:
    for msg in reversed(req.get("messages") or []):
        if msg.get("role") == "user" and isinstance(msg.get("content"), str):
            text = msg["content"].strip()
            if text.startswith("scenario:"):
                sid = text[len("scenario:"):].strip()
                if sid in SCENARIO_BY_ID:
                    return SCENARIO_BY_ID[sid]
            break
    for s in SCENARIOS:
        if s["model"] == req.get("model"):
            return s
    return None


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-openai/1.0"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle plus the
    # client's delayed ACK adds ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            sys.stderr.write("fake_openai: " + (fmt % args) + "\n")

    # ---- helpers -------------------------------------------------------
    def _send_json(self, status: int, body, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _sse(self, obj) -> None:
        payload = obj if isinstance(obj, str) else json.dumps(obj)
        self.wfile.write(f"data: {payload}\n\n".encode())
        self.wfile.flush()

    # ---- routes --------------------------------------------------------
    def do_GET(self):
        if self.path == "/healthz":
            self._send_json(200, {"ok": True})
        elif self.path == "/_scenarios":
            self._send_json(200, {"scenarios": SCENARIOS})
        elif self.path == "/_ledger":
            self._send_json(200, {"calls": self.server.ledger.snapshot()})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._send_json(404, {"error": {"message": f"unknown path {self.path}"}})
            return
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, {"error": {"message": "invalid JSON"}})
            return
        scenario = find_scenario(req)
        if scenario is None:
            self._send_json(
                404,
                {"error": {"message": f"no scenario for model {req.get('model')!r}",
                           "type": "invalid_request_error", "code": "model_not_found"}},
            )
            return
        emitter = self.headers.get("X-E2E-Emitter", "")
        stream = bool(req.get("stream"))
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        entry = {
            "emitter": emitter,
            "scenario": scenario["id"],
            "request_model": req.get("model"),
            "response_model": scenario.get("response_model"),
            "streamed": stream,
            "status": 200,
            "usage": None,
            "finish_reason": None,
            "chunks": 0,
            "first_chunk_delay_s": None,
            "error_type": None,
            "system_fingerprint": scenario.get("system_fingerprint"),
            # The answer's text (None for tool calls and errors), for the content checks.
            "answer": scenario.get("content") or "".join(scenario.get("chunks") or []) or None,
            "started_at": time.time(),
        }
        status = scenario.get("status", 200)
        if status != 200:
            entry.update(status=status, error_type=scenario["error"]["code"])
            headers = {"x-request-id": "req_" + uuid.uuid4().hex[:16]}
            if scenario.get("retry_after"):
                headers["Retry-After"] = scenario["retry_after"]
            self._send_json(status, {"error": scenario["error"]}, headers)
            self.server.ledger.add(entry)
            return

        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        model = scenario["response_model"]
        fp = scenario.get("system_fingerprint")
        if not stream:
            message: dict = {"role": "assistant", "content": scenario.get("content"), "refusal": None}
            if scenario.get("tool_call"):
                message["content"] = None
                message["tool_calls"] = [{
                    "id": "call_" + uuid.uuid4().hex[:12],
                    "type": "function",
                    "function": dict(scenario["tool_call"]),
                }]
            body = {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": scenario["finish_reason"]}],
                "usage": usage_body(scenario["usage"]),
                "system_fingerprint": fp, "service_tier": "default",
            }
            self._send_json(200, body)
            entry.update(usage=dict(scenario["usage"]), finish_reason=scenario["finish_reason"])
            self.server.ledger.add(entry)
            return

        # Streaming: headers now, then a known pause before the first chunk.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        delay = float(scenario.get("first_chunk_delay_s", 0.0))
        time.sleep(delay)

        def chunk(delta: dict, finish=None) -> dict:
            return {
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": fp, "service_tier": "default",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        texts = scenario.get("chunks") or [""]
        n = 0
        for i, text in enumerate(texts):
            if i > 0:
                time.sleep(float(scenario.get("inter_chunk_delay_s", 0.0)))
            delta = {"content": text}
            if i == 0:
                delta = {"role": "assistant", "content": text, "refusal": None}
            self._sse(chunk(delta))
            n += 1
        self._sse(chunk({}, scenario["finish_reason"]))
        n += 1
        sent_usage = None
        if include_usage and scenario.get("usage") is not None:
            final = {
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": fp, "service_tier": "default", "choices": [],
                "usage": usage_body(scenario["usage"]),
            }
            self._sse(final)
            sent_usage = dict(scenario["usage"])
        self._sse("[DONE]")
        entry.update(usage=sent_usage, finish_reason=scenario["finish_reason"], chunks=n,
                     first_chunk_delay_s=delay)
        self.server.ledger.add(entry)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", nargs="?", type=int, default=None, help="port (0 = any free)")
    ap.add_argument("--port", dest="port_opt", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--ledger", default="ledger.json", help="ledger JSON file")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    port = args.port if args.port is not None else args.port_opt

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.ledger = Ledger(args.ledger)
    server.verbose = args.verbose
    bound = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{bound}\n")
        os.replace(tmp, args.port_file)
    print(f"PORT {bound}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
