#!/usr/bin/env python3
"""End to end: injected faults reach the right people, and only them.

    python3 tests/alerting/e2e.py            # LLMWATCH_BIN=target/release/llmwatch by default

On loopback only, with free ports and temporary data directories:

  llmwatch simulate --scenario error-burst   (30 % of calls fail from the start)
  llmwatch simulate --scenario cost-spike    (docs-summarizer sends 10x the input tokens after 20s)
        |  OTLP/gRPC
  llmwatch serve      (a test config: a 2-minute budget on docs-summarizer)
        |  /metrics, scraped every second
  Prometheus          (alert-rules/*.rules.yml as shipped, except `for` and `keep_firing_for`
        |              divided by E2E_TIME_SCALE (60): 2m -> 2s, 1h -> 60s; evaluated every second)
  Alertmanager        (alert-rules/alertmanager.yml as shipped, receivers pointed at the webhook)
        |
  webhook receiver    (this script; one path per receiver: /pager, /chat, /low-noise)

Asserted:
  - Prometheus loaded every rule of alert-rules/;
  - the error burst pages: LlmwatchErrorBudgetBurn (critical) arrives at the pager and, through
    `continue`, in chat;
  - its slow-burn warning fires too, but Alertmanager inhibits it (state "suppressed", inhibited by
    the critical of the same alert and service) and it never reaches chat;
  - the cost spike pages: LlmwatchBudgetUtilisationHigh (critical) for the docs-summarizer budget
    arrives at the pager, while the traffic before the spike would fill under 80 % of it;
  - the pager only ever gets critical alerts, chat only critical and warning, low-noise only info.

Needs prometheus, prometheus-alertmanager (Debian packages), python3 3.8+ (stdlib only). Logs of
every process are kept in E2E_WORK_DIR (default target/alerting-e2e). Exit status 0 on success.
"""

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alert-rules"
WORK = Path(os.environ.get("E2E_WORK_DIR", ROOT / "target" / "alerting-e2e"))
LLMWATCH = Path(os.environ.get("LLMWATCH_BIN", ROOT / "target" / "release" / "llmwatch"))
TIME_SCALE = float(os.environ.get("E2E_TIME_SCALE", "60"))
DEADLINE = float(os.environ.get("E2E_DEADLINE_SECONDS", "240"))
RECEIVER_PLACEHOLDER = "http://alert-receiver.example.invalid:9099"
BUDGET = "docs-summarizer-2m"
T0 = time.monotonic()


def log(msg):
    print("[alerting-e2e %6.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    raise SystemExit(1)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def which(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    fail("none of %s found (apt-get install -y prometheus prometheus-alertmanager)" % ", ".join(names))


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def wait_until(what, check, timeout=30.0, every=0.25):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if check():
                return
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            pass
        time.sleep(every)
    fail("timed out waiting for " + what)


# ------------------------------------------------------------------------------------------------
# Webhook receiver
# ------------------------------------------------------------------------------------------------

class Inbox:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.notifications = []  # (receiver path, payload)
        self.file = open(path, "w", encoding="utf-8")

    def add(self, receiver, payload):
        with self.lock:
            self.notifications.append((receiver, payload))
            self.file.write(json.dumps({"receiver": receiver, "at": round(time.monotonic() - T0, 1), "payload": payload}) + "\n")
            self.file.flush()

    def alerts(self, receiver=None):
        """(receiver, status, labels) of every alert of every notification so far."""
        with self.lock:
            out = []
            for path, payload in self.notifications:
                if receiver is None or path == receiver:
                    for alert in payload.get("alerts", []):
                        out.append((path, alert.get("status"), alert.get("labels", {})))
            return out


def serve_webhook(port, inbox):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {"unparsable": body.decode("utf-8", "replace")}
            inbox.add(self.path.strip("/"), payload)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ------------------------------------------------------------------------------------------------
# Test copies of the shipped configuration
# ------------------------------------------------------------------------------------------------

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def scaled(duration):
    total = sum(int(n) * UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", duration))
    return "%ds" % max(1, math.ceil(total / TIME_SCALE))


def write_rules(dest):
    dest.mkdir()
    count = 0
    for path in sorted(RULES.glob("*.rules.yml")):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"^(\s+(?:for|keep_firing_for): )(\S+)$", lambda m: m.group(1) + scaled(m.group(2)), text, flags=re.M)
        (dest / path.name).write_text(text, encoding="utf-8")
        count += len(re.findall(r"^\s+- (?:alert|record): ", text, flags=re.M))
    return count


def write_alertmanager(dest, webhook_port):
    text = (RULES / "alertmanager.yml").read_text(encoding="utf-8")
    if RECEIVER_PLACEHOLDER not in text:
        fail("alertmanager.yml no longer uses the placeholder receiver " + RECEIVER_PLACEHOLDER)
    (dest / "alertmanager.yml").write_text(text.replace(RECEIVER_PLACEHOLDER, "http://127.0.0.1:%d" % webhook_port), encoding="utf-8")
    shutil.copy(RULES / "llmwatch.tmpl", dest / "llmwatch.tmpl")


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

class Processes:
    def __init__(self):
        self.procs = []

    def start(self, name, argv):
        logf = open(WORK / (name + ".log"), "w")
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=WORK)
        self.procs.append((name, proc))
        log("started %s (pid %d)" % (name, proc.pid))
        return proc

    def stop_all(self):
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main():
    prometheus = which("prometheus")
    alertmanager = which("prometheus-alertmanager", "alertmanager")
    promtool = which("promtool")
    if not LLMWATCH.exists():
        fail("no llmwatch binary at %s (cargo build --release -p llmwatch, or set LLMWATCH_BIN)" % LLMWATCH)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    data = Path(tempfile.mkdtemp(prefix="llmwatch-alerting-e2e-"))
    grpc, http, metrics, prom, am, hook = free_ports(6)
    inbox = Inbox(WORK / "notifications.jsonl")
    webhook = serve_webhook(hook, inbox)
    procs = Processes()
    try:
        run(procs, inbox, prometheus, alertmanager, promtool, data, grpc, http, metrics, prom, am, hook)
    finally:
        procs.stop_all()
        webhook.shutdown()
        shutil.rmtree(data, ignore_errors=True)
        log("logs and notifications kept in %s" % WORK)


def run(procs, inbox, prometheus, alertmanager, promtool, data, grpc, http, metrics, prom, am, hook):
    rules_dir = WORK / "rules"
    rule_count = write_rules(rules_dir)
    write_alertmanager(WORK, hook)
    (WORK / "llmwatch.toml").write_text(
        'data_dir = "%s"\n\n' % (data / "llmwatch")
        + '[[dimensions]]\nlabel = "feature"\nattributes = ["app.feature"]\n\n'
        # Without the spike, docs-summarizer spends about 70 % of this in any 2 minutes of this
        # run's traffic; with it, more than the limit within a minute of the change.
        + '[[budgets]]\nname = "%s"\nwindow = "2m"\nlimit_usd = 2.5\nscope = "service"\nservice = "docs-summarizer"\n' % BUDGET,
        encoding="utf-8",
    )
    (WORK / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files:\n  - %s/*.rules.yml\n" % rules_dir
        + "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:%d']\n" % am
        + "scrape_configs:\n  - job_name: llmwatch\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % metrics,
        encoding="utf-8",
    )
    check = subprocess.run([promtool, "check", "config", str(WORK / "prometheus.yml")], capture_output=True, text=True)
    if check.returncode != 0:
        fail("promtool check config:\n" + check.stdout + check.stderr)

    procs.start("llmwatch", [str(LLMWATCH), "serve", "--config", str(WORK / "llmwatch.toml"),
                             "--otlp-grpc", "127.0.0.1:%d" % grpc, "--otlp-http", "127.0.0.1:%d" % http,
                             "--metrics", "127.0.0.1:%d" % metrics])
    procs.start("alertmanager", [alertmanager, "--config.file=" + str(WORK / "alertmanager.yml"),
                                 "--storage.path=" + str(data / "alertmanager"),
                                 "--web.listen-address=127.0.0.1:%d" % am, "--cluster.listen-address="])
    procs.start("prometheus", [prometheus, "--config.file=" + str(WORK / "prometheus.yml"),
                               "--storage.tsdb.path=" + str(data / "prometheus"),
                               "--web.listen-address=127.0.0.1:%d" % prom])
    base_prom, base_am = "http://127.0.0.1:%d" % prom, "http://127.0.0.1:%d" % am
    wait_until("llmwatch /readyz", lambda: http_get("http://127.0.0.1:%d/readyz" % metrics) is not None)
    wait_until("Alertmanager ready", lambda: http_get(base_am + "/-/ready") is not None)
    wait_until("Prometheus ready", lambda: http_get(base_prom + "/-/ready") is not None)

    def prom_query(q):
        url = base_prom + "/api/v1/query?query=" + urllib.parse.quote(q)
        return json.loads(http_get(url))["data"]["result"]

    wait_until("Prometheus scraping llmwatch", lambda: any(r["value"][1] == "1" for r in prom_query('up{job="llmwatch"}')))
    groups = json.loads(http_get(base_prom + "/api/v1/rules"))["data"]["groups"]
    loaded = sum(len(g["rules"]) for g in groups)
    if loaded != rule_count:
        fail("Prometheus loaded %d rules, alert-rules/ has %d" % (loaded, rule_count))
    log("Prometheus loaded all %d rules of alert-rules/ in %d groups (for/keep_firing_for / %g)" % (loaded, len(groups), TIME_SCALE))

    endpoint = "http://127.0.0.1:%d" % grpc
    sim = [str(LLMWATCH), "simulate", "--endpoint", endpoint, "--duration", "200s"]
    procs.start("simulate-error-burst", sim + ["--rate", "30", "--seed", "1", "--scenario", "error-burst", "--change-after", "0s"])
    procs.start("simulate-cost-spike", sim + ["--rate", "15", "--seed", "2", "--scenario", "cost-spike", "--change-after", "20s"])
    sim_start = time.monotonic()

    def am_alerts():
        url = base_am + "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true"
        return json.loads(http_get(url))

    paged_services, chat_services = set(), set()
    budget_paged = False
    budget_ratio_before_spike = None
    inhibited = {}  # service -> first time the warning was seen suppressed
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        time.sleep(1)
        elapsed = time.monotonic() - sim_start
        if budget_ratio_before_spike is None and elapsed >= 18:
            r = prom_query('budget:llmwatch_budget_spend_per_limit:ratio{budget="%s"}' % BUDGET)
            # The budget's window is 2 minutes: at the pre-spike rate a full window would hold
            # 120 / elapsed times what it holds now.
            budget_ratio_before_spike = (float(r[0]["value"][1]) if r else 0.0) * 120 / elapsed
            log("budget %s: %.0f %% of its limit in a full window at the pre-spike rate" % (BUDGET, 100 * budget_ratio_before_spike))
        for path, status, labels in inbox.alerts():
            if status != "firing":
                continue
            if labels.get("alertname") == "LlmwatchErrorBudgetBurn" and labels.get("severity") == "critical":
                target = paged_services if path == "pager" else chat_services if path == "chat" else None
                if target is not None and labels.get("service_name") not in target:
                    target.add(labels.get("service_name"))
                    log("%s got LlmwatchErrorBudgetBurn critical for %s" % (path, labels.get("service_name")))
            if (path == "pager" and labels.get("alertname") == "LlmwatchBudgetUtilisationHigh"
                    and labels.get("severity") == "critical" and labels.get("budget") == BUDGET and not budget_paged):
                budget_paged = True
                log("pager got LlmwatchBudgetUtilisationHigh critical for budget %s (%.0fs after the sends began)" % (BUDGET, elapsed))
        for alert in am_alerts():
            labels, status = alert["labels"], alert["status"]
            if (labels.get("alertname") == "LlmwatchErrorBudgetBurn" and labels.get("severity") == "warning"
                    and status.get("state") == "suppressed" and status.get("inhibitedBy")
                    and labels.get("service_name") not in inhibited):
                inhibited[labels.get("service_name")] = time.monotonic()
                log("Alertmanager inhibits LlmwatchErrorBudgetBurn warning for %s (by %s)" % (labels.get("service_name"), status["inhibitedBy"][0][:12]))
        # The chat route waits 30s (group_wait) before its first notification of a group: give a
        # suppressed warning that long and more to (not) arrive.
        settled = [s for s, t in inhibited.items() if time.monotonic() - t >= 45 and s in paged_services]
        if paged_services and chat_services and budget_paged and settled:
            break
    else:
        fail("not everything arrived within %.0fs: pager paged for %s, chat for %s, budget paged %s, warnings inhibited for %s"
             % (DEADLINE, sorted(paged_services), sorted(chat_services), budget_paged, sorted(inhibited)))

    # Nothing reached a receiver that should not have.
    allowed = {"pager": {"critical"}, "chat": {"critical", "warning"}, "low-noise": {"info"}}
    for path, status, labels in inbox.alerts():
        if labels.get("severity") not in allowed.get(path, set()):
            fail("%s received %s with severity %s" % (path, labels.get("alertname"), labels.get("severity")))
    leaked = [(p, l.get("service_name")) for p, s, l in inbox.alerts("chat")
              if l.get("alertname") == "LlmwatchErrorBudgetBurn" and l.get("severity") == "warning"]
    if leaked:
        fail("the inhibited LlmwatchErrorBudgetBurn warning reached chat for %s" % leaked)
    if budget_ratio_before_spike is None or budget_ratio_before_spike >= 0.8:
        fail("without the spike the budget would reach %s of its limit: the page would not prove the spike" % budget_ratio_before_spike)

    summary = {}
    for path, status, labels in inbox.alerts():
        key = "%s %s %s" % (path, labels.get("alertname"), labels.get("severity"))
        summary[key] = summary.get(key, 0) + 1
    for key in sorted(summary):
        log("delivered: %s (%d alert notifications)" % (key, summary[key]))
    log("PASS: error burst paged %s (warning inhibited for %s); cost spike paged budget %s; no tier leaked"
        % (sorted(paged_services), sorted(s for s in inhibited if s in paged_services), BUDGET))


if __name__ == "__main__":
    main()
