#!/usr/bin/env python3
"""Check llmwatch's Prometheus /metrics against the fake OpenAI server's ledger.

    check_metrics.py METRICS_URL --ledger ledger.json [--wait 15] [--service S ...]
    check_metrics.py page.txt --ledger ledger.json --wait 0     (a saved page)

Standard library only. For each emitter service found in the ledger (the
``emitter`` field, which the clients set to their ``service.name``) and each
request model, it asserts that llmwatch's totals equal what the fake server
returned, for exactly the data that emitter records (see ``EMITTERS``). It also
checks that the page is valid text exposition (one HELP/TYPE per family,
samples of a family contiguous), since Prometheus rejects a scrape otherwise.

* ``llmwatch_llm_calls_total``: calls, errors (non-empty ``error_type``) and
  successes (``error_type`` empty), provider/operation labels, response model;
* ``llmwatch_tokens_total``: every token kind;
* ``llmwatch_finish_reasons_total``: every finish reason;
* ``gen_ai_client_token_usage``: sum and count per ``gen_ai_token_type``;
* ``gen_ai_client_operation_duration_seconds``: count, errors, and no streamed
  call faster than its first-chunk delay;
* ``gen_ai_client_operation_time_to_first_chunk_seconds``: each streamed call
  in the bucket its known first-chunk delay implies (where the emitter records
  TTFT), and no observations otherwise.

Where an emitter does not send a quantity for some calls, those calls must
contribute nothing (llmwatch cannot know, so it must not invent). The one
exception is a value that is only in captured message content (openai-v2's
finish reason on streamed calls, inside gen_ai.output.messages) or a policy
choice (counting failed calls as finish_reason "error"): there llmwatch may show
either the strict value or that plus the true value; such checks are marked
"(lenient)".

Metrics are scraped repeatedly until every check passes or ``--wait`` seconds
have gone by (llmwatch ingests asynchronously). The last line printed is
``N passed, M failed``; the exit status is 1 when M > 0.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request
from collections import defaultdict

CALLS = "llmwatch_llm_calls_total"
TOKENS = "llmwatch_tokens_total"
FINISH = "llmwatch_finish_reasons_total"
TOKEN_HIST = "gen_ai_client_token_usage"
DURATION = "gen_ai_client_operation_duration_seconds"
SCANNED = "llmwatch_safety_scanned_calls_total"
FLAGS = "llmwatch_safety_flags_total"
# What the fake's answers plant for the safety monitor (the `pii` scenario).
EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}", re.I)
TTFT = "gen_ai_client_operation_time_to_first_chunk_seconds"
GENAI_METRICS = (CALLS, TOKENS, FINISH)
GENAI_HISTOGRAMS = (TOKEN_HIST, DURATION, TTFT)

DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                    10.24, 20.48, 40.96, 81.92]
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")
FINISH_MAP = {"stop": "stop", "length": "length", "content_filter": "content_filter",
              "tool_calls": "tool_call", "function_call": "tool_call"}

# Which calls an emitter records each quantity for: "all", "non_streamed",
# "streamed" or "none". Calls outside that set must contribute nothing, except
# those named by an optional "<quantity>_lenient" mode, which may contribute
# either nothing or their true value. Established from real captures of the pinned versions
# (tests/fixtures/captures/<emitter>/; decode with capture_otlp.py dump).
EMITTERS: dict[str, dict] = {
    # opentelemetry-instrumentation-openai-v2 2.4b0 (+ util-genai 1.1b0):
    # gen_ai.usage.input_tokens / output_tokens on every call with usage
    # (streamed too); no cache/reasoning attributes; gen_ai.response.finish_reasons
    # only on non-streamed calls; no TTFT and no streaming flag anywhere;
    # error.type "<class 'openai.RateLimitError'>" on the 429.
    "e2e-openai-v2": {
        "tokens": {"input": "all", "output": "all", "cache_read": "none",
                   "cache_write": "none", "reasoning": "none"},
        "finish_reasons": "non_streamed",
        # ...but a streamed call's finish reason is in the captured content
        # (gen_ai.output.messages[].finish_reason), so llmwatch may count it.
        "finish_reasons_lenient": "streamed",
        "ttft": "none",
        # No stream flag: every call's duration is gen_ai_request_stream="unknown".
        "stream_flag": "none",
        # Content capture SPAN_AND_EVENT: every call's prompt (the 429's too) and answer.
        "content": "all",
    },
    # The same instrumentation with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=EVENT_ONLY:
    # identical spans without content; prompts and answers only in log events.
    "e2e-openai-v2-events": None,  # filled in below: openai-v2's capabilities
    # opentelemetry-instrumentation-openai 0.62.4 (OpenLLMetry):
    # gen_ai.usage.input_tokens / output_tokens / cache_read.input_tokens on
    # every call with usage; gen_ai.usage.reasoning_tokens on non-streamed calls
    # only; gen_ai.response.finish_reasons everywhere ("tool_call");
    # gen_ai.is_streaming; one gen_ai.content.completion.chunk span event per
    # chunk (the first one gives TTFT); error.type "RateLimitError".
    "e2e-openllmetry": {
        "tokens": {"input": "all", "output": "all", "cache_read": "all",
                   "cache_write": "none", "reasoning": "non_streamed"},
        "finish_reasons": "all",
        "ttft": "streamed",
        # gen_ai.is_streaming on every call, true or false.
        "stream_flag": "all",
        # gen_ai.prompt.* / gen_ai.completion.* span attributes on every call.
        "content": "all",
    },
}

EMITTERS["e2e-openai-v2-events"] = dict(EMITTERS["e2e-openai-v2"])

# ------------------------------------------------------------------ parsing


def _parse_labels(s: str, i: int) -> tuple[dict, int]:
    """Parse ``{a="x",b="y"}`` starting at s[i] == '{'; return (labels, index after '}')."""
    labels: dict[str, str] = {}
    i += 1
    n = len(s)
    while i < n:
        while i < n and s[i] in " ,":
            i += 1
        if i < n and s[i] == "}":
            return labels, i + 1
        j = s.index("=", i)
        name = s[i:j].strip()
        i = j + 1
        while s[i] == " ":
            i += 1
        if s[i] != '"':
            raise ValueError(f"bad label value at {i}: {s!r}")
        i += 1
        out = []
        while True:
            c = s[i]
            if c == "\\":
                nxt = s[i + 1]
                out.append({"n": "\n", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                out.append(c)
                i += 1
        labels[name] = "".join(out)
    raise ValueError(f"unterminated labels: {s!r}")


def exposition_problems(text: str) -> list[str]:
    """Text-format rules a Prometheus scrape enforces: one HELP/TYPE per family, samples of a
    family contiguous and after its TYPE."""
    problems = []
    seen = {"HELP": set(), "TYPE": set()}
    types: dict[str, str] = {}
    current = None
    finished: set[str] = set()

    def family_of(sample: str) -> str:
        for suffix in ("_bucket", "_sum", "_count", "_total", "_created", "_info"):
            base = sample[: -len(suffix)]
            if sample.endswith(suffix) and base in types:
                return base
        return sample

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name = line[2:6], line.split()[2]
            if name in seen[kind]:
                problems.append(f"line {n}: second {kind} line for {name}")
            seen[kind].add(name)
            if kind == "TYPE":
                types[name] = line.split()[3] if len(line.split()) > 3 else "untyped"
            if name != current:
                if current is not None:
                    finished.add(current)
                current = name
            continue
        if not line or line.startswith("#"):
            continue
        fam = family_of(line.split("{", 1)[0].split()[0])
        if fam != current:
            if fam in finished:
                problems.append(f"line {n}: samples of {fam} are not contiguous")
            if current is not None:
                finished.add(current)
            current = fam
    return problems


def parse_prometheus(text: str) -> list[tuple[str, dict, float]]:
    samples = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            labels, i = _parse_labels(line, brace)
            rest = line[i:].split()
        else:
            name, *rest = line.split()
            labels = {}
        value = rest[0]
        v = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(value)
        samples.append((name, labels, float(value) if v is None else v))
    return samples


class Metrics:
    def __init__(self, samples, problems=()):
        self.samples = samples
        self.problems = list(problems)
        self.by_name: dict[str, list[tuple[dict, float]]] = defaultdict(list)
        for name, labels, value in samples:
            self.by_name[name].append((labels, value))

    def select(self, name: str, **match) -> list[tuple[dict, float]]:
        return [(lb, v) for lb, v in self.by_name.get(name, [])
                if all(lb.get(k, "") == want for k, want in match.items())]

    def total(self, name: str, pred=None, **match) -> float:
        return sum(v for lb, v in self.select(name, **match) if pred is None or pred(lb))

    def buckets(self, base: str, **match) -> dict[float, float]:
        """Cumulative bucket counts by upper bound, summed over matching series."""
        out: dict[float, float] = defaultdict(float)
        for lb, v in self.select(base + "_bucket", **match):
            out[float(lb["le"]) if lb["le"] != "+Inf" else math.inf] += v
        return dict(out)


def scrape(url: str, timeout: float = 5.0) -> Metrics:
    """Fetch an http(s):// or file:// URL, or read a plain file path."""
    if "://" not in url:
        with open(url, encoding="utf-8") as f:
            text = f.read()
    else:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            text = r.read().decode("utf-8")
    return Metrics(parse_prometheus(text), exposition_problems(text))


# ------------------------------------------------------------------ checking


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.lines: list[str] = []
        self.scope: tuple = ()  # (service, model) the current checks are about
        self.failed_scopes: set[tuple] = set()

    def check(self, what: str, expected, actual, ok: bool | None = None, lenient=False):
        if ok is None:
            ok = _eq(expected, actual)
        tag = " (lenient)" if lenient else ""
        if ok:
            self.passed += 1
            self.lines.append(f"  ok    {what}{tag}: {_fmt(actual)}")
        else:
            self.failed += 1
            self.failed_scopes.add(self.scope)
            self.lines.append(f"  FAIL  {what}{tag}\n          expected: {_fmt(expected)}"
                              f"\n          actual:   {_fmt(actual)}")
        return ok


def _eq(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
    return a == b


def _fmt(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in sorted(v.items(), key=str)) + "}"
    if isinstance(v, (set, frozenset)):
        return "{" + ", ".join(sorted(repr(x) for x in v)) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return repr(v) if isinstance(v, str) else str(v)


def _applies(mode: str, call: dict) -> bool:
    return (mode == "all" or (mode == "non_streamed" and not call["streamed"])
            or (mode == "streamed" and call["streamed"]))


def _ledger_tokens(call: dict, kind: str) -> int:
    u = call.get("usage")
    if not u:
        return 0
    return {"input": u["prompt"], "output": u["completion"], "cache_read": u["cached"],
            "cache_write": 0, "reasoning": u["reasoning"]}[kind]


def expected_range(calls, mode, value_of, lenient_mode="none"):
    """(strict, optional): strict from recorded calls, optional from the lenient ones."""
    strict = sum(value_of(c) for c in calls if _applies(mode, c))
    optional = sum(value_of(c) for c in calls
                   if not _applies(mode, c) and _applies(lenient_mode, c))
    return strict, optional


def check_lenient(rep: Report, what: str, strict, optional, actual):
    if not optional:
        rep.check(what, strict, actual)
    else:
        rep.check(what, f"{_fmt(strict)} or {_fmt(strict + optional)}", actual,
                  ok=_eq(actual, strict) or _eq(actual, strict + optional), lenient=True)


def bucket_for(delay: float) -> float:
    for b in DURATION_BUCKETS:
        if delay <= b:
            return b
    return math.inf


def run_checks(m: Metrics, ledger: list[dict], services: list[str],
               content: bool = True) -> Report:
    rep = Report()
    by_service: dict[str, list[dict]] = defaultdict(list)
    for c in ledger:
        by_service[c["emitter"]].append(c)

    rep.check("services to check", "at least one", f"{len(services)}", ok=bool(services))
    rep.check("exposition format (one HELP/TYPE per family, samples contiguous)",
              [], m.problems)
    for svc in services:
        calls = by_service.get(svc, [])
        rep.lines.append(f"service {svc}: {len(calls)} calls in the ledger")
        rep.scope = (svc, None)
        caps = EMITTERS.get(svc)
        if not rep.check(f"[{svc}] is a known emitter", True, caps is not None):
            continue
        if not rep.check(f"[{svc}] ledger has calls", True, bool(calls)):
            continue
        S = {"service_name": svc}

        # Standard labels on every GenAI series of this service.
        for name in GENAI_METRICS + tuple(h + "_count" for h in GENAI_HISTOGRAMS):
            series = m.select(name, **S)
            if not series:
                continue
            providers = {lb.get("gen_ai_provider_name", "") for lb, _ in series}
            ops = {lb.get("gen_ai_operation_name", "") for lb, _ in series}
            rep.check(f"[{svc}] {name} gen_ai_provider_name", {"openai"}, providers)
            rep.check(f"[{svc}] {name} gen_ai_operation_name", {"chat"}, ops)

        models_ledger = {c["request_model"] for c in calls}
        models_metrics = {lb.get("gen_ai_request_model", "") for lb, _ in m.select(CALLS, **S)}
        rep.check(f"[{svc}] request models in {CALLS}", models_ledger, models_metrics)

        for model in sorted(models_ledger):
            mc = [c for c in calls if c["request_model"] == model]
            rep.scope = (svc, model)
            M = dict(S, gen_ai_request_model=model)
            tag = f"[{svc}] {model}"
            n_err = sum(1 for c in mc if c["status"] != 200)
            n_ok = len(mc) - n_err

            # Calls and errors.
            rep.check(f"{tag} calls", len(mc), m.total(CALLS, **M))
            rep.check(f"{tag} calls with error_type", n_err,
                      m.total(CALLS, lambda lb: lb.get("error_type", "") != "", **M))
            rep.check(f"{tag} calls without error_type", n_ok,
                      m.total(CALLS, lambda lb: lb.get("error_type", "") == "", **M))
            resp_models = {lb.get("gen_ai_response_model", "")
                           for lb, v in m.select(CALLS, **M)
                           if v > 0 and lb.get("error_type", "") == ""}
            want_resp = {c["response_model"] for c in mc if c["status"] == 200}
            rep.check(f"{tag} gen_ai_response_model on successful calls", want_resp, resp_models)
            if n_err:
                err_resp = {lb.get("gen_ai_response_model", "") for lb, v in m.select(CALLS, **M)
                            if v > 0 and lb.get("error_type", "") != ""}
                rep.check(f"{tag} gen_ai_response_model on failed calls", {""}, err_resp)

            # Tokens, every kind.
            for kind in TOKEN_KINDS:
                strict, optional = expected_range(
                    mc, caps["tokens"][kind], lambda c, k=kind: _ledger_tokens(c, k))
                actual = m.total(TOKENS, token_type=kind, **M)
                check_lenient(rep, f"{tag} tokens {kind}", strict, optional, actual)

            # Token usage histogram (input/output): sum and count.
            for kind in ("input", "output"):
                mode = caps["tokens"][kind]
                strict, optional = expected_range(mc, mode, lambda c, k=kind: _ledger_tokens(c, k))
                check_lenient(rep, f"{tag} {TOKEN_HIST}_sum {kind}", strict, optional,
                              m.total(TOKEN_HIST + "_sum", gen_ai_token_type=kind, **M))
                cs, co = expected_range(mc, mode, lambda c: 1 if c.get("usage") else 0)
                check_lenient(rep, f"{tag} {TOKEN_HIST}_count {kind}", cs, co,
                              m.total(TOKEN_HIST + "_count", gen_ai_token_type=kind, **M))

            # Finish reasons.
            reasons = {FINISH_MAP.get(c["finish_reason"] or "", "other")
                       for c in mc if c["status"] == 200}
            if n_err:
                reasons.add("error")
            reasons |= {lb.get("finish_reason", "") for lb, _ in m.select(FINISH, **M)}
            for reason in sorted(reasons):
                def val(c, r=reason):
                    if c["status"] != 200:
                        return 0
                    return 1 if FINISH_MAP.get(c["finish_reason"] or "", "other") == r else 0
                strict, optional = expected_range(mc, caps["finish_reasons"], val,
                                                  caps.get("finish_reasons_lenient", "none"))
                if reason == "error":  # llmwatch may or may not count failed calls as "error"
                    optional += n_err
                check_lenient(rep, f"{tag} finish_reason {reason!r}", strict, optional,
                              m.total(FINISH, finish_reason=reason, **M))

            # Duration histogram.
            rep.check(f"{tag} {DURATION}_count", len(mc), m.total(DURATION + "_count", **M))
            rep.check(f"{tag} {DURATION}_count with error_type", n_err,
                      m.total(DURATION + "_count", lambda lb: lb.get("error_type", "") != "",
                              **M))
            # Streaming vs not, as the emitter says (or "unknown" when it does not).
            if caps["stream_flag"] == "all":
                by_stream = {"true": sum(1 for c in mc if c["streamed"]),
                             "false": sum(1 for c in mc if not c["streamed"]), "unknown": 0}
            else:
                by_stream = {"true": 0, "false": 0, "unknown": len(mc)}
            for value, want in by_stream.items():
                rep.check(f"{tag} {DURATION}_count gen_ai_request_stream={value}", want,
                          m.total(DURATION + "_count", gen_ai_request_stream=value, **M))
            # Content: the safety monitor scans every call whose prompt or answer the emitter
            # captured (span attributes, or for e2e-openai-v2-events log events only, joined to
            # their spans) and flags exactly the answers that leak an e-mail address.
            if content and caps.get("content") == "all":
                leaks = sum(1 for c in mc if c.get("answer") and EMAIL.search(c["answer"]))
                rep.check(f"{tag} {SCANNED}", len(mc), m.total(SCANNED, **M))
                rep.check(f"{tag} {FLAGS} pii_email output", leaks,
                          m.total(FLAGS, category="pii_email", source="output", **M))
                rep.check(f"{tag} {FLAGS} all categories and sides", leaks, m.total(FLAGS, **M))
            streamed = [c for c in mc if c["streamed"] and c["status"] == 200]
            if streamed:
                fastest = min(c["first_chunk_delay_s"] for c in streamed)
                below = [b for b in DURATION_BUCKETS if b < fastest]
                if below:
                    cum = m.buckets(DURATION, **M)
                    rep.check(f"{tag} {DURATION} observations <= {below[-1]}s "
                              f"(streams wait {fastest}s for the first chunk)",
                              0, cum.get(below[-1], 0.0))

            # Time to first chunk.
            ttft_calls = [c for c in streamed if _applies(caps["ttft"], c)]
            cum = m.buckets(TTFT, **M)
            rep.check(f"{tag} {TTFT}_count", len(ttft_calls), m.total(TTFT + "_count", **M))
            if ttft_calls:
                want: dict[float, int] = defaultdict(int)
                for c in ttft_calls:
                    want[bucket_for(c["first_chunk_delay_s"])] += 1
                got: dict[float, float] = {}
                prev = 0.0
                for b in DURATION_BUCKETS + [math.inf]:
                    here = cum.get(b, prev)
                    if here - prev:
                        got[b] = here - prev
                    prev = here
                rep.check(f"{tag} {TTFT} observations per bucket (le)",
                          {_fmt(k): v for k, v in want.items()},
                          {_fmt(k): v for k, v in got.items()})
    return rep


def dump_series(m: Metrics, scopes: set[tuple]) -> str:
    """Non-bucket series of the (service, model) pairs that failed (model None = all)."""
    def wanted(lb):
        svc, model = lb.get("service_name"), lb.get("gen_ai_request_model", "")
        return (svc, None) in scopes or (svc, model) in scopes

    out = []
    for name, labels, value in m.samples:
        if wanted(labels) and not name.endswith("_bucket"):
            lb = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "service_name")
            out.append(f"    {labels['service_name']} {name}{{{lb}}} {_fmt(value)}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="llmwatch metrics URL (http://127.0.0.1:9464/metrics), or a "
                               "file holding such a page (e.g. `llmwatch replay` output)")
    ap.add_argument("--ledger", required=True, help="ledger JSON written by fake_openai.py")
    ap.add_argument("--service", action="append",
                    help="check only this service (repeatable; default: all in the ledger)")
    ap.add_argument("--wait", type=float, default=15.0,
                    help="keep re-scraping up to this many seconds until all checks pass")
    ap.add_argument("--verbose", action="store_true", help="print passing checks too")
    ap.add_argument("--no-content-checks", action="store_true",
                    help="skip the safety-monitor checks (the Python mock has no safety monitor)")
    ap.add_argument("--client-failed", action="append", default=[], metavar="NAME",
                    help="count a failed emitter client run as a failed check (repeatable)")
    args = ap.parse_args(argv)

    with open(args.ledger) as f:
        ledger = json.load(f)["calls"]
    services = args.service or sorted({c["emitter"] for c in ledger})
    if args.url.startswith(("http://", "https://")) and urllib.parse.urlsplit(args.url).path in ("", "/"):
        args.url = args.url.rstrip("/") + "/metrics"  # bare http://host:port

    deadline = time.monotonic() + args.wait
    attempt = 0
    while True:
        attempt += 1
        try:
            m = scrape(args.url)
            rep = run_checks(m, ledger, services, content=not args.no_content_checks)
        except Exception as e:  # noqa: BLE001 - scrape/parse failure is a failed check
            m = None
            rep = Report()
            rep.check(f"scrape {args.url}", "a parsable Prometheus text page",
                      f"{type(e).__name__}: {e}")
        if rep.failed == 0 or time.monotonic() >= deadline:
            break
        time.sleep(0.5)

    for name in args.client_failed:
        rep.check(f"emitter client {name} ran cleanly", "exit status 0", "failed (see its log)")
    print(f"check_metrics: {args.url}, ledger {args.ledger} ({len(ledger)} calls), "
          f"services {services}, attempt {attempt}")
    for line in rep.lines:
        if args.verbose or not line.startswith("  ok"):
            print(line)
    if m is not None and any(scope[:1] != () for scope in rep.failed_scopes):
        print("\nllmwatch series of the failing service/model pairs (buckets omitted):")
        print(dump_series(m, rep.failed_scopes) or "    (none)")
    print(f"{rep.passed} passed, {rep.failed} failed")
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
