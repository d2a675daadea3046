#!/usr/bin/env bash
# Starts Kamailio (the distribution's package) as the pool's front end (docs/pool.md,
# "Front end"): start.sh LISTEN MEMBER... e.g.
#   deploy/kamailio/start.sh 127.0.0.1:5060 127.0.0.1:5071 127.0.0.1:5072
# Runs in the foreground (-DD -E: logs to stderr); its files go to a temporary
# directory removed at exit. Experimental: see the limits in docs/pool.md.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 LISTEN_HOST:PORT MEMBER_HOST:PORT..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
listen=$1; shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for m in "$@"; do echo "1 sip:$m;transport=tcp"; done >"$dir/dispatcher.list"
sed -e "s#tcp:127.0.0.1:17160#tcp:$listen#" \
    -e "s#/etc/kamailio/pchat-dispatcher.list#$dir/dispatcher.list#" \
    "$here/kamailio.cfg" >"$dir/kamailio.cfg"
kamailio -c -f "$dir/kamailio.cfg" >/dev/null
exec kamailio -DD -E -f "$dir/kamailio.cfg" -P "$dir/kamailio.pid"
