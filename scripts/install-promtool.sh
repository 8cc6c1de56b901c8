#!/usr/bin/env bash
# Installs promtool (Debian's prometheus package) when it is missing: CI checks
# and unit-tests the alert rules in ops/prometheus/ with it. Never a download
# outside the distribution's packages.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "promtool is missing; run as root: apt-get update && apt-get install -y prometheus" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package ships a Prometheus service; on a CI runner or in a container nothing
# should start it (policy-rc.d answering 101 tells the package scripts so).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
