#!/usr/bin/env bash
# Installs what building and testing Zoo needs and a fresh machine lacks.
# Idempotent: installs only missing Debian packages, and runs `apt-get update`
# only when something is missing.
#
#   zookeeper      Apache ZooKeeper 3.8 and zkCli.sh: the reference we test against
#   python3-kazoo  the Python client our compatibility tests drive
#   netcat-openbsd four-letter words from the shell
#   libclang-dev   bindgen, which generates the RocksDB bindings at build time
#   fonts-dejavu-core  the font zoo-jepsen's PNG plots write their text in
set -euo pipefail

packages=(zookeeper python3-kazoo netcat-openbsd libclang-dev fonts-dejavu-core)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
        echo "setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo=sudo
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
