#!/usr/bin/env bash
# Record what each emitter really sends, as OTLP protobuf fixtures:
#
#   tests/python/record_captures.sh [FIXTURES_DIR]   (default tests/fixtures)
#
# For each emitter in $E2E_EMITTERS (default "openai-v2 openllmetry") it runs the
# client against the fake OpenAI server and capture_otlp.py (instead of
# llmwatch), then writes:
#   FIXTURES_DIR/captures/<emitter>/<emitter>-traces.pb   one merged ExportTraceServiceRequest
#   FIXTURES_DIR/captures/<emitter>/<emitter>-logs.pb     one merged ExportLogsServiceRequest
#   FIXTURES_DIR/capture-ledgers/<emitter>.ledger.json     what the fake server returned
#   FIXTURES_DIR/capture-ledgers/<emitter>.dump.txt        readable decode of the .pb files
# The captures/ folders hold only .pb files, so `llmwatch replay` can read them whole.
# Venvs come from run_e2e.sh's setup (same E2E_VENV_DIR etc.).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${E2E_PYTHON:-python3}"
VENV_DIR="${E2E_VENV_DIR:-$ROOT/target/e2e-venvs}"
EMITTERS="${E2E_EMITTERS:-openai-v2 openllmetry}"
FIX="${1:-$ROOT/tests/fixtures}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/llmwatch-captures.XXXXXX")"

E2E_SETUP_ONLY=1 "$HERE/run_e2e.sh"

PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]:-}"; do [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]:-}"; do [[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_file() { for _ in $(seq 1 100); do [[ -s "$1" ]] && return 0; sleep 0.1; done; return 1; }

for e in $EMITTERS; do
  w="$WORK/$e"
  out="$FIX/captures/$e" meta="$FIX/capture-ledgers"
  mkdir -p "$w/bodies" "$out" "$meta"
  "$PY" "$HERE/fake_openai.py" --port-file "$w/fake.port" --ledger "$w/ledger.json" >"$w/fake.log" 2>&1 &
  PIDS+=($!)
  "$PY" "$HERE/capture_otlp.py" serve --out "$w/bodies" --port-file "$w/cap.port" >"$w/cap.log" 2>&1 &
  PIDS+=($!)
  wait_file "$w/fake.port" && wait_file "$w/cap.port" || { echo "servers did not start" >&2; exit 2; }
  FAKE_OPENAI_URL="http://127.0.0.1:$(cat "$w/fake.port")" \
  LLMWATCH_OTLP_HTTP="http://127.0.0.1:$(cat "$w/cap.port")" \
    timeout 180 "$VENV_DIR/$e/bin/python" "$HERE/client_${e//-/_}.py" >"$w/client.log" 2>&1 \
    || { cat "$w/client.log" >&2; exit 1; }
  rm -f "$out/"*
  "$VENV_DIR/$e/bin/python" "$HERE/capture_otlp.py" merge "$w/bodies" "$out/$e"
  cp "$w/ledger.json" "$meta/$e.ledger.json"
  "$VENV_DIR/$e/bin/python" "$HERE/capture_otlp.py" dump "$out" >"$meta/$e.dump.txt"
  echo "recorded $e -> $out" >&2
done
