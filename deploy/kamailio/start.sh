#!/usr/bin/env bash
# Starts Kamailio (the distribution's package, 5.6) as the pool's front end
# (docs/pool.md, "Behind Kamailio"):
#   start.sh [--realm DOMAIN] [--users FILE] [--dir DIR] LISTEN MEMBER...
# e.g. deploy/kamailio/start.sh --users users.txt 127.0.0.2:5060 127.0.0.1:5071 127.0.0.1:5072
# - LISTEN: the front end's HOST:PORT (TCP). Its host is also the source address of
#   its connections to the members: put it in the members' `[auth] trusted_peers`
#   (`mode = "trusted"`).
# - MEMBER: each pool member's `[sip] listen`.
# - --users FILE: lines `USER PASSWORD` (the user part of the SIP URI), the users the
#   front end authenticates (SIP Digest). Without it nobody can sign in.
# - --realm: the Digest realm and the From domain of OPTIONS probes (contoso.com).
# - --dir DIR: where the generated config, dispatcher list, user table, pid file and
#   RPC sockets go (default: a temporary directory removed at exit).
# Runs in the foreground (-DD -E: logs to stderr) and as the calling user; needs no
# privileges for ports above 1023.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
realm=contoso.com
users=""
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --realm) realm=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [--realm D] [--users FILE] [--dir DIR] LISTEN_HOST:PORT MEMBER_HOST:PORT..." >&2; exit 2; }
listen=$1; shift
if [ -z "$dir" ]; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir/db"
for m in "$@"; do echo "1 sip:$m;transport=tcp"; done >"$dir/dispatcher.list"
# db_text tables: `version` and `subscriber` (auth_db reads username, password).
printf 'table_name(string) table_version(int)\nsubscriber:7\nlocation:9\n' >"$dir/db/version"
{
  echo 'id(int,auto) username(string) domain(string) password(string) ha1(string,null) ha1b(string,null)'
  n=0
  if [ -n "$users" ]; then
    while read -r u p; do
      [ -n "$u" ] || continue
      n=$((n + 1))
      echo "$n:$u:$realm:$p::"
    done <"$users"
  fi
} >"$dir/db/subscriber"
sed -e "s#tcp:127.0.0.2:5060#tcp:$listen#" \
    -e "s#^\#!substdef \"!PCHAT_SOURCE!127.0.0.2!\"#\#!substdef \"!PCHAT_SOURCE!${listen%:*}!\"#" \
    -e "s#/etc/kamailio/pchat-dispatcher.list#$dir/dispatcher.list#" \
    -e "s#text:///etc/kamailio/pchat-db#text://$dir/db#" \
    -e "s#!PCHAT_RUN!/run/kamailio!#!PCHAT_RUN!$dir!#" \
    -e "s#!PCHAT_REALM!contoso.com!#!PCHAT_REALM!$realm!#" \
    "$here/kamailio.cfg" >"$dir/kamailio.cfg"
kamailio -c -f "$dir/kamailio.cfg" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; exit 1; }
# Shared memory (MB): every relay to a client is a transaction kept a few seconds; 64 MB
# (Kamailio's default) runs out at a few thousand relays/s. KAMAILIO_SHM_MB overrides.
exec kamailio -DD -E -m "${KAMAILIO_SHM_MB:-512}" -M 16 -f "$dir/kamailio.cfg" -P "$dir/kamailio.pid" -Y "$dir" -w "$dir"
