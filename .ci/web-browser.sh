#!/usr/bin/env bash
# The web pages in a real browser (issue 16): installs Debian's chromium and
# chromium-driver when missing, then runs server/tests/web_browser.rs (headless
# Chromium through WebDriver against the real server on loopback, ephemeral ports).
# Screenshots of every page land in target/web-screenshots/ (keep as a CI artifact).
# With CI=true the test fails, rather than skips, when the browser is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromedriver >/dev/null 2>&1 || ! { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends chromium chromium-driver
fi
(command -v chromium || command -v chromium-browser) | xargs -r -I{} sh -c '{} --version' || true
chromedriver --version || true
mkdir -p target/web-screenshots
cargo test -p pchat-server --test web_browser -- --ignored --nocapture
ls -l target/web-screenshots
