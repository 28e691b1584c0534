#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries (initdb, pg_ctl) exist for the test server in
# tests/pg_server.py. Idempotent: does nothing when they are already installed, otherwise
# installs Debian's `postgresql` package (needs root, or sudo without a password).
set -euo pipefail

find_initdb() {
    local bindir
    if command -v pg_config >/dev/null 2>&1; then
        bindir="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "${bindir}" && -x "${bindir}/initdb" && -x "${bindir}/pg_ctl" ]]; then
            echo "${bindir}/initdb"
            return 0
        fi
    fi
    for bindir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
        if [[ -x "${bindir}/initdb" && -x "${bindir}/pg_ctl" ]]; then
            echo "${bindir}/initdb"
            return 0
        fi
    done
    command -v initdb 2>/dev/null
}

if initdb_path="$(find_initdb)"; then
    echo "==> PostgreSQL server binaries present (${initdb_path})"
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "error: PostgreSQL server binaries (initdb) are missing and this user cannot install them;" >&2
    echo "       run as root: apt-get update && apt-get install -y postgresql" >&2
    exit 1
fi

echo "==> PostgreSQL server binaries missing; running: apt-get update && apt-get install -y --no-install-recommends postgresql"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql

if initdb_path="$(find_initdb)"; then
    echo "==> installed PostgreSQL server binaries (${initdb_path})"
else
    echo "error: apt-get installed postgresql but initdb is still not found under /usr/lib/postgresql/*/bin" >&2
    exit 1
fi
