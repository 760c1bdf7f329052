#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, then runs it.
# The README's second quick-start command; .ci/run calls it with BO_REQUIRE_SERVICES=1 so that tests
# needing PostgreSQL, MariaDB or sshd fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: Qt's runtime libraries, a virtual screen, an SSH server for the SFTP tests, nginx (with
# its dav and ssl modules) for the http(s) inbox tests, fzf and
# poppler for the benchmarks and the crash-sheet test. Only installed when missing and when we may.
debs="libegl1 libgl1 libx11-6 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libfreetype6 libglib2.0-0
      libdbus-1-3 fonts-dejavu-core libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 xvfb openssh-server
      openssh-client fzf poppler-utils nginx-light"
missing=""
for p in $debs; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian packages:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "Missing Debian packages (tests that need them will skip):$missing" >&2
  fi
fi

python3 -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'

export QT_QPA_PLATFORM=offscreen
lint-imports
python3 -m pytest "$@"
# Times must not depend on the machine's own time zone: run the headless core (on call, search, store)
# and the exporter's time conversions again under two zones with daylight saving.
for zone in Europe/London America/New_York; do
  echo "== TZ=$zone"
  TZ=$zone python3 -m pytest -q -p no:cacheprovider tests/core tests/exporter/test_rota.py tests/exporter/test_ical.py
done
