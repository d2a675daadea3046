#!/usr/bin/env bash
# Pool smoke (issue 15, docs/pool.md): a throw-away PostgreSQL (initdb in a temporary
# directory as an unprivileged user, on a loopback port), three pchat-servers sharing it
# (`[store] url`, `[pool] server_id`, lease 5 s, compliance on with one shared
# compliance database and output directory), `pchat-sim load` on members m1 and m2 at
# once (rooms of their own), m2 killed with -9 mid-run; then m1 must close m2's sessions (its log says so),
# and `pchat-server compliance verify` must report 0 missing and 0 duplicated.
# Also runs server/tests/pool_live.rs (two members relay each other's posts once, in
# order; ntc:part for a dead member's users) with CI=true, so it cannot skip.
# Loopback only; bounded in time (about a minute after the build).
# Ports: PCHAT_POOL_PORT_BASE (default 17100): +1..+3 the members, +9 PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${PCHAT_POOL_PORT_BASE:-17100}
bin=${PCHAT_POOL_BIN_DIR:-target/release}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(pg_bin)" ] && ! command -v initdb >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends postgresql
fi
# `--install-only`: just the package (.ci/run runs this before `cargo test`, whose
# PostgreSQL store tests fail under CI=true without it).
[ "${1:-}" = "--install-only" ] && exit 0
PGBIN=$(pg_bin)
[ -n "$PGBIN" ] || PGBIN=$(dirname "$(command -v initdb)")
export PCHAT_PG_BIN=$PGBIN

echo "--- server/tests/pool_live.rs (two members, kill -9, ntc:part, verify)"
CI=true cargo test -q -p pchat-server --test pool_live

if [ "$bin" = target/release ]; then
  cargo build --release -q -p pchat-server -p pchat-sim
fi
data=$(mktemp -d)
chmod 755 "$data"
mkdir -p "$data/pg"
runas=()
if [ "$(id -u)" -eq 0 ]; then
  pguser=postgres; id postgres >/dev/null 2>&1 || pguser=nobody
  chown "$pguser" "$data/pg"
  runas=(runuser -u "$pguser" --)
fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "${runas[@]}" "$PGBIN/pg_ctl" -D "$data/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT
pgport=$((base + 9))
"${runas[@]}" "$PGBIN/initdb" -D "$data/pg/data" -U pchat --auth=trust --no-locale -E UTF8 --no-sync >/dev/null
"${runas[@]}" "$PGBIN/pg_ctl" -D "$data/pg/data" -l "$data/pg/log" -w \
  -o "-p $pgport -k $data/pg -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null
"${runas[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$pgport" -U pchat pchat
url="postgresql://pchat@127.0.0.1:$pgport/pchat"

users=120
rooms=6
for i in 1 2 3; do
  "$bin/pchat-sim" load --print-server-config --rooms "$rooms" --users "$users" \
    | sed "s#127.0.0.1:5060#127.0.0.1:$((base + i))#; s#^path = \"pchat-load/pchat.db\"#url = \"$url\"#" \
    >"$data/m$i.toml"
  "$bin/pchat-sim" load --print-server-config --rooms "$rooms" --users 0 --room-prefix poolb- \
    | sed -n '/^\[\[room\]\]/,$p' >>"$data/m$i.toml"
  cat >>"$data/m$i.toml" <<CFG

[pool]
server_id = "m$i"
lease_s = 5

[compliance]
enabled = true
run_interval = "300ms"
output_dir = "$data/out"
path = "$data/mgccomp.db"
CFG
  # One after the other: the first creates the shared compliance database.
  "$bin/pchat-server" --config "$data/m$i.toml" >"$data/m$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do grep -q "pchat-server ready" "$data/m$i.log" && break; sleep 0.1; done
  grep -q "pchat-server ready" "$data/m$i.log" || { cat "$data/m$i.log" >&2; exit 1; }
done
echo "--- 3 members on $url; pchat-sim load on m1 and m2, m2 killed with -9 mid-run"
# m2's load uses rooms of its own (poolb-*): the same users in the same room on two
# members would be two JOINs without a PART between them for `compliance verify`.
load() {
  timeout 120 "$bin/pchat-sim" load --target "127.0.0.1:$1" --users "$users" --rooms "$rooms" \
    --room-size 20 --rate 60 --duration 8s --drain 8s --json --quiet "${@:2}"
}
load $((base + 1)) >"$data/load1.json" &
l1=$!
load $((base + 2)) --room-prefix poolb- >"$data/load2.json" 2>/dev/null &
l2=$!
sleep 5
kill -9 "${pids[1]}"
killed=$(date +%s)
wait "$l2" || true
status=0
wait "$l1" || status=$?
cat "$data/load1.json"
for _ in $(seq 1 300); do
  grep -q 'closed its [0-9]* open session' "$data/m1.log" "$data/m3.log" && break
  sleep 0.1
done
if ! grep -h 'closed its [0-9]* open session' "$data/m1.log" "$data/m3.log"; then
  echo "no survivor closed m2's sessions" >&2; tail -20 "$data/m1.log" >&2; exit 1
fi
echo "m2's sessions closed $(( $(date +%s) - killed )) s after kill -9 (lease_s 5; limit 45 s)"
[ $(( $(date +%s) - killed )) -le 45 ] || { echo "too late" >&2; exit 1; }
# Stop the survivors cleanly: their workers export the rest.
kill -TERM "${pids[0]}" "${pids[2]}"
for p in "${pids[0]}" "${pids[2]}"; do
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
done
"$bin/pchat-server" --config "$data/m1.toml" compliance verify | tee "$data/verify.txt"
grep -q "missing: 0" "$data/verify.txt" && grep -q "duplicated: 0" "$data/verify.txt"
python3 - "$data/load1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
problems = []
if r["sessions_established"] != r["users"]:
    problems.append(f"{r['sessions_established']}/{r['users']} sessions signed in")
if r["posts_acked"] != r["posts_scheduled"]:
    problems.append(f"{r['posts_acked']}/{r['posts_scheduled']} posts acknowledged")
if problems:
    sys.exit("pool smoke failed on m1: " + "; ".join(problems))
print("pool smoke: m1 %d sessions, %d posts acked, %d relays, p99 %.1f ms"
      % (r["sessions_established"], r["posts_acked"], r["relays"], r["latency_p99_ms"]))
PY
exit $status
