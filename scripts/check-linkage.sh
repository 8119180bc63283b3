#!/usr/bin/env bash
# Builds the Lambda binaries in release mode and shows the shared libraries
# each needs. provided.al2023 guarantees glibc; anything else (libssl,
# libcrypto, libz, libsasl2...) would have to be in the image, so it fails
# the check.
#
#   check-linkage.sh                     build (host arch) and check
#   check-linkage.sh --bootstraps DIR    check DIR/*/bootstrap (sam build output)
set -euo pipefail
cd "$(dirname "$0")/.."

allowed='^(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux-(x86-64|aarch64)\.so\.[12])$'
check() {
  local name=$1 path=$2 needed
  needed=$(readelf -d "$path" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  printf '%s (%s bytes, %s): %s\n' "$name" "$(stat -c %s "$path")" \
    "$(readelf -h "$path" | sed -n 's/.*Machine: *//p')" "$(echo $needed)"
  for lib in $needed; do
    if ! [[ $lib =~ $allowed ]]; then
      echo "  $lib is not part of glibc: the binary would not start on provided.al2023 without it" >&2
      return 1
    fi
  done
}

if [ "${1:-}" = "--bootstraps" ]; then
  status=0
  found=0
  for bootstrap in "$2"/*/bootstrap; do
    [ -f "$bootstrap" ] || continue
    found=$((found + 1))
    check "$(basename "$(dirname "$bootstrap")")" "$bootstrap" || status=1
  done
  [ "$found" -gt 0 ] || { echo "no bootstrap under $2"; exit 1; }
  exit $status
fi

bins=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
for p in meta["packages"]:
    if "/functions/" in p["manifest_path"]:
        for t in p["targets"]:
            if "bin" in t["kind"]:
                print(p["name"], t["name"])
')
[ -n "$bins" ] || { echo "no function binaries found"; exit 1; }

status=0
while read -r package bin; do
  cargo build --release --locked -p "$package" --bin "$bin" >&2
  check "$bin" "target/release/$bin" || status=1
done <<< "$bins"
exit $status
