#!/usr/bin/env bash
# Runs lsyncd's own test suite (the tests/ folder of an lsyncd 2.2.3 source tree) with syncd
# standing in for ./lsyncd. Not part of `ctest`: it needs lsyncd's sources, takes minutes
# and binds 127.0.0.1:22 (lsyncd's rsyncssh tests connect to "localhost").
#
#   tests/lsyncd_suite/run.sh /path/to/lsyncd-2.2.3 [build/syncd]
#
# Needs lua5.3 and lua-posix (apt-get install lua5.3 lua-posix), rsync and sshd; run as root.
# Checks that differ by design: exclude-rsync, exclude-rsyncssh, filter-rsync and schedule end
# by requiring exit status 143 after SIGTERM, where syncd sends what is pending and exits 0
# (schedule.lua's own check, that its three custom shell layers all ran, passes).
set -euo pipefail

lsyncd_src=$(realpath "${1:?usage: run.sh LSYNCD_SOURCE_DIR [SYNCD]}")
syncd=$(realpath "${2:-build/syncd}")
work=$(mktemp -d /tmp/syncd-lsyncd-suite.XXXXXX)
home="$work/home"
mkdir -p "$home/.ssh" "$work/sshd" "$work/bin" /run/sshd
chmod 700 "$home/.ssh"
cp -r "$lsyncd_src/tests" "$work/"
printf '#!/bin/sh\nexec %s "$@"\n' "$syncd" > "$work/lsyncd"
chmod +x "$work/lsyncd"

# A throwaway sshd on 127.0.0.1:22 that lets the test's key in, and `syncd` on its PATH.
ssh-keygen -q -t ed25519 -N '' -f "$home/.ssh/id_ed25519"
cp "$home/.ssh/id_ed25519.pub" "$home/.ssh/authorized_keys"
ssh-keygen -q -t ed25519 -N '' -f "$work/sshd/host"
cat > "$work/sshd/config" <<CONF
ListenAddress 127.0.0.1
Port 22
HostKey $work/sshd/host
AuthorizedKeysFile $home/.ssh/authorized_keys
PermitRootLogin prohibit-password
StrictModes no
PidFile $work/sshd/pid
SetEnv PATH=$work/bin:/usr/bin:/bin
CONF
ln -s "$syncd" "$work/bin/syncd"
echo "localhost $(cut -d' ' -f1-2 "$work/sshd/host.pub")" > "$home/.ssh/known_hosts"
/usr/sbin/sshd -f "$work/sshd/config"
trap 'kill "$(cat "$work/sshd/pid")" 2>/dev/null || true' EXIT

cd "$work"
failed=0
for t in churn-rsync churn-rsyncssh churn-direct l4rsyncdata exclude-rsync exclude-rsyncssh \
         filter-rsync schedule; do
  if HOME="$home" timeout 600 lua5.3 "tests/$t.lua" > "$work/$t.log" 2>&1; then
    echo "PASS $t"
  else
    echo "FAIL $t (log: $work/$t.log)"
    failed=$((failed + 1))
  fi
done
echo "$failed failed"
