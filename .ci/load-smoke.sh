#!/usr/bin/env bash
# Smoke load: a fresh release pchat-server on loopback with the load rooms, then
# `pchat-sim load` with a few hundred sessions for a few seconds, so the generator and
# the server's many-connection path keep working. Checks the JSON report: every
# session signed in, every post acknowledged and relayed, no errors. Loopback only;
# bounded in time. Not a benchmark (figures in BENCHMARKS.md come from bench/load.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PCHAT_LOAD_PORT=${PCHAT_LOAD_PORT:-35170}
export PCHAT_LOAD_ROOMS_CONFIG=20
cargo build --release -q -p pchat-server -p pchat-sim
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 120 bash bench/load.sh --users 300 --rooms 20 --room-size 15 --rate 200 \
  --duration 3s --drain 10s --json --quiet >"$out"
cat "$out"
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for key in ("sessions_established", "posts_acked_per_s", "relays_per_s", "latency_p50_ms",
            "latency_p99_ms", "latency_p999_ms", "status_503", "errors", "server_rss_bytes"):
    assert key in r, f"report lacks {key}"
problems = []
if r["sessions_established"] != r["users"]:
    problems.append(f"{r['sessions_established']}/{r['users']} sessions signed in")
if r["posts_acked"] != r["posts_scheduled"]:
    problems.append(f"{r['posts_acked']}/{r['posts_scheduled']} posts acknowledged")
if r["relays"] != r["relays_expected"]:
    problems.append(f"{r['relays']}/{r['relays_expected']} relays delivered")
if r["errors"] or r["status_503"]:
    problems.append(f"errors {r['errors']} ({r['first_error']}), 503 {r['status_503']}")
if r["server_rss_bytes"] <= 0:
    problems.append(f"no server RSS: {r['server_rss_note']}")
if problems:
    sys.exit("load smoke failed: " + "; ".join(problems))
print("load smoke: %d sessions, %d posts acked, %d relays, p99 %.1f ms, server RSS %.0f MiB"
      % (r["sessions_established"], r["posts_acked"], r["relays"], r["latency_p99_ms"],
         r["server_rss_bytes"] / 1048576))
PY
