#!/usr/bin/env bash
# Starts the real server on a loopback port with a throw-away store, runs every scenario
# against it over real TCP, then stops it with SIGINT (clean shutdown) and checks it
# exited 0. Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
port=${PCHAT_SMOKE_PORT:-35060}
http_port=${PCHAT_SMOKE_HTTP_PORT:-38080}
cargo build --release -q -p pchat-server -p pchat-sim
data=$(mktemp -d)
# The embedded default without its [auth] block (the scenarios' clients sign in as
# many users without passwords: mode "none", which the loopback listen allows), plus
# what the web services scenarios need: [http], a category with file upload off (and
# its room), room creators (roomadmin also creates the rooms of scenarios with their
# own [[room]]: --room-admin). Digest with the embedded default on the real binary is
# covered by server/tests/embedded_auth.rs.
{ sed '/^# >>> auth/,/^# <<< auth/d' server/src/default-config.toml; cat; } >"$data/config.toml" <<EOF

[http]
listen = "127.0.0.1:$http_port"
file_store = "$data/files"
compliance_file_store = "$data/compliance-files"
max_file_bytes = 64

[[category]]
name = "Default"
creators = ["sip:roomadmin@contoso.com"]

[[category]]
name = "NoFiles"
file_upload = false

[[room]]
name = "Quiet"
privacy = "secret"
members = ["sip:user3@contoso.com"]
category = "NoFiles"
EOF
pchat_start "$data" ./target/release/pchat-server --config "$data/config.toml" --sip "127.0.0.1:$port" --store "$data/pchat.db"
status=0
timeout 300 ./target/release/pchat-sim run scenarios/ --target "127.0.0.1:$port" --http "127.0.0.1:$http_port" --room-admin sip:roomadmin@contoso.com || status=$?
pchat_stop_int $pid 50 || { echo "server did not stop on SIGINT" >&2; cat "$data/server.log"; exit 1; }
wait $pid || { echo "server exited non-zero" >&2; cat "$data/server.log"; exit 1; }
grep -q "pchat-server stopped" "$data/server.log" || { cat "$data/server.log"; exit 1; }
if [ $status -ne 0 ]; then cat "$data/server.log"; fi
exit $status
