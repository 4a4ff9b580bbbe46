#!/usr/bin/env bash
# RUN step costs, rbuild against `buildah bud --layers` on the same Dockerfiles:
#
#   many   a RUN that writes N (default 100,000) empty files: the commit cost follows
#          the size of the change;
#   touch  a RUN that touches one file on an image with those N files: the cost must
#          follow the change (one file), not the base;
#   true   20 x `RUN true` on the busybox base (per-RUN overhead), against the same
#          Dockerfile without them.
#
# Each build changes a build arg (NONCE) so that both builders' caches miss exactly
# the measured steps (the base steps hit). Layers: rbuild compresses (gzip) at commit
# time, buildah stores the diff uncompressed and compresses only on push, so rbuild is
# also measured with --compression uncompressed.
#
# Needs root, hyperfine, buildah (`bash ../shared/peers/setup.sh --no-docker` sets it
# up with runc). Usage: bash benches/run_commit.sh [-r RUNS] [-n FILES] [-o OUT.md]
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=5 FILES=100000 OUT=""
while getopts "r:n:o:" opt; do
  case $opt in
    r) RUNS=$OPTARG ;; n) FILES=$OPTARG ;; o) OUT=$OPTARG ;;
    *) echo "usage: $0 [-r RUNS] [-n FILES] [-o OUT.md]" >&2; exit 2 ;;
  esac
done

for tool in hyperfine buildah; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
cargo build --release -q
RBUILD=$PWD/target/release/rbuild

work=$(mktemp -d /var/tmp/rbuild-run-bench.XXXXXX)
trap 'rm -rf "$work"; buildah rmi -f localhost/rbuild-bench-many:1 >/dev/null 2>&1 || true' EXIT
store=$work/store
mkdir -p "$work/ctx"
cp /bin/busybox "$work/ctx/busybox"
base='FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]'

cat >"$work/many.Dockerfile" <<EOF
$base
ARG NONCE=0
RUN echo \$NONCE > /nonce && mkdir /many && cd /many && seq 1 $FILES | sed 's/^/f/' | xargs touch
EOF
printf 'FROM %s\nARG NONCE=0\nRUN echo $NONCE > /nonce && touch /many/f1\n' rbuild-bench-many:1 \
  >"$work/touch-rbuild.Dockerfile"
printf 'FROM %s\nARG NONCE=0\nRUN echo $NONCE > /nonce && touch /many/f1\n' localhost/rbuild-bench-many:1 \
  >"$work/touch-buildah.Dockerfile"
{
  echo "$base"
  echo 'ARG NONCE=0'
  echo 'RUN echo $NONCE > /nonce'
  for _ in $(seq 20); do echo 'RUN true'; done
} >"$work/true.Dockerfile"
{ echo "$base"; echo 'ARG NONCE=0'; echo 'RUN echo $NONCE > /nonce'; } >"$work/base.Dockerfile"

nonce='--build-arg NONCE=$(date +%s%N)'
rb="$RBUILD --root $store build --progress quiet $nonce"
bh="buildah bud --layers --network none --quiet --pull-never $nonce"

# The 100k-file base for the touch case, in both stores.
$RBUILD --root "$store" build --progress quiet -f "$work/many.Dockerfile" -t rbuild-bench-many:1 "$work/ctx" >/dev/null
buildah bud --layers --network none --quiet -f "$work/many.Dockerfile" -t localhost/rbuild-bench-many:1 "$work/ctx" >/dev/null

hf() { hyperfine -r "$RUNS" -w 1 --export-json "$work/$1.json" "${@:2}" >&2; }

hf many \
  -n "rbuild many" "$rb -f $work/many.Dockerfile $work/ctx" \
  -n "rbuild many (uncompressed)" "$rb --compression uncompressed -f $work/many.Dockerfile $work/ctx" \
  -n "buildah many" "$bh -f $work/many.Dockerfile $work/ctx"
hf touch \
  -n "rbuild touch" "$rb -f $work/touch-rbuild.Dockerfile $work/ctx" \
  -n "buildah touch" "$bh -f $work/touch-buildah.Dockerfile $work/ctx"
hf true \
  -n "rbuild 20xRUN true" "$rb -f $work/true.Dockerfile $work/ctx" \
  -n "rbuild base only" "$rb -f $work/base.Dockerfile $work/ctx" \
  -n "buildah 20xRUN true" "$bh -f $work/true.Dockerfile $work/ctx" \
  -n "buildah base only" "$bh -f $work/base.Dockerfile $work/ctx"

report() {
  python3 - "$work" "$FILES" <<'PY'
import json, sys, statistics
work, files = sys.argv[1], int(sys.argv[2])
med = {}
for name in ("many", "touch", "true"):
    for r in json.load(open(f"{work}/{name}.json"))["results"]:
        med[r["command"]] = (statistics.median(r["times"]), min(r["times"]), max(r["times"]))
print(f"| case ({files} files) | median s | min s | max s |")
print("|---|---|---|---|")
for k, (m, lo, hi) in med.items():
    print(f"| {k} | {m:.3f} | {lo:.3f} | {hi:.3f} |")
r = lambda a, b: med[a][0] / med[b][0]
print()
print(f"- many: rbuild/buildah = {r('rbuild many', 'buildah many'):.2f}x "
      f"(uncompressed {r('rbuild many (uncompressed)', 'buildah many'):.2f}x)")
print(f"- touch one file on the {files}-file base: rbuild/buildah = {r('rbuild touch', 'buildah touch'):.2f}x")
per = lambda p: (med[f"{p} 20xRUN true"][0] - med[f"{p} base only"][0]) / 20 * 1000
print(f"- per `RUN true`: rbuild {per('rbuild'):.1f} ms, buildah {per('buildah'):.1f} ms")
PY
}
if [ -n "$OUT" ]; then report | tee "$OUT"; else report; fi
