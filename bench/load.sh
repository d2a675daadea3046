#!/usr/bin/env bash
# Starts a fresh release pchat-server on loopback with the load rooms and a throw-away
# store, runs one `pchat-sim load` against it with the given flags, prints the report
# (JSON on stdout with --json), and stops the server with SIGINT.
# Usage: bench/load.sh --users N --rooms R --room-size S --rate P --duration D [--json ...]
# Env: PCHAT_LOAD_PORT (35170), PCHAT_LOAD_ROOMS_CONFIG (rooms in the config, default 2000),
# PCHAT_LOAD_SERVER / PCHAT_LOAD_SIM (the binaries, default ./target/release/...: to
# compare two builds back to back).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
port=${PCHAT_LOAD_PORT:-35170}
rooms=${PCHAT_LOAD_ROOMS_CONFIG:-2000}
server_bin=${PCHAT_LOAD_SERVER:-./target/release/pchat-server}
sim_bin=${PCHAT_LOAD_SIM:-./target/release/pchat-sim}
data=$(mktemp -d)
# The config carries one [[user]] (SIP Digest) per --users session.
users=100
prev=""
for a in "$@"; do
  case "$a" in --users=*) users=${a#--users=} ;; esac
  [ "$prev" = "--users" ] && users=$a
  prev=$a
done
"$sim_bin" load --print-server-config --rooms "$rooms" --users "$users" \
  | sed "s#127.0.0.1:5060#127.0.0.1:$port#; s#pchat-load/pchat.db#$data/pchat.db#" >"$data/server.toml"
pchat_start "$data" "$server_bin" --config "$data/server.toml"
status=0
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{printf "%.1f", ($14+$15)/t}' "/proc/$1/stat"; }
start=$(date +%s.%N)
timer=()
if [ -x /usr/bin/time ]; then
  timer=(/usr/bin/time -f "pchat-sim load: %U s user + %S s system CPU, %M KiB max RSS")
fi
"${timer[@]}" "$sim_bin" load --target "127.0.0.1:$port" --server-pid "$pid" "$@" || status=$?
echo "pchat-server: $(cpu $pid) s CPU (user+system) over $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}') s of this run; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
pchat_stop_int $pid 100 || true
exit $status
