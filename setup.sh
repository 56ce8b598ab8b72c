#!/usr/bin/env bash
# Installs every Debian 12 package that syncd's build, tests and benchmarks need.
# Non-interactive and idempotent; run as root. Installs only what is missing.
set -euo pipefail

packages=(
  # Build
  g++ cmake make pkg-config
  libuv1-dev librsync-dev libssh2-1-dev liblua5.4-dev
  libfmt-dev libxxhash-dev libzstd-dev libsystemd-dev
  # Tests: GoogleTest, a real sshd and ssh-keygen, namespaces (ip, unshare, mount)
  libgtest-dev libgmock-dev
  openssh-server openssh-client iproute2 util-linux mount procps
  # The fuzzers: clang and its libFuzzer runtime
  clang-16 libclang-rt-16-dev
  # Packaging test: the Debian package's library dependencies, checking the systemd units
  dpkg-dev file systemd
  # Benchmarks: the tools syncd is compared with
  libbenchmark-dev rsync lsyncd
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup.sh: all ${#packages[@]} packages present"
