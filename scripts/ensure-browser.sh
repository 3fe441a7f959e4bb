#!/usr/bin/env bash
# The browser tests drive Debian's chromium (never a browser downloaded by `playwright install`).
# Installs it, with the CJK fonts the Chinese pages need, when /usr/bin/chromium is missing.
# Usage: scripts/ensure-browser.sh   (run by `make test`; needs root only when something is missing)
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
PACKAGES="chromium fonts-noto-cjk"
CJK_FONT=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

if [ -x "$CHROMIUM" ] && [ -e "$CJK_FONT" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-browser: $CHROMIUM (or fonts-noto-cjk) is missing and only root can install it." >&2
  echo "ensure-browser: run as root: apt-get update && apt-get install -y $PACKAGES" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-browser: $CHROMIUM is missing and there is no apt-get to install: $PACKAGES" >&2
  exit 1
fi
echo "ensure-browser: installing $PACKAGES with apt-get (once per machine)…" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq $PACKAGES >/dev/null; }; then
  echo "ensure-browser: apt-get could not install $PACKAGES" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-browser: $PACKAGES installed but $CHROMIUM is still missing" >&2
  exit 1
fi
