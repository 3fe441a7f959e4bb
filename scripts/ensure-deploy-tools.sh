#!/usr/bin/env bash
# tests/test_deploy.py runs deploy/nginx/complaints.conf in a real nginx in front of gunicorn and checks
# deploy/systemd/ with systemd-analyze. Installs Debian's nginx and systemd when missing (about 5 s; the test
# starts its own nginx on 127.0.0.1, never the package's service).
# Usage: scripts/ensure-deploy-tools.sh   (run by `make test`; needs root only when something is missing)
set -euo pipefail
MISSING=()
[ -x /usr/sbin/nginx ] || MISSING+=(nginx)
command -v systemd-analyze >/dev/null || MISSING+=(systemd)
[ ${#MISSING[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-deploy-tools: ${MISSING[*]} missing; as root: apt-get install -y --no-install-recommends ${MISSING[*]}" >&2
  exit 1
fi
echo "ensure-deploy-tools: installing ${MISSING[*]} with apt-get (once per machine)…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
