#!/usr/bin/env bash
# Make sure the `docker-compose` command exists, so the compose file can be validated
# (`docker-compose -f docker-compose.yaml config -q`). Validation needs no Docker engine.
# Idempotent: does nothing when docker-compose is already on PATH. Otherwise it installs
# Debian's docker-compose package (1.29) with apt-get. That needs root; `make test`
# runs as root here.
set -euo pipefail

if command -v docker-compose >/dev/null 2>&1; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "docker-compose is missing and apt-get is not available: install docker-compose" \
         "(or the Docker Compose v2 plugin, with a docker-compose shim) by hand" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "docker-compose is missing, and installing it needs root: run as root or install sudo" >&2
        exit 1
    fi
fi

echo "==> installing docker-compose (Debian package) to validate docker-compose.yaml"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null

if ! command -v docker-compose >/dev/null 2>&1; then
    echo "apt-get finished, but docker-compose is still not on PATH" >&2
    exit 1
fi
docker-compose version --short 2>/dev/null || true
