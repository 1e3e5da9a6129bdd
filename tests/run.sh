#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need (Debian packages,
# a virtualenv with the project), then lint, types and pytest. Services (PostgreSQL, ...)
# are started by pytest session fixtures under tests/services/ and stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# PostgreSQL: tests/services/postgres.py runs a private cluster with the package's initdb/pg_ctl
# (as the package's `postgres` user when run as root).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# Headless Chromium for the dashboard's browser tests (selenium drives /usr/bin/chromedriver).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# Fleet targets: tests/services/sshd.py runs a private sshd, tests/services/docker.py a private
# dockerd with a busybox image made by `docker import` (no registry is reachable).
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check runbook_engine actions tests benchmarks
.venv/bin/mypy
.venv/bin/pytest "$@"
