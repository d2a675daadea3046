#!/usr/bin/env bash
# Pool smoke (issue 15, docs/pool.md "Behind Kamailio"): a throw-away PostgreSQL (initdb
# in a temporary directory as an unprivileged user, on a loopback port), four
# pchat-servers sharing it (`[store] url`, `[pool] server_id` m1..m4, lease 5 s,
# compliance on with one shared compliance database and output directory, `[auth]
# mode = "trusted"`), and Kamailio (deploy/kamailio/start.sh) in front of them on
# 127.0.0.2 - Digest for the users, P-Asserted-Identity to the members. Through the
# front end: `pchat-sim run scenarios/pool/ --target`, then `pchat-sim load` with m4
# killed by -9 mid-run; a survivor must close m4's sessions (its log says so) within
# 45 s, every acknowledged post must be stored (once: `compliance verify` pairs each
# stored message with one CHAT event), and `compliance verify` must report 0 missing
# and 0 duplicated.
# Also runs server/tests/pool_live.rs (two members relay each other's posts once, in
# order; ntc:part for a dead member's users) with CI=true, so it cannot skip.
# Loopback only; bounded in time (about two minutes after the build).
# Ports: PCHAT_POOL_PORT_BASE (default 17100): +1..+4 the members, +9 PostgreSQL,
# +60 Kamailio (on 127.0.0.2). PCHAT_POOL_LOGS=DIR keeps the logs. PCHAT_POOL_SIP_EXTRA:
# `[sip]` lines for the members (e.g. "max_unanswered = 1", to see the front end pass
# the members' 503 on to the clients).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${PCHAT_POOL_PORT_BASE:-17100}
bin=${PCHAT_POOL_BIN_DIR:-target/release}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
missing=()
if [ -z "$(pg_bin)" ] && ! command -v initdb >/dev/null 2>&1; then missing+=(postgresql); fi
command -v kamailio >/dev/null 2>&1 || missing+=(kamailio)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
# `--install-only`: just the packages (.ci/run runs this before `cargo test`, whose
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
kamailio_pid=""
cleanup() {
  # Kamailio: TERM to its main process, which stops its children (-9 would orphan them).
  if [ -n "$kamailio_pid" ]; then
    kill -TERM "$kamailio_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$kamailio_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "${runas[@]}" "$PGBIN/pg_ctl" -D "$data/pg/data" -m immediate stop >/dev/null 2>&1 || true
  # PCHAT_POOL_LOGS=DIR keeps the members', Kamailio's and PostgreSQL's logs.
  if [ -n "${PCHAT_POOL_LOGS:-}" ]; then
    mkdir -p "$PCHAT_POOL_LOGS" && cp "$data"/*.log "$data"/*.json "$data/pg/log" "$PCHAT_POOL_LOGS/" 2>/dev/null || true
  fi
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
fe="127.0.0.2:$((base + 60))"   # the front end; its address is the members' trusted peer
"$bin/pchat-sim" load --print-server-config --rooms "$rooms" --users 0 \
  | sed -n '/^\[\[room\]\]/,$p' >"$data/load-rooms.toml"
"$bin/pchat-server" --print-default-config >"$data/default.toml"
for i in 1 2 3 4; do
  # Every member's worker runs every 300 ms; one exports at a time, the holder of the
  # pool's compliance lease (docs/pool.md), so they do not race on the shared outbox.
  interval=300ms
  sed -e "s#^listen = \"127.0.0.1:5060\"#listen = \"127.0.0.1:$((base + i))\"#" \
      -e "s#^path = \"pchat-data/pchat.db\".*#url = \"$url\"#" \
      -e "s#^enabled = false.*#enabled = true#" \
      -e "s#^run_interval = .*#run_interval = \"$interval\"#" \
      -e "s#^output_dir = \"pchat-data/compliance\"#output_dir = \"$data/out\"#" \
      -e "s#^path = \"pchat-data/mgccomp.db\".*#path = \"$data/mgccomp.db\"#" \
      -e "s#^mode = \"digest\".*#mode = \"trusted\"\ntrusted_peers = [\"${fe%:*}\"]#" \
      -e "s#^\# max_unanswered = 64 .*#${PCHAT_POOL_SIP_EXTRA:-&}#" \
      "$data/default.toml" >"$data/m$i.toml"
  cat "$data/load-rooms.toml" >>"$data/m$i.toml"
  printf '\n[pool]\nserver_id = "m%s"\nlease_s = 5\nuris = ["sip:pchat@contoso.com"]\n' "$i" >>"$data/m$i.toml"
  # One after the other: the first creates the shared compliance database.
  "$bin/pchat-server" --config "$data/m$i.toml" >"$data/m$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do grep -q "pchat-server ready" "$data/m$i.log" && break; sleep 0.1; done
  grep -q "pchat-server ready" "$data/m$i.log" || { cat "$data/m$i.log" >&2; exit 1; }
done

# The front end's users: the demo users and the load users, with their passwords.
{
  for u in user1 user2 user3 user4 roomadmin; do echo "$u $u-demo"; done
  for i in $(seq 0 $((users - 1))); do echo "load$i load$i-pw"; done
} >"$data/users.txt"
deploy/kamailio/start.sh --dir "$data/kamailio" --users "$data/users.txt" "$fe" \
  "127.0.0.1:$((base + 1))" "127.0.0.1:$((base + 2))" "127.0.0.1:$((base + 3))" \
  "127.0.0.1:$((base + 4))" >"$data/kamailio.log" 2>&1 &
kamailio_pid=$!   # start.sh execs Kamailio
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/${fe%:*}/${fe#*:}") 2>/dev/null && break
  sleep 0.1
done
echo "--- Kamailio at $fe in front of 4 members on $url"

echo "--- pchat-sim run scenarios/pool/ --target $fe (through the front end)"
"$bin/pchat-sim" run scenarios/pool/ --target "$fe" | tee "$data/run.txt"

echo "--- pchat-sim load through the front end; m4 killed with -9 mid-run"
timeout 120 "$bin/pchat-sim" load --target "$fe" --users "$users" --rooms "$rooms" \
  --room-size 20 --rate 60 --duration 8s --drain 8s --json --quiet >"$data/load.json" &
l=$!
# Kill m4 once every load user is signed in and in its rooms (the open-sessions ledger
# names them all) and posting has begun; at most 60 s.
psql_pool() { "${runas[@]}" "$PGBIN/psql" -h 127.0.0.1 -p "$pgport" -U pchat -d pchat -Atc "$1"; }
for _ in $(seq 1 600); do
  n=$(psql_pool "select count(distinct user_uri) from open_sessions where user_uri like 'sip:load%'" || echo 0)
  [ "$n" -ge "$users" ] && break
  sleep 0.1
done
sleep 2
kill -9 "${pids[3]}"
killed=$(date +%s)
# Watch for the take-over while the load runs on (at most 60 s).
(
  for _ in $(seq 1 600); do
    grep -q 'closed its [0-9]* open session' "$data"/m[123].log && { date +%s >"$data/closed_at"; break; }
    sleep 0.1
  done
) &
watcher=$!
wait "$l" || true
wait "$watcher" || true
cat "$data/load.json"
if [ ! -s "$data/closed_at" ]; then
  echo "no survivor closed m4's sessions" >&2; tail -20 "$data/m1.log" >&2; exit 1
fi
grep -h 'closed its [0-9]* open session' "$data"/m[123].log
took=$(( $(cat "$data/closed_at") - killed ))
echo "m4's sessions closed ${took} s after kill -9 (lease_s 5; limit 45 s)"
[ "$took" -le 45 ] || { echo "too late" >&2; exit 1; }
# Stop the front end, then the survivors cleanly: their workers export the rest.
kill -TERM "$kamailio_pid" 2>/dev/null || true
for p in "${pids[0]}" "${pids[1]}" "${pids[2]}"; do
  kill -TERM "$p"
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
done
"$bin/pchat-server" --config "$data/m1.toml" compliance verify | tee "$data/verify.txt"
grep -q "missing: 0" "$data/verify.txt" && grep -q "duplicated: 0" "$data/verify.txt"
# Every acknowledged post is in the store once: messages in the load rooms >= acked
# (those m4 stored but could not acknowledge before it died may add to them) and
# <= sent; verify above pairs each stored message with one CHAT event.
stored=$(psql_pool "select count(*) from messages m join rooms r on r.guid = m.room_guid where r.name like 'load-%'")
python3 - "$data/load.json" "$stored" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
stored = int(sys.argv[2])
problems = []
if r["sessions_established"] != r["users"]:
    problems.append(f"{r['sessions_established']}/{r['users']} sessions signed in")
if not r["posts_acked"] <= stored <= r["posts_sent"]:
    problems.append(f"{stored} stored, {r['posts_acked']} acked, {r['posts_sent']} sent")
if r["posts_acked"] < r["posts_scheduled"] // 2:
    problems.append(f"only {r['posts_acked']}/{r['posts_scheduled']} posts acknowledged")
if problems:
    sys.exit("pool smoke failed: " + "; ".join(problems))
print("pool smoke through the front end: %d sessions, %d/%d posts acked (m4 killed), %d stored, "
      "%d relays, p99 %.1f ms" % (r["sessions_established"], r["posts_acked"],
      r["posts_scheduled"], stored, r["relays"], r["latency_p99_ms"]))
PY

