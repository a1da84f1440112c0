#!/bin/sh
# The browser tests drive the system's Chromium (Playwright's own download is not used).
# Install it when we can; otherwise stop with the exact command to run.
set -eu
if [ -n "${TRIPCOMMS_CHROMIUM:-}" ]; then
  [ -x "$TRIPCOMMS_CHROMIUM" ] && exit 0
  echo "TRIPCOMMS_CHROMIUM=$TRIPCOMMS_CHROMIUM is not an executable file." >&2
  exit 1
fi
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Chromium for the browser tests (apt-get install -y chromium)..."
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  exit 0
fi
echo "The browser tests need Chromium. Install it with:" >&2
echo "    sudo apt-get install -y chromium" >&2
echo "or point TRIPCOMMS_CHROMIUM at a Chromium or Chrome executable." >&2
exit 1
