#!/usr/bin/env bash
# The browser tests drive Debian's chromium (Playwright's own browser download is unreachable):
# install the Debian package when /usr/bin/chromium is missing and we can (root + apt-get).
set -euo pipefail

chromium="${ONBEHALF_CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "chromium not found; installing Debian package chromium..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

if [ ! -x "$chromium" ]; then
  echo "error: $chromium is not installed and could not be installed" \
       "(need root and apt-get, or install Debian's chromium yourself);" \
       "the browser tests in tests/console need it" >&2
  exit 1
fi
echo "chromium: $("$chromium" --version 2>/dev/null | head -1)"
