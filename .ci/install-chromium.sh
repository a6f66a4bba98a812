#!/usr/bin/env bash
# Installs Debian's Chromium for the browser journeys when it is missing.
# Prints what it did; if it cannot install, the browser tests skip with this reason printed.
set -u
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium: installing Debian's chromium (apt-get)..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/tmp/recoup-apt.log 2>&1 \
    && echo "chromium: installed $(/usr/bin/chromium --version 2>/dev/null | head -1)" \
    || echo "chromium: install FAILED (see /tmp/recoup-apt.log); browser journeys will be skipped"
else
  echo "chromium: not installed and cannot apt-get here (need root); browser journeys will be skipped"
fi
exit 0
