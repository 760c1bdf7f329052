#!/usr/bin/env bash
# Builds the one-folder desktop bundle with PyInstaller: installer/dist/backup-operator/.
# Usage: bash installer/build.sh        (then: installer/dist/backup-operator/backup-operator --help)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[gui]' 'pyinstaller>=6.5'
start=$(date +%s)
python3 -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath installer/dist --workpath installer/build installer/backup_operator.spec
echo "Built installer/dist/backup-operator in $(( $(date +%s) - start )) s," \
     "$(du -sm installer/dist/backup-operator | cut -f1) MiB"
