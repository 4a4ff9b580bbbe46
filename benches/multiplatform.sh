#!/usr/bin/env bash
# Two-platform build (linux/amd64 + linux/arm64) of the README example (examples/app),
# cold (empty store: the base is pulled, every step runs, arm64's RUN steps under QEMU)
# and cached (the same build again, nothing changed), rbuild against
# `buildah build --layers --platform linux/amd64,linux/arm64 --manifest` (--layers: its
# cache), in one run, medians of RUNS runs each, as one table.
#
# The example's first stage makes its base from the amd64 busybox in the context; here
# it starts from a two-platform busybox index both tools read instead: the tests'
# fixture (tests/it/multiarch.rs: Debian's busybox-static for amd64 and arm64, in
# target/tmp/busybox-multi/layout, made by `cargo test --test it platform::`), pushed
# to the peers' registry at 127.0.0.1:5000.
#
# rbuild registers QEMU for its own RUN steps only (Linux 6.7+). Buildah needs a
# binfmt_misc registration too, and nothing host-wide is made here: buildah runs in a
# user namespace of its own (every id mapped to itself) with its own binfmt_misc
# instance where qemu-aarch64 is registered, with `--isolation chroot` (runc cannot
# write the v1 devices cgroup from a user namespace). So its RUN steps are emulated
# by the same QEMU as rbuild's.
#
# Needs root, hyperfine, jq, buildah, skopeo, qemu-user-static.
# Usage: bash benches/multiplatform.sh [-r RUNS]   (RBUILD=path skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=5
while getopts "r:" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    *) echo "usage: $0 [-r RUNS]" >&2; exit 2 ;;
  esac
done
for tool in hyperfine jq buildah skopeo; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
layout=target/tmp/busybox-multi/layout
[ -f "$layout/index.json" ] || {
  echo "no $layout: run cargo test --test it platform:: once" >&2; exit 1; }
grep -qrl '"history"' "$layout/blobs/sha256" || {
  echo "$layout predates its history entries (buildah needs them): remove it and" \
    "run cargo test --test it platform:: once" >&2; exit 1; }
if [ -z "${RBUILD:-}" ]; then
  cargo build --release -q
  RBUILD=$PWD/target/release/rbuild
fi

REG=127.0.0.1:5000
base=$REG/rbuild-bench/busybox-multi:latest
skopeo copy -q --all --dest-tls-verify=false "oci:$layout:latest" "docker://$base"

work=$(mktemp -d /var/tmp/rbuild-multiplatform-bench.XXXXXX)
cleanup() {
  buildah --root "$work/bh" --runroot "$work/bh-run" rm -a >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Runs "$@" as root of a new user namespace (and mount namespace) whose maps are the
# identity, written from here once it exists.
userns_exec() {
  local fifo=$work/go pid
  mkfifo "$fifo"
  unshare --user --mount sh -c 'read _ < "$0"; exec "$@"' "$fifo" "$@" &
  pid=$!
  until [ "$(readlink /proc/$pid/ns/user)" != "$(readlink /proc/self/ns/user)" ]; do
    sleep 0.01
  done
  echo "0 0 4294967295" > "/proc/$pid/uid_map"
  echo "0 0 4294967295" > "/proc/$pid/gid_map"
  echo go > "$fifo"
  rm -f "$fifo"
  wait "$pid"
}

# The example, from the two-platform base instead of the context's amd64 busybox.
mkdir -p "$work/ctx"
cp -r examples/app/. "$work/ctx/"
python3 - "$work/ctx/Dockerfile" "$base" <<'PY'
import sys
path, base = sys.argv[1], sys.argv[2]
text = open(path).read()
old = 'FROM scratch AS busybox\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
assert old in text, "examples/app/Dockerfile changed: update benches/multiplatform.sh"
open(path, "w").write(text.replace(old, f"FROM {base} AS busybox\n"))
PY

platforms=linux/amd64,linux/arm64
rb="$RBUILD --root $work/rb build --progress quiet --platform $platforms -t app:multi $work/ctx"
bh="buildah --root $work/bh --runroot $work/bh-run"
bh_build="$bh build --quiet --layers --isolation chroot --tls-verify=false --platform $platforms --manifest app-multi $work/ctx"

# hyperfine's median (seconds) of command NAME in the JSON at FILE.
median() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$1"; }

hyperfine -N -r "$RUNS" --export-json "$work/rb.json" \
  --prepare "rm -rf $work/rb" -n "rbuild cold" "$rb" >/dev/null
$rb >/dev/null
hyperfine -N -r "$RUNS" --export-json "$work/rb-cached.json" \
  -n "rbuild cached" "$rb" >/dev/null

# Buildah's runs, in their user namespace with its binfmt_misc instance.
wipe="$bh rmi -af >/dev/null 2>&1; $bh manifest rm app-multi >/dev/null 2>&1; true"
cat > "$work/buildah-runs.sh" <<SH
set -e
mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
hyperfine -r $RUNS --export-json $work/bh.json --prepare "$wipe" \\
  -n "buildah cold" "$bh_build" >/dev/null
$bh_build >/dev/null
hyperfine -r $RUNS --export-json $work/bh-cached.json \\
  --prepare "$bh manifest rm app-multi >/dev/null 2>&1; true" \\
  -n "buildah cached" "$bh_build" >/dev/null
SH
userns_exec bash "$work/buildah-runs.sh"

printf '\ntwo-platform build of examples/app (%s), medians of %s runs\n' "$platforms" "$RUNS"
printf '%-8s %12s %12s %8s\n' case rbuild buildah ratio
for c in cold cached; do
  r=$(median "$work/rb$([ $c = cached ] && echo -cached).json" "rbuild $c")
  b=$(median "$work/bh$([ $c = cached ] && echo -cached).json" "buildah $c")
  printf '%-8s %11.2fs %11.2fs %7.1fx\n' "$c" "$r" "$b" "$(echo "$b / $r" | bc -l)"
done
