#!/usr/bin/env bash
# What `cmake --install` and `cpack` produce from a build: the binary, the units (valid for
# systemd, pointing at the installed binary), the documentation and the example config, and a
# Debian package holding the same files with its library dependencies.
set -euo pipefail
build=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
cmake --install "$build" --prefix "$tmp/root" >/dev/null
for f in bin/syncd lib/systemd/system/syncd.service lib/systemd/system/syncd@.service \
         share/doc/syncd/README.md share/doc/syncd/PROTOCOL.md share/doc/syncd/pacemaker.md \
         share/doc/syncd/examples/lsyncd.conf.lua share/doc/syncd/examples/authorized_keys; do
  [[ -e "$tmp/root/$f" ]] || { echo "not installed: $f"; exit 1; }
done
"$tmp/root/bin/syncd" -version >/dev/null

unit="$tmp/root/lib/systemd/system/syncd.service"
grep -qx "ExecStart=$prefix/bin/syncd -nodaemon /etc/syncd/syncd.conf.lua" "$unit" \
  || { echo "syncd.service does not start $prefix/bin/syncd:"; grep ExecStart "$unit"; exit 1; }
grep -qx "ExecStart=$prefix/bin/syncd -nodaemon /etc/syncd/%i.conf.lua" \
  "$tmp/root/lib/systemd/system/syncd@.service" || { echo "syncd@.service: wrong ExecStart"; exit 1; }
grep -q '@' <(grep -v '%i\|syncd@' "$unit") && { echo "unsubstituted variable in $unit"; exit 1; }

if command -v systemd-analyze >/dev/null; then
  # Verified as installed, with the binary where the unit expects it.
  mkdir -p "$tmp/units"
  for u in syncd.service syncd@.service; do
    sed "s|$prefix/bin/syncd|$tmp/root/bin/syncd|" "$tmp/root/lib/systemd/system/$u" >"$tmp/units/$u"
  done
  cp "$tmp/units/syncd@.service" "$tmp/units/syncd@sessions.service"
  out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
        "$tmp/units/syncd.service" "$tmp/units/syncd@sessions.service" 2>&1 || true)
  # Only complaints about our units count (not about the machine's other units).
  if grep -E "syncd(@[a-z]*)?\.service" <<<"$out" | grep -v "Documentation"; then
    echo "systemd-analyze verify:"; echo "$out"; exit 1
  fi
fi

(cd "$tmp" && cpack --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1) \
  || { echo "cpack failed:"; cat "$tmp/cpack.log"; exit 1; }
deb=$(ls "$tmp"/pkg/syncd_*.deb)
contents=$(dpkg-deb -c "$deb")
for f in "bin/syncd" "lib/systemd/system/syncd.service" "lib/systemd/system/syncd@.service" \
         "share/doc/syncd/examples/lsyncd.conf.lua"; do
  grep -q "\./${prefix#/}/$f\$" <<<"$contents" || { echo "not in $deb: $prefix/$f"; exit 1; }
done
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libssh2-1 libuv1 librsync2 liblua5.4-0; do
  grep -q "$lib" <<<"$depends" || { echo "$deb does not depend on $lib: $depends"; exit 1; }
done
echo "installed and packaged: $(basename "$deb"), Depends: $depends"
