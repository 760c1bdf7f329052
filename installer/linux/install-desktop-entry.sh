#!/usr/bin/env bash
# Installs the menu entry and icon for the current user (no root needed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
apps=${XDG_DATA_HOME:-$HOME/.local/share}/applications
icons=${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor
mkdir -p "$apps" "$icons/256x256/apps" "$icons/scalable/apps"
install -m 0644 "$here/backup-operator.desktop" "$apps/backup-operator.desktop"
[ -f "$root/resources/icons/backup-operator.png" ] && install -m 0644 "$root/resources/icons/backup-operator.png" "$icons/256x256/apps/backup-operator.png"
[ -f "$root/resources/icons/backup-operator.svg" ] && install -m 0644 "$root/resources/icons/backup-operator.svg" "$icons/scalable/apps/backup-operator.svg"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
echo "Installed the Backup Operator menu entry for $USER."
