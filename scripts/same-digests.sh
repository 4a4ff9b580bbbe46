#!/usr/bin/env bash
# scripts/same-digests.sh OLD_RBUILD NEW_RBUILD: do two rbuild binaries make the same
# images? For refactors that must not change behaviour.
#
# Builds examples/app (RUN, cache mount, COPY --from, --chown, USER) and examples/hello
# (heredocs, --chmod, HEALTHCHECK, a `files` stage) with SOURCE_DATE_EPOCH=1, with each
# snapshotter, each binary in a fresh store; records the image IDs, manifest digests and
# the sha256 of the OCI, docker-archive and filesystem exports; builds again from the
# cache; prints both lists side by side and exits 1 if they differ. Needs root (RUN) and
# /bin/busybox (Debian's busybox-static).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 OLD_RBUILD NEW_RBUILD" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1

# One binary's results, one line each, into $work/$2.txt.
results() {
  local bin=$1 name=$2 out=$work/$2
  mkdir -p "$out"
  cp -r "$repo/examples/app" "$out/app"
  cp /bin/busybox "$out/app/busybox"
  for snap in overlayfs native; do
    local store=$out/store-$snap
    b() { "$bin" --root "$store" build --progress quiet --snapshotter "$snap" "$@"; }
    for round in fresh cached; do
      echo "$snap $round app: $(b -t app:1 "$out/app")"
      echo "$snap $round app docker: $(b -t app:d --format docker \
        -o "type=docker,dest=$out/app-$snap.tar" "$out/app")"
      echo "$snap $round hello: $(b -t hello:1 -o "type=oci,dest=$out/hello-$snap.tar" \
        "$repo/examples/hello")"
      echo "$snap $round hello files: $(b --target files -o "type=tar,dest=$out/fs-$snap.tar" \
        "$repo/examples/hello")"
      for f in "$out"/*-"$snap".tar; do
        echo "$snap $round $(basename "$f"): $(sha256sum < "$f" | cut -c1-64)"
      done
    done
  done > "$work/$name.txt"
}

results "$1" old
results "$2" new
paste -d'|' "$work/old.txt" "$work/new.txt" | awk -F'|' '{ printf "%s %s\n", ($1 == $2 ? "same" : "DIFF"), $1; if ($1 != $2) printf "     new: %s\n", $2 }'
if cmp -s "$work/old.txt" "$work/new.txt"; then
  echo "same images: $(wc -l < "$work/old.txt") results identical"
else
  echo "the binaries make different images" >&2
  exit 1
fi
