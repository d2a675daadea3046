#!/usr/bin/env bash
# SIPp (Debian `sip-tester`) against a fresh pchat-server on loopback: the XCCOS flow of
# bench/sipp/xccos-uac.xml, all calls over ONE TCP connection (`-t t1`, as behind a
# front end). Prints SIPp's final statistics and the server's peak RSS; exits non-zero
# if any call failed. Loopback only; bounded by -m and timeouts.
# Usage: bench/sipp/run.sh CALLS RATE_PER_S [MAX_CONCURRENT]
# Env: PCHAT_SMOKE_PORT (45060): the server's SIP port (SIPp binds the next one);
#      SIPP_ROOMS (100): rooms the calls join in turn. With one room, every post is
#      relayed to every open call on the same connection; past what SIPp reads, the
#      server sheds new posts with 503 (its overload behaviour, counted as failed calls);
#      SIPP (sipp binary); PCHAT_SERVER_BIN (./target/release/pchat-server);
#      PCHAT_SIP_EXTRA: more `[sip]` lines for the server (e.g. "max_unanswered = 0");
#      SIPP_TRACE_ERR (1): 0 leaves out SIPp's error log (-trace_err), which also logs
#      every auto-answered relay INFO: at thousands of calls/s that logging costs SIPp
#      (the load generator, on the same cores) a large share of its CPU;
#      SIPP_EXTRA: more sipp arguments (e.g. "-deadcall_wait 1000");
#      SIPP_PIN ("S:G", e.g. "0:1"): the server on CPUs S and SIPp on CPUs G (taskset
#      lists), so that neither takes the other's CPU (BENCHMARKS.md, session 10).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh
calls=${1:-300}
rate=${2:-50}
limit=${3:-1000}
rooms=${SIPP_ROOMS:-100}
port=${PCHAT_SMOKE_PORT:-45060}
sipp=${SIPP:-sipp}
data=$(mktemp -d)
# The server config with $rooms open rooms, and SIPp's injection file with their URIs
# (one per call, in turn: a front end carries users of many rooms on one connection).
python3 - "$data" "$port" "$rooms" "${PCHAT_SIP_EXTRA:-}" <<'PY'
import sys, uuid
data, port, rooms, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ns = uuid.UUID(int=0x5c1b7a2e9d344f0a8e61c0ffee00c4a7)  # server/src/ids.rs ROOM_NS
with open(f"{data}/server.toml", "w") as f:
    f.write(f'domain = "contoso.com"\n[sip]\nlisten = "127.0.0.1:{port}"\n{extra}\n'
            f'[store]\npath = "{data}/pchat.db"\n')
    for i in range(rooms):
        f.write(f'[[room]]\nname = "sipp{i}"\ndescription = "SIPp room"\nprivacy = "open"\n')
with open(f"{data}/rooms.csv", "w") as f:
    f.write("SEQUENTIAL\n")
    for i in range(rooms):
        f.write(f"ma-chan://contoso.com/{uuid.uuid5(ns, f'contoso.com/sipp{i}')}\n")
PY
# SIPP_PIN="S:G": the server on CPUs S, SIPp on CPUs G (taskset lists, e.g. "0:1").
pin_server=()
pin_sipp=()
if [ -n "${SIPP_PIN:-}" ]; then
  pin_server=(taskset -c "${SIPP_PIN%%:*}")
  pin_sipp=(taskset -c "${SIPP_PIN#*:}")
fi
pchat_start "$data" "${pin_server[@]}" "${PCHAT_SERVER_BIN:-./target/release/pchat-server}" \
  --config "$data/server.toml"
trace_err=(-trace_err -error_file "$data/errors.log")
[ "${SIPP_TRACE_ERR:-1}" = 0 ] && trace_err=()
status=0
timeout -s KILL $((calls / rate + 60)) "${pin_sipp[@]}" "$sipp" -sf bench/sipp/xccos-uac.xml -t t1 -aa \
  -inf "$data/rooms.csv" -r "$rate" -l "$limit" -m "$calls" -i 127.0.0.1 -p $((port + 1)) \
  -nostdin -trace_stat -stf "$data/stat.csv" \
  "${trace_err[@]}" ${SIPP_EXTRA:-} -timeout 60s -timeout_error \
  127.0.0.1:"$port" >"$data/sipp.out" 2>&1 || status=$?
grep -h "overload:" "$data/server.log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g; s/.*shed=/server shed (503 per reason, per second): /' | tail -3 >&2 || true
rss=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$pid/status" 2>/dev/null || echo "?")
# utime + stime, clock ticks (USER_HZ = 100) -> CPU seconds
cpu=$(awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$pid/stat" 2>/dev/null || echo "?")
rss="$rss, server CPU ${cpu} s"
st=0
python3 - "$data/stat.csv" "$calls" "$rate" "$rss" "$status" "$rooms" <<'PY' || st=$?
import csv, sys
path, calls, rate, rss, status, rooms = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
rows = list(csv.reader(open(path), delimiter=';'))
head, last = rows[0], rows[-1]
col = lambda name: int(last[head.index(name)])
ok, failed = col("SuccessfulCall(C)"), col("FailedCall(C)")
# ElapsedTime(C) is HH:MM:SS.micro since SIPp started: goodput = successful calls/s.
h, m, s_ = last[head.index("ElapsedTime(C)")].split(":")
elapsed = int(h) * 3600 + int(m) * 60 + float(s_.replace(":", "."))
goodput = ok / elapsed if elapsed > 0 else 0.0
print(f"sipp: {calls} calls at {rate}/s over one TCP connection, {rooms} rooms: {ok} successful, "
      f"{failed} failed (sipp exit {status}) in {elapsed:.1f} s = {goodput:.0f} successful calls/s; "
      f"server peak RSS {rss}")
sys.exit(0 if failed == 0 and ok == calls else 1)
PY
if [ $st -ne 0 ]; then
  tail -20 "$data/sipp.out" >&2 || true
  sed "s/\([0-9]\{4\}-[0-9][0-9]-[0-9][0-9]\t\)/\n\1/g" "$data/errors.log" 2>/dev/null \
    | grep -v "Automatic response mode" | grep . | head -12 >&2 || true
fi
exit $st
