#!/usr/bin/env bash
# Push and pull speed against skopeo, in the same run, on a CNCF registry
# (docker-registry) this script starts on 127.0.0.1:$PORT (default 5055):
#
#   push   an image with one SIZE_MB random layer (uncompressed, so the bytes moved
#          are SIZE_MB); the registry is emptied and restarted before every run, so
#          every blob is really uploaded (no HEAD hit, no cross-repository mount)
#   pull   the same image into an empty store / OCI layout
#
# rbuild pushes from its store; skopeo copies from an OCI layout of the same image
# (exported by rbuild), so both move the same blobs. Peak RSS is reported from
# /usr/bin/time -v (streamed transfers: it should not grow with SIZE_MB).
#
# Needs hyperfine, skopeo, docker-registry, curl.
# Usage: bash benches/registry.sh [-r RUNS] [-s SIZE_MB]
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=5
SIZE_MB=256
while getopts "r:s:" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    s) SIZE_MB=$OPTARG ;;
    *) echo "usage: $0 [-r RUNS] [-s SIZE_MB]" >&2; exit 2 ;;
  esac
done
PORT=${PORT:-5055}
for tool in hyperfine skopeo docker-registry curl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
cargo build --release -q
RBUILD=$PWD/target/release/rbuild

work=$(mktemp -d /var/tmp/rbuild-registry-bench.XXXXXX)
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$PORT}
YML
# Empties the registry and (re)starts it: run before every timed push.
cat > "$work/reset.sh" <<SH
[ -f $work/registry.pid ] && kill \$(cat $work/registry.pid) 2>/dev/null && sleep 0.2
rm -rf $work/registry
docker-registry serve $work/registry.yml >/dev/null 2>&1 &
echo \$! > $work/registry.pid
for i in \$(seq 100); do curl -fs http://127.0.0.1:$PORT/v2/ >/dev/null && exit 0; sleep 0.1; done
echo "registry did not start" >&2; exit 1
SH
trap 'kill $(cat "$work/registry.pid" 2>/dev/null) 2>/dev/null; rm -rf "$work"' EXIT
bash "$work/reset.sh"
mkdir -p "$work/ctx"
head -c "$((SIZE_MB << 20))" /dev/urandom > "$work/ctx/big"
printf 'FROM scratch\nCOPY big /big\n' > "$work/ctx/Dockerfile"
$RBUILD --root "$work/store" build --progress quiet --compression uncompressed -t bench/big:1 "$work/ctx" >/dev/null
$RBUILD --root "$work/store" build --progress quiet --compression uncompressed -o "type=oci,dest=$work/layout,tar=false" -t bench/big:1 "$work/ctx" >/dev/null

hyperfine -w 1 -r "$RUNS" -p "bash $work/reset.sh" \
  -n "rbuild push ${SIZE_MB}MiB" \
  "$RBUILD --root $work/store push -q bench/big:1 127.0.0.1:$PORT/bench/push:1" \
  -n "skopeo copy ${SIZE_MB}MiB" \
  "skopeo copy -q --dest-tls-verify=false oci:$work/layout docker://127.0.0.1:$PORT/bench/push:1"
bash "$work/reset.sh"
$RBUILD --root "$work/store" push -q bench/big:1 127.0.0.1:$PORT/bench/pull:1 >/dev/null
hyperfine -w 1 -r "$RUNS" \
  -p "rm -rf $work/pull-store $work/pull-layout" \
  -n "rbuild pull ${SIZE_MB}MiB" \
  "$RBUILD --root $work/pull-store pull -q 127.0.0.1:$PORT/bench/pull:1" \
  -n "skopeo copy (pull) ${SIZE_MB}MiB" \
  "skopeo copy -q --src-tls-verify=false docker://127.0.0.1:$PORT/bench/pull:1 oci:$work/pull-layout:1"
echo "peak RSS (KiB):"
rm -rf "$work/pull-store"
/usr/bin/time -f "  rbuild pull %M" "$RBUILD" --root "$work/pull-store" pull -q 127.0.0.1:$PORT/bench/pull:1 >/dev/null
bash "$work/reset.sh"
/usr/bin/time -f "  rbuild push %M" "$RBUILD" --root "$work/store" push -q bench/big:1 127.0.0.1:$PORT/bench/push:1 >/dev/null
