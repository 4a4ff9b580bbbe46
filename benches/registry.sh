#!/usr/bin/env bash
# Push and pull speed against skopeo, in the same run, on the plain registry of
# ../shared/peers (127.0.0.1:5000):
#
#   push   an image with one SIZE_MB random layer (uncompressed, so the bytes moved
#          are SIZE_MB), to a fresh repository each run (nothing there to skip)
#   pull   the same image into an empty store / OCI layout
#
# rbuild pushes from its store; skopeo copies from an OCI layout of the same image
# (exported by rbuild), so both move the same blobs. Peak RSS is reported from
# /usr/bin/time -v (streamed transfers: it should not grow with SIZE_MB).
#
# Needs root, hyperfine, skopeo, and `bash ../shared/peers/setup.sh --no-docker --no-tls`.
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
for tool in hyperfine skopeo; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
curl -fs http://127.0.0.1:5000/v2/ >/dev/null || { echo "run ../shared/peers/setup.sh first" >&2; exit 1; }
cargo build --release -q
RBUILD=$PWD/target/release/rbuild

work=$(mktemp -d /var/tmp/rbuild-registry-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ctx"
head -c "$((SIZE_MB << 20))" /dev/urandom > "$work/ctx/big"
printf 'FROM scratch\nCOPY big /big\n' > "$work/ctx/Dockerfile"
$RBUILD --root "$work/store" build --progress quiet --compression uncompressed -t bench/big:1 "$work/ctx" >/dev/null
$RBUILD --root "$work/store" build --progress quiet --compression uncompressed -o "type=oci,dest=$work/layout,tar=false" -t bench/big:1 "$work/ctx" >/dev/null

hyperfine -w 1 -r "$RUNS" \
  -n "rbuild push ${SIZE_MB}MiB" \
  "$RBUILD --root $work/store push -q bench/big:1 127.0.0.1:5000/bench/rb-\$(date +%s%N):1" \
  -n "skopeo copy ${SIZE_MB}MiB" \
  "skopeo copy -q --dest-tls-verify=false oci:$work/layout docker://127.0.0.1:5000/bench/sk-\$(date +%s%N):1"
$RBUILD --root "$work/store" push -q bench/big:1 127.0.0.1:5000/bench/pull:1 >/dev/null
hyperfine -w 1 -r "$RUNS" \
  -p "rm -rf $work/pull-store $work/pull-layout" \
  -n "rbuild pull ${SIZE_MB}MiB" \
  "$RBUILD --root $work/pull-store pull -q 127.0.0.1:5000/bench/pull:1" \
  -n "skopeo copy (pull) ${SIZE_MB}MiB" \
  "skopeo copy -q --src-tls-verify=false docker://127.0.0.1:5000/bench/pull:1 oci:$work/pull-layout:1"
echo "peak RSS (KiB):"
rm -rf "$work/pull-store"
/usr/bin/time -f "  rbuild pull %M" "$RBUILD" --root "$work/pull-store" pull -q 127.0.0.1:5000/bench/pull:1 >/dev/null
/usr/bin/time -f "  rbuild push %M" "$RBUILD" --root "$work/store" push -q bench/big:1 "127.0.0.1:5000/bench/rss-$(date +%s%N):1" >/dev/null
