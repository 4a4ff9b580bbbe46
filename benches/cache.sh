#!/usr/bin/env bash
# A CI-like build with the cache in a registry (issue 17): store A builds examples/app
# and exports its cache (`--cache-to type=registry,mode=max`); then, after a one-file
# change (app.sh), a fresh store builds with `--cache-from` that cache and `--cache-to`
# another ref (a branch's; so every run starts from A's cache), as a CI job does, against the same build with no cache (cold), and against
# Buildah's `--layers --cache-from/--cache-to` with fresh storage (when buildah runs
# here). Every timed run starts from an empty store. Docker 20.10 (no buildx) has only
# inline caches (`--cache-from` an image, mode=min) and one shared daemon cache that
# a fresh run would have to prune, so it is not compared.
#
# The registry (docker-registry) is this script's own, on 127.0.0.1:$PORT (default
# 5056). Needs hyperfine, docker-registry, curl, /bin/busybox.
# Usage: bash benches/cache.sh [-r RUNS]   (RBUILD=path skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3
while getopts "r:" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    *) echo "usage: $0 [-r RUNS]" >&2; exit 2 ;;
  esac
done
PORT=${PORT:-5056}
for tool in hyperfine docker-registry curl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
if [ -z "${RBUILD:-}" ]; then
  cargo build --release -q
  RBUILD=$PWD/target/release/rbuild
fi

work=$(mktemp -d /var/tmp/rbuild-cache-bench.XXXXXX)
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$PORT}
YML
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
echo $! > "$work/registry.pid"
trap 'kill $(cat "$work/registry.pid") 2>/dev/null; rm -rf "$work"' EXIT
for i in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done

reg=127.0.0.1:$PORT
mkdir -p "$work/ctx"
cp -r examples/app/. "$work/ctx/" && cp /bin/busybox "$work/ctx/busybox"
export SOURCE_DATE_EPOCH=0
# Store A: the cache every later run starts from.
$RBUILD --root "$work/a" build --progress quiet -t "$reg/bench/app:a" --push \
  --cache-to "type=registry,ref=$reg/bench/cache:rbuild,mode=max" "$work/ctx" >/dev/null
echo "# one-file change" >> "$work/ctx/app.sh"

ci="$RBUILD --root $work/b build --progress quiet -t $reg/bench/app:b --push \
--cache-from $reg/bench/cache:rbuild --cache-to type=registry,ref=$reg/bench/cache:ci,mode=max $work/ctx"
cold="$RBUILD --root $work/b build --progress quiet -t $reg/bench/app:cold --push $work/ctx"
cmds=(-n "rbuild CI build (fresh store, --cache-from/--cache-to registry)" "$ci"
      -n "rbuild cold build (fresh store, no cache)" "$cold")

bh="buildah --root $work/bh --runroot $work/bh-run"
bud="$bh bud --quiet --layers --isolation chroot --tls-verify=false"
if command -v buildah >/dev/null &&
   $bud --cache-to "$reg/bench/cache-buildah" -t "$reg/bench/app:buildah" "$work/ctx" >/dev/null 2>&1 &&
   $bh push --quiet --tls-verify=false "$reg/bench/app:buildah" >/dev/null 2>&1; then
  cmds+=(-n "buildah CI build (fresh storage, --cache-from/--cache-to registry)"
         "$bud --cache-from $reg/bench/cache-buildah --cache-to $reg/bench/cache-buildah-ci -t $reg/bench/app:buildah $work/ctx")
else
  echo "buildah cannot build here: compared with the cold build only" >&2
fi
rm -rf "$work/bh" "$work/bh-run"
hyperfine -w 1 -r "$RUNS" -N \
  -p "rm -rf $work/b $work/bh $work/bh-run" \
  "${cmds[@]}"
