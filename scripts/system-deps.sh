#!/usr/bin/env bash
# Installs the system tools the tests need when they are missing: the JDK (jarsigner,
# keytool, jar), Debian's apksigner, and Debian's chromium (driven by Playwright for the
# browser tests). Fails loudly when they are missing and cannot be installed: the interop
# and browser tests never skip.
set -euo pipefail
declare -A package=([jarsigner]=default-jdk-headless [keytool]=default-jdk-headless
                    [jar]=default-jdk-headless [apksigner]=apksigner [chromium]=chromium)
need=()
for tool in "${!package[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || need+=("${package[$tool]}")
done
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "system-deps: installing Debian packages: ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "system-deps: need root (or sudo) to apt-get install ${need[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
for tool in "${!package[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "system-deps: $tool still missing" >&2; exit 1; }
done
