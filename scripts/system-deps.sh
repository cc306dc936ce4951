#!/usr/bin/env bash
# Installs the system tools the tests need (JDK: jarsigner, keytool, jar; Debian's apksigner)
# when they are missing. Fails loudly when they are missing and cannot be installed:
# the interop tests never skip.
set -euo pipefail
need=()
for tool in jarsigner keytool jar apksigner; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
echo "system-deps: missing ${need[*]}; installing Debian packages" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "system-deps: need root (or sudo) to apt-get install default-jdk-headless apksigner" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends default-jdk-headless apksigner
for tool in jarsigner keytool jar apksigner; do
    command -v "$tool" >/dev/null 2>&1 || { echo "system-deps: $tool still missing" >&2; exit 1; }
done
