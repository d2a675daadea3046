#!/usr/bin/env bash
# Two real SIPE clients (pidgin-sipe on libpurple, driven headless by
# clients/sipe/driver.c) sign in straight to pchat-server and chat (issue 13):
# sign-in, room list, participant list (an offline manager is not listed), join
# Lobby, history, a post each way, join and part notices, an UPDATE refresh (short
# session_expires_s), sign-out. Once per [auth] mode in $PCHAT_SIPE_MODES (default
# "none ntlm"); with "ntlm" a wrong password must not sign in. Loopback only; every
# driver bounded by `timeout`; exits non-zero on any failed step.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
port=${PCHAT_SIPE_PORT:-35070}
modes=${PCHAT_SIPE_MODES:-none ntlm}

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
[ -e /usr/lib/purple-2/libsipe.so ] || need+=(pidgin-sipe)
[ -e /usr/include/libpurple/purple.h ] || need+=(libpurple-dev)
[ -e /usr/include/libxml2/libxml/parser.h ] || need+=(libxml2-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi

work=$(mktemp -d)
# PCHAT_SIPE_KEEP=1 keeps the logs (SIPE debug output with every SIP message).
cleanup() {
  for f in "$work"/*/server.pid; do [ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  if [ -n "${PCHAT_SIPE_KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

gcc -O2 -Wall -Wextra -Werror -o "$work/sipe-driver" clients/sipe/driver.c \
  $(pkg-config --cflags --libs purple glib-2.0)
gcc -O2 -Wall -Werror -shared -fPIC -o "$work/xml_sax1_shim.so" clients/sipe/xml_sax1_shim.c \
  $(pkg-config --cflags libxml-2.0) -ldl
server=${PCHAT_SIPE_SERVER:-}  # a pchat-server binary to use instead of the release build
if [ -z "$server" ]; then
  cargo build --release -q -p pchat-server
  server=./target/release/pchat-server
fi

# user1 (manager of Design) and user2 chat in Lobby; the shared steps are in
# clients/sipe/user1.script and user2.script.
run_mode() { # mode port
  local mode=$1 port=$2 data="$work/$1" status=0 pid
  mkdir -p "$data"
  {
    sed '/^# >>> auth/,/^# <<< auth/d' server/src/default-config.toml \
      | sed 's/^session_expires_s = .*/session_expires_s = 90/'
    if [ "$mode" = ntlm ]; then
      cat <<EOF

[auth]
mode = "ntlm"
[[user]]
uri = "sip:user1@contoso.com"
password = "user1-pass"
[[user]]
uri = "sip:user2@contoso.com"
password = "user2-pass"
EOF
    fi
  } >"$data/config.toml"
  $server --config "$data/config.toml" --sip "127.0.0.1:$port" --store "$data/pchat.db" \
    >"$data/server.log" 2>&1 &
  pid=$!
  echo $pid >"$data/server.pid"
  pchat_wait_ready "$data/server.log" || return 1

  drive() { # name account password script
    SIPE_DRIVER_NAME="[$mode] $1" SIPE_DRIVER_LOG="$data/$1.debug" \
      LD_PRELOAD="$work/xml_sax1_shim.so" \
      timeout 200 "$work/sipe-driver" "$2" "$3" "127.0.0.1:$port" "$4"
  }
  if [ "$mode" = ntlm ]; then
    printf 'timeout 20\nsignin-fails\n' >"$data/wrong.script"
    drive wrong user2@contoso.com not-the-password "$data/wrong.script" || status=1
  fi
  drive user1 user1@contoso.com user1-pass clients/sipe/user1.script >"$data/user1.out" 2>&1 &
  local a=$!
  # user2 starts once user1 has posted (so that post is history for user2).
  for _ in $(seq 1 600); do
    grep -q "PASS .* post " "$data/user1.out" && break
    kill -0 $a 2>/dev/null || break
    sleep 0.1
  done
  drive user2 user2@contoso.com user2-pass clients/sipe/user2.script >"$data/user2.out" 2>&1 || status=1
  wait $a || status=1
  cat "$data/user1.out" "$data/user2.out"
  if [ "$mode" = ntlm ]; then
    # SIPE checked the [MS-SIPAE] signature of what the server sent (it drops the
    # connection on a bad one and ignores unsigned messages).
    for u in user1 user2; do
      n=$(grep -c "signature of incoming message validated" "$data/$u.debug" || true)
      bad=$(grep -c "signature of incoming message is invalid\|message without authentication data" "$data/$u.debug" || true)
      echo "[$mode] $u: $n server messages with a valid signature, $bad unsigned or invalid"
      { [ "$n" -gt 10 ] && [ "$bad" -eq 0 ]; } || status=1
    done
  fi
  kill -INT "$pid"; wait "$pid" || true; rm -f "$data/server.pid"
  if [ $status -ne 0 ]; then
    echo "--- [$mode] server log"; tail -n 50 "$data/server.log"
    for f in "$data"/*.debug; do echo "--- $f (tail)"; tail -n 80 "$f"; done
  fi
  return $status
}

# The modes run side by side (each on its own port): the UPDATE refresh takes 80 s.
i=0
for mode in $modes; do
  ( if run_mode "$mode" $((port + i)) >"$work/$mode.log" 2>&1; then
      echo "sipe [$mode]: all steps passed" >>"$work/$mode.log"
    else
      echo "sipe [$mode]: FAILED" >>"$work/$mode.log"; exit 1
    fi ) &
  eval "job_$i=$!"
  i=$((i + 1))
done
overall=0
i=0
for mode in $modes; do
  eval "wait \$job_$i" || overall=1
  cat "$work/$mode.log"
  i=$((i + 1))
done
exit $overall
