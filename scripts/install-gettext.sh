#!/usr/bin/env bash
# Installs Debian's gettext (msgfmt) when it is missing: `make messages` compiles the
# catalogs under locale/ with it (Django's compilemessages calls msgfmt).
set -euo pipefail
if command -v msgfmt >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "msgfmt is missing; run as root: apt-get update && apt-get install -y gettext" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends gettext >/dev/null
