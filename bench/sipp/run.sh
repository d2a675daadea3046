#!/usr/bin/env bash
# SIPp (Debian `sip-tester`) against a fresh pchat-server on loopback: the XCCOS flow of
# bench/sipp/xccos-uac.xml, all calls over ONE TCP connection (`-t t1`, as behind a
# front end). Prints SIPp's final statistics and the server's RSS; exits non-zero if any
# call failed. Loopback only; bounded by -m and a timeout.
# Usage: bench/sipp/run.sh CALLS RATE_PER_S [MAX_CONCURRENT]
# Env: PCHAT_SMOKE_PORT (45060): the server's SIP port; SIPP (sipp binary).
set -euo pipefail
cd "$(dirname "$0")/../.."
calls=${1:-300}
rate=${2:-50}
limit=${3:-1000}
port=${PCHAT_SMOKE_PORT:-45060}
sipp=${SIPP:-sipp}
data=$(mktemp -d)
cat >"$data/server.toml" <<TOML
domain = "contoso.com"
[sip]
listen = "127.0.0.1:$port"
[store]
path = "$data/pchat.db"
[[room]]
name = "sipp"
description = "SIPp room"
privacy = "open"
TOML
room=$(python3 -c 'import uuid; print("ma-chan://contoso.com/" + str(uuid.uuid5(uuid.UUID(int=0x5c1b7a2e9d344f0a8e61c0ffee00c4a7), "contoso.com/sipp")))')
./target/release/pchat-server --config "$data/server.toml" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  grep -q "pchat-server ready" "$data/server.log" && break
  sleep 0.1
done
grep -q "pchat-server ready" "$data/server.log" || { cat "$data/server.log" >&2; exit 1; }
status=0
timeout $((calls / rate + 120)) "$sipp" -sf bench/sipp/xccos-uac.xml -t t1 -aa \
  -key room "$room" -r "$rate" -l "$limit" -m "$calls" -i 127.0.0.1 -p $((port + 1)) \
  -nostdin -trace_stat -stf "$data/stat.csv" \
  -trace_err -error_file "$data/errors.log" -timeout 60s -timeout_error \
  127.0.0.1:"$port" >"$data/sipp.out" 2>&1 || status=$?
rss=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$pid/status" 2>/dev/null || echo "?")
st=0
python3 - "$data/stat.csv" "$calls" "$rate" "$rss" "$status" <<'PY' || st=$?
import csv, sys
path, calls, rate, rss, status = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
rows = list(csv.reader(open(path), delimiter=';'))
head, last = rows[0], rows[-1]
col = lambda name: int(last[head.index(name)])
ok, failed = col("SuccessfulCall(C)"), col("FailedCall(C)")
print(f"sipp: {calls} calls at {rate}/s over one TCP connection: {ok} successful, {failed} failed "
      f"(sipp exit {status}); server peak RSS {rss}")
sys.exit(0 if failed == 0 and ok == calls else 1)
PY
if [ $st -ne 0 ]; then
  tail -20 "$data/sipp.out" >&2 || true
  head -c 3000 "$data/errors.log" >&2 2>/dev/null || true
fi
exit $st
