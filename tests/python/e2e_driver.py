"""Shared scenario driver for the emitter clients (imported by client_*.py).

It asks the fake server for its scenario list (``GET /_scenarios``) and runs
each scenario once through the real ``openai`` client, so the instrumentation
under test sees ordinary SDK calls. Every request carries the header
``X-E2E-Emitter`` so the fake server's ledger knows which emitter made it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def otlp_base() -> str:
    """OTLP/HTTP base URL (no /v1/... suffix) from $LLMWATCH_OTLP_HTTP."""
    url = os.environ.get("LLMWATCH_OTLP_HTTP", "http://127.0.0.1:4318").rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url


def fake_base() -> str:
    """Root URL of the fake OpenAI server (no /v1) from $FAKE_OPENAI_URL."""
    url = os.environ.get("FAKE_OPENAI_URL")
    if not url:
        sys.exit("FAKE_OPENAI_URL is not set (e.g. http://127.0.0.1:8000)")
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def fetch_scenarios(base: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/_scenarios", timeout=10) as r:
        return json.load(r)["scenarios"]


def run_scenarios(emitter: str) -> int:
    """Run every scenario once; return the number of unexpected outcomes."""
    import openai  # imported late so instrumentation patches it first

    base = fake_base()
    scenarios = fetch_scenarios(base)
    client = openai.OpenAI(
        base_url=f"{base}/v1",
        api_key="dummy",
        max_retries=0,
        timeout=30.0,
        default_headers={"X-E2E-Emitter": emitter},
    )
    failures = 0
    for s in scenarios:
        kwargs: dict = {
            "model": s["model"],
            "messages": [
                {"role": "system", "content": "You are a deterministic test double."},
                {"role": "user", "content": f"scenario:{s['id']}"},
            ],
        }
        if s.get("max_tokens"):
            kwargs["max_tokens"] = s["max_tokens"]
        if s.get("tools"):
            kwargs["tools"] = [WEATHER_TOOL]
        if s.get("stream"):
            kwargs["stream"] = True
            if s.get("include_usage"):
                kwargs["stream_options"] = {"include_usage": True}
        expect_status = s.get("status", 200)
        t0 = time.monotonic()
        outcome = ""
        try:
            if s.get("stream"):
                stream = client.chat.completions.create(**kwargs)
                n, finish, usage, first = 0, None, None, None
                for chunk in stream:  # consume fully so the span ends
                    if first is None:
                        first = time.monotonic() - t0
                    n += 1
                    for ch in chunk.choices:
                        finish = ch.finish_reason or finish
                    if chunk.usage is not None:
                        usage = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                outcome = f"stream chunks={n} finish={finish} usage={usage} first_chunk={first:.3f}s"
                ok = expect_status == 200 and finish == s["finish_reason"]
            else:
                resp = client.chat.completions.create(**kwargs)
                finish = resp.choices[0].finish_reason
                outcome = (f"finish={finish} usage=({resp.usage.prompt_tokens}, "
                           f"{resp.usage.completion_tokens}) model={resp.model}")
                ok = expect_status == 200 and finish == s["finish_reason"]
        except openai.APIStatusError as e:
            outcome = f"{type(e).__name__} status={e.status_code}"
            ok = e.status_code == expect_status
        except Exception as e:  # noqa: BLE001 - report and continue
            outcome = f"unexpected {type(e).__name__}: {e}"
            ok = False
        failures += 0 if ok else 1
        print(f"[{emitter}] {s['id']:<20} {'ok ' if ok else 'BAD'} "
              f"{time.monotonic() - t0:.3f}s {outcome}", flush=True)
    return failures


def resource_for(service_name: str):
    from opentelemetry.sdk.resources import Resource

    return Resource.create({
        "service.name": service_name,
        "deployment.environment.name": "e2e",
    })
