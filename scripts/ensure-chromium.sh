#!/usr/bin/env bash
# Installs Debian's Chromium (headless use: the /docs rendering test) unless it is installed.
# Idempotent: a dpkg query and nothing else when it is there. Prints the browser's path.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

# fonts-liberation: metric-compatible fonts, so screenshots show text rather than boxes.
apt_ensure chromium fonts-liberation
command -v chromium
