#!/usr/bin/env bash
# Rebuild speed against BuildKit, in the same run, on ../shared/peers/example:
#
#   warm   rebuild with nothing changed (every step a cache hit)
#   edit   rebuild after appending a line to src/numbers.txt (a COPY source)
#
# BuildKit is Docker 20.10's (DOCKER_BUILDKIT=1 /usr/bin/docker build: Debian's client), pulling its base from
# the local registry; rbuild builds the same Dockerfile with the same busybox base,
# copied into its store from the OCI layout the peers' setup makes (rbuild has no
# registry client yet: --build-arg BASE names the local copy).
#
# Needs root, hyperfine, skopeo and `bash ../shared/peers/setup.sh` (dockerd +
# registry). Usage: bash benches/rebuild.sh [-r RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=10
while getopts "r:" opt; do
  case $opt in r) RUNS=$OPTARG ;; *) echo "usage: $0 [-r RUNS]" >&2; exit 2 ;; esac
done
PEERS=${RBUILD_PEERS_DIR:-/tmp/rbuild-peers}
for tool in hyperfine skopeo /usr/bin/docker; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
[ -d "$PEERS/oci/busybox" ] || { echo "run ../shared/peers/setup.sh first" >&2; exit 1; }
cargo build --release -q
RBUILD=$PWD/target/release/rbuild

work=$(mktemp -d /var/tmp/rbuild-rebuild-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
store=$work/store
cp -a ../shared/peers/example "$work/ctx"
$RBUILD --root "$store" images >/dev/null   # creates the store (an OCI layout)
skopeo copy -q "oci:$PEERS/oci/busybox:latest" "oci:$store:bench/busybox:latest"

rb="$RBUILD --root $store build --progress quiet --build-arg BASE=bench/busybox:latest -t bench:1 $work/ctx"
bk="DOCKER_BUILDKIT=1 /usr/bin/docker build -q --network none -t rbuild-bench:latest $work/ctx"
edit="echo \"edit \$(date +%s%N)\" >> $work/ctx/src/numbers.txt"

# Cold builds fill both caches.
sh -c "$rb" >/dev/null
sh -c "$bk" >/dev/null

hyperfine -w 2 -r "$RUNS" --export-json "$work/warm.json" -n "rbuild warm" "$rb" -n "buildkit warm" "$bk" >&2
hyperfine -w 1 -r "$RUNS" --prepare "$edit" --export-json "$work/edit.json" \
  -n "rbuild edit" "$rb" -n "buildkit edit" "$bk" >&2

python3 - "$work" <<'PY'
import json, sys, statistics
work = sys.argv[1]
med = {}
for case in ("warm", "edit"):
    for r in json.load(open(f"{work}/{case}.json"))["results"]:
        med[r["command"]] = statistics.median(r["times"])
print("| case | rbuild median ms | BuildKit median ms | ratio |")
print("|---|---|---|---|")
for case in ("warm", "edit"):
    a, b = med[f"rbuild {case}"], med[f"buildkit {case}"]
    print(f"| {case} | {a*1000:.0f} | {b*1000:.0f} | {a/b:.2f}x |")
PY
