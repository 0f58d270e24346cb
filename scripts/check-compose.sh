#!/usr/bin/env bash
# Validate docker-compose.yml with `docker-compose config`.
# Installs Debian's docker-compose package if missing and we can (root + apt-get).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "docker-compose not found; installing Debian package docker-compose..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  fi
fi

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "error: docker-compose is not installed and could not be installed" \
       "(need root and apt-get, or install docker-compose yourself)" >&2
  exit 1
fi

cd "$repo_root"
ONBEHALF_ADMIN_PASSWORD=check docker-compose -f docker-compose.yml config -q
echo "docker-compose config: ok"
