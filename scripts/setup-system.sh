#!/usr/bin/env bash
# Installs the system packages auralign uses: real sounds for the offline mini corpus (Debian sound
# themes, espeak-ng speech, sox synthesis), a Java runtime for the METEOR/SPICE jars, and Chromium for the
# browser tests of the report and the demo page.
# As root it installs what is missing with apt-get; otherwise it names what is missing and how to get it.
set -euo pipefail

packages=(espeak-ng sox libsox-fmt-all sound-theme-freedesktop sound-icons alsa-utils default-jre-headless chromium)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "auralign: missing system packages: ${missing[*]} (no apt-get here: install their equivalents by hand)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "auralign: missing system packages: ${missing[*]}" >&2
  echo "  run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "auralign: installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
