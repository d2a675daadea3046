# Shell functions shared by .ci/*.sh and bench/*.sh: source it (bash) after `cd` to the
# repository root. Each waits a bounded time.

# pchat_wait_ready LOG: waits up to 10 s for "pchat-server ready" in LOG; if it does not
# come, prints LOG on stderr and returns 1.
pchat_wait_ready() {
  local log=$1
  for _ in $(seq 1 100); do
    grep -qs "pchat-server ready" "$log" && return 0
    sleep 0.1
  done
  cat "$log" >&2
  return 1
}

# pchat_start DATA CMD...: runs CMD... in the background with its output in
# DATA/server.log and sets `pid`; on exit the process is killed (-9) and DATA removed.
# Then waits until the server is ready (pchat_wait_ready; returns 1 if it is not).
pchat_start() {
  local data=$1
  shift
  "$@" >"$data/server.log" 2>&1 &
  pid=$!
  # shellcheck disable=SC2064 # expanded now: this pid and this directory
  trap "{ kill -9 $pid; wait $pid; } 2>/dev/null || true; rm -rf '$data'" EXIT
  pchat_wait_ready "$data/server.log"
}

# pchat_stop_int PID TENTHS: SIGINT (a clean shutdown), then waits up to TENTHS tenths
# of a second for the process to exit; returns 1 if it still runs.
pchat_stop_int() {
  kill -INT "$1"
  for _ in $(seq 1 "$2"); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  ! kill -0 "$1" 2>/dev/null
}
