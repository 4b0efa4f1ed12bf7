#!/usr/bin/env bash
# End-to-end test: real Python GenAI instrumentations -> llmwatch -> /metrics.
#
#   LLMWATCH_BIN=target/debug/llmwatch tests/python/run_e2e.sh
#
# Environment:
#   LLMWATCH_BIN        llmwatch binary (default: target/release/llmwatch or
#                       target/debug/llmwatch if one exists). "mock" runs the
#                       Python stand-in tests/python/mock_llmwatch.py instead.
#   E2E_VENV_DIR        where the per-emitter venvs live (default target/e2e-venvs)
#   E2E_WHEELHOUSE      downloaded wheels, reused for offline reinstalls
#                       (default $E2E_VENV_DIR/.wheelhouse). pip's own HTTP cache
#                       is not relied on: the registry mirror here marks responses
#                       uncacheable, so nothing lands in it.
#   E2E_WORK_DIR        logs, ledger, port files (default target/e2e-run, wiped per run)
#   E2E_EMITTERS        emitters to run (default "openai-v2 openai-v2-events openllmetry";
#                       an emitter named <venv>-events runs in <venv>'s venv)
#   E2E_PYTHON          interpreter used to create venvs and run the stdlib-only
#                       tools (default python3; 3.9+)
#   E2E_SETUP_ONLY=1    only create/refresh the venvs, then exit
#
# A venv is reinstalled only when its requirements file (or the Python
# version) changed: the sha256 of both is kept in <venv>/.e2e-stamp.
# Exit status 0 only if every emitter client ran cleanly and every metric
# check passed; the last line is check_metrics.py's "N passed, M failed".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${E2E_PYTHON:-python3}"
VENV_DIR="${E2E_VENV_DIR:-$ROOT/target/e2e-venvs}"
WHEELHOUSE="${E2E_WHEELHOUSE:-$VENV_DIR/.wheelhouse}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
WORK="${E2E_WORK_DIR:-$ROOT/target/e2e-run}"
EMITTERS="${E2E_EMITTERS:-openai-v2 openai-v2-events openllmetry}"

log() { printf '[run_e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

# ------------------------------------------------------------------ venvs
setup_venv() {
  local name="$1" req="$HERE/requirements-$1.txt" venv="$VENV_DIR/$1"
  [[ -f "$req" ]] || die "no requirements file $req"
  local want
  want="$( { sha256sum "$req" | cut -d' ' -f1; "$PY" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && -f "$venv/.e2e-stamp" && "$(cat "$venv/.e2e-stamp")" == "$want" ]]; then
    log "venv $name up to date ($venv)"
    return 0
  fi
  log "creating venv $name in $venv"
  local t0=$SECONDS
  mkdir -p "$VENV_DIR"
  rm -rf "$venv"
  timeout 120 "$PY" -m venv "$venv"
  mkdir -p "$WHEELHOUSE"
  local pip=("$venv/bin/python" -m pip) plog="$VENV_DIR/$name.pip.log"
  # Offline from the wheelhouse when it has everything; otherwise download the
  # missing wheels into it first.
  if ! timeout 300 "${pip[@]}" install -q --no-index --find-links "$WHEELHOUSE" -r "$req" >"$plog" 2>&1; then
    log "downloading wheels for $name into $WHEELHOUSE"
    if ! { timeout 900 "${pip[@]}" download -q -d "$WHEELHOUSE" -r "$req" &&
           timeout 300 "${pip[@]}" install -q --no-index --find-links "$WHEELHOUSE" -r "$req"; } >>"$plog" 2>&1; then
      tail -n 30 "$plog" >&2
      die "pip install for $name failed (log: $plog)"
    fi
  fi
  echo "$want" >"$venv/.e2e-stamp"
  log "venv $name ready in $((SECONDS - t0)) s"
}

# An emitter variant (openai-v2-events: the same instrumentation, content in events only) runs in
# its base emitter's venv.
venv_of() { echo "${1%-events}"; }
for e in $EMITTERS; do setup_venv "$(venv_of "$e")"; done
[[ "${E2E_SETUP_ONLY:-0}" == "1" ]] && { log "setup only: done"; exit 0; }

# ------------------------------------------------------------------ llmwatch binary
LLMWATCH_BIN="${LLMWATCH_BIN:-}"
if [[ -z "$LLMWATCH_BIN" ]]; then
  for cand in "$ROOT/target/release/llmwatch" "$ROOT/target/debug/llmwatch"; do
    [[ -x "$cand" ]] && { LLMWATCH_BIN="$cand"; break; }
  done
fi
[[ -n "$LLMWATCH_BIN" ]] || die "set LLMWATCH_BIN to the llmwatch binary (or LLMWATCH_BIN=mock)"
if [[ "$LLMWATCH_BIN" == "mock" ]]; then
  setup_venv openai-v2  # the mock needs opentelemetry-proto
  LLMWATCH_CMD=("$VENV_DIR/openai-v2/bin/python" "$HERE/mock_llmwatch.py")
  CHECK_ARGS=(--no-content-checks)  # the mock has no safety monitor
else
  [[ -x "$LLMWATCH_BIN" ]] || die "LLMWATCH_BIN=$LLMWATCH_BIN is not executable"
  LLMWATCH_CMD=("$LLMWATCH_BIN")
  CHECK_ARGS=()
fi

# ------------------------------------------------------------------ processes
rm -rf "$WORK"
mkdir -p "$WORK"
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [[ -z "$pid" ]] && continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Three distinct free loopback ports (bound then released; a tiny race is acceptable).
read -r P_GRPC P_HTTP P_METRICS < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)

# Poll an URL until it answers 200, or until the process died or time ran out.
wait_http_200() {
  local url="$1" pid="$2" secs="$3" what="$4"
  local deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if "$PY" -c 'import sys,urllib.request; sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)' "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  log "$what: $url not ready after ${secs}s"
  return 1
}

# Fake OpenAI server.
"$PY" "$HERE/fake_openai.py" --port 0 --port-file "$WORK/fake.port" --ledger "$WORK/ledger.json" \
  >"$WORK/fake_openai.log" 2>&1 &
PIDS+=($!)
FAKE_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/fake.port" ]] && break; sleep 0.1; done
[[ -s "$WORK/fake.port" ]] || { cat "$WORK/fake_openai.log" >&2; die "fake server did not start"; }
FAKE_URL="http://127.0.0.1:$(cat "$WORK/fake.port")"
wait_http_200 "$FAKE_URL/healthz" "$FAKE_PID" 10 "fake server" || die "fake server not healthy"
log "fake OpenAI server at $FAKE_URL"

# llmwatch.
"${LLMWATCH_CMD[@]}" serve --otlp-grpc "127.0.0.1:$P_GRPC" --otlp-http "127.0.0.1:$P_HTTP" \
  --metrics "127.0.0.1:$P_METRICS" >"$WORK/llmwatch.log" 2>&1 &
PIDS+=($!)
LW_PID=$!
if ! wait_http_200 "http://127.0.0.1:$P_METRICS/readyz" "$LW_PID" 30 "llmwatch"; then
  tail -n 40 "$WORK/llmwatch.log" >&2
  die "llmwatch did not become ready (log: $WORK/llmwatch.log)"
fi
log "llmwatch ready: otlp-http :$P_HTTP, metrics :$P_METRICS ($(basename "${LLMWATCH_CMD[-1]}"))"

# ------------------------------------------------------------------ emitters
FAILED_CLIENTS=()
SERVICES=()
for e in $EMITTERS; do
  client="$HERE/client_${e//-/_}.py"
  [[ -f "$client" ]] || die "no client script $client"
  SERVICES+=(--service "e2e-$e")
  log "running emitter $e"
  if FAKE_OPENAI_URL="$FAKE_URL" LLMWATCH_OTLP_HTTP="http://127.0.0.1:$P_HTTP" \
     OTEL_BSP_SCHEDULE_DELAY=500 OTEL_BLRP_SCHEDULE_DELAY=500 \
     timeout 180 "$VENV_DIR/$(venv_of "$e")/bin/python" "$client" >"$WORK/client-$e.log" 2>&1; then
    grep -E '^\[e2e-' "$WORK/client-$e.log" >&2 || true
  else
    log "emitter $e FAILED (log: $WORK/client-$e.log)"
    tail -n 30 "$WORK/client-$e.log" >&2
    FAILED_CLIENTS+=(--client-failed "$e")
  fi
done

# ------------------------------------------------------------------ check
sleep 1
set +e
timeout 120 "$PY" "$HERE/check_metrics.py" "http://127.0.0.1:$P_METRICS/metrics" \
  --ledger "$WORK/ledger.json" --wait "${E2E_CHECK_WAIT:-15}" \
  "${SERVICES[@]}" "${FAILED_CLIENTS[@]}" "${CHECK_ARGS[@]}"
rc=$?
"$PY" -c 'import sys,urllib.request; open(sys.argv[2],"wb").write(urllib.request.urlopen(sys.argv[1], timeout=5).read())' \
  "http://127.0.0.1:$P_METRICS/metrics" "$WORK/metrics" 2>/dev/null || true
set -e
((rc == 0)) || log "metrics check failed (rc=$rc); logs, ledger and the scraped page (metrics) are in $WORK"
exit "$rc"
