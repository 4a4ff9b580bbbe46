#!/usr/bin/env bash
# Rootless against root, the same binary and Dockerfiles, each with a store of its own:
#
#   example  the README example (examples/app with busybox, as scripts/example.sh),
#            built with --no-cache: every step (RUN, cache mount, COPY --from, --chown);
#   files    a RUN writing N (default 10,000) empty files on a cached busybox base (a
#            build arg changes per build, so that step alone misses).
#
# Rootless is the user rbuild-test (scripts/test.sh makes it, with subordinate ids),
# through setpriv, with its store in a temporary XDG_DATA_HOME. Prints medians of RUNS
# (default 5) builds and the ratio (target: rootless within 1.2x of root).
#
# Needs root, setpriv, busybox-static, uidmap, passt. Usage:
#   bash benches/rootless.sh [-r RUNS] [-n FILES]   (RBUILD=path to use another binary;
#   default: target/release/rbuild, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=5 FILES=10000 USER_NAME=rbuild-test
while getopts "r:n:" opt; do
  case $opt in
    r) RUNS=$OPTARG ;; n) FILES=$OPTARG ;;
    *) echo "usage: $0 [-r RUNS] [-n FILES]" >&2; exit 2 ;;
  esac
done
id "$USER_NAME" >/dev/null 2>&1 || { echo "error: no user $USER_NAME (scripts/test.sh makes it)" >&2; exit 1; }
if [ -z "${RBUILD:-}" ]; then
  [ -x target/release/rbuild ] || cargo build --release -q
  RBUILD=$PWD/target/release/rbuild
fi
uid=$(id -u "$USER_NAME") gid=$(id -g "$USER_NAME")

work=$(mktemp -d /var/tmp/rbuild-rootless-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
mkdir -p "$work/example" "$work/files" "$work/home" "$work/data"
cp -r examples/app/. "$work/example/"
cp /bin/busybox "$work/example/busybox"
cp /bin/busybox "$work/files/busybox"
cat >"$work/files/Dockerfile" <<EOF
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ARG NONCE
RUN mkdir /files && cd /files && seq 1 $FILES | xargs touch && echo "\$NONCE" > /nonce
EOF
chown -R "$uid:$gid" "$work/home" "$work/data"
chmod -R a+rX "$work/example" "$work/files"

# root|rootless ARGS...: one build, quiet; fails the script if the build fails.
root() { "$RBUILD" --root "$work/root-store" build -q "$@" >/dev/null; }
rootless() {
  setpriv --reuid="$uid" --regid="$gid" --init-groups -- \
    env -u RBUILD_ROOT HOME="$work/home" XDG_DATA_HOME="$work/data" \
    "$RBUILD" build -q "$@" >/dev/null
}

# median MODE CASE: the median wall time (ms) of RUNS builds of CASE as MODE.
median() {
  local mode=$1 case=$2 times=() i start
  for i in $(seq 1 "$RUNS"); do
    start=$(date +%s%N)
    case $case in
      example) $mode --no-cache -t bench-example:1 "$work/example" ;;
      files) $mode --build-arg "NONCE=$mode-$i" -t bench-files:1 "$work/files" ;;
    esac
    times+=($(( ($(date +%s%N) - start) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}

# Warm-up: the files case's base layers, in both stores.
root --build-arg NONCE=warm -t bench-files:1 "$work/files"
rootless --build-arg NONCE=warm -t bench-files:1 "$work/files"

echo "rootless vs root: $RBUILD, medians of $RUNS builds, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| case | root | rootless | rootless / root |\n|---|---|---|---|\n'
for case in example files; do
  r=$(median root "$case")
  u=$(median rootless "$case")
  label=$case
  [ "$case" = files ] && label="RUN writing $FILES files"
  [ "$case" = example ] && label="README example, --no-cache"
  printf '| %s | %d ms | %d ms | %s |\n' "$label" "$r" "$u" "$(awk -v a="$u" -v b="$r" 'BEGIN { printf "%.2fx", a / b }')"
done
