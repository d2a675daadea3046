#!/usr/bin/env bash
# SIPp smoke: the XCCOS flow (bench/sipp/xccos-uac.xml: INVITE, ACK, getserverinfo,
# join, grpchat, BYE) for a few hundred calls, all over ONE TCP connection, against a
# fresh release pchat-server on loopback; any failed call fails CI. Installs SIPp
# (Debian `sip-tester`) if missing. Loopback only; bounded (-m calls, timeouts).
# Env: PCHAT_SMOKE_PORT (45060), SIPP_SMOKE_CALLS (400), SIPP_SMOKE_RATE (100 calls/s).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v sipp >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends sip-tester
fi
sipp -v 2>&1 | grep -m1 -i "sipp" || true
# 400 calls at 100/s, 100 rooms (bench/sipp/run.sh); all over one TCP connection.
cargo build --release -q -p pchat-server
timeout 300 bash bench/sipp/run.sh "${SIPP_SMOKE_CALLS:-400}" "${SIPP_SMOKE_RATE:-100}"
