#!/usr/bin/env bash
# benches/large.sh: rbuild against BuildKit on large work, in one run, with the ratio table.
#
# Runs ../shared/peers/large/bench-large.sh with PEERS="buildkit rbuild" (the 1 GiB COPY,
# 100k-file COPY cold / no change / one file changed, a RUN writing 100k files, a RUN
# touching one file of that image, the push of the 1 GiB image, and the machine's raw
# speeds) once per round, adds the case it lacks, `fresh` (the first build on an empty
# store: a CI runner's), then prints one row per workload: BuildKit's and rbuild's
# medians over the rounds, the ratio, the issue's target and rbuild's max RSS, then the
# raw speeds and floors of the same run.
#
#   fresh: a Debian bookworm rootfs (the one scripts/realworld.sh makes with mmdebstrap)
#   plus a marker file, so that no layer is shared with an image Docker already has, is
#   imported by `docker import` and pushed to the peers' registry. Cold for BuildKit is
#   `docker rmi` of it + `docker builder prune -af`, then `docker pull` + `docker build`;
#   for rbuild an empty store, then `rbuild build` (which pulls the base). The Dockerfile
#   is `FROM base` + `RUN echo hi > /x`. rbuild's store and the floors' targets are new
#   directories, none deleted until the case ends: this machine's ext4 has no journal, and
#   then it scans past every inode freed in the last minutes (up to six while the inode
#   table is dirty) for each inode it allocates, so a run right after deleting the last
#   run's 6,300 files took 2-5 s where the same run on a fresh directory takes 0.3-0.9 s
#   (a CI runner's disk has no such delete storm behind it). BuildKit's cold start has to
#   delete (`docker rmi`, `builder prune`) and is followed by `sync` and 10 s. Floors: `tar
#   -x` of the base's tar and `tar -xzf` of it gzipped (what pulling a gzip layer is).
#
# Usage: benches/large.sh [CASE...]   CASEs: limits bigcopy many run touch push fresh
#        settled (default: all but settled). Env: RUNS (3: rounds, one run of each builder per case in each),
#        OUT (default /tmp/rbuild-large-out), ORDER (see below), the shared script's
#        others (see its header). At the end, `rbuild prune` drops the cache the runs left
#        in the benchmark store (images and their snapshots stay). Needs root,
#        ../shared/peers/setup.sh run, hyperfine, jq, python3; `fresh` also needs
#        scripts/realworld.sh to have made its rootfs once (RBUILD_REALWORLD_DIR, default
#        /tmp/rbuild-realworld).
#   settled: the two cold rows that create 100k files (the COPY of 100k files, the RUN
#   writing 100k files), each run preceded, for both builders alike, by its clean-up,
#   `sync` and SETTLE seconds (default 400): ext4 without a journal skips inodes freed in
#   the last 60 s, or 360 s while their inode table block is dirty, when it allocates, so
#   a builder creating 100k files right after the other deleted as many pays for the
#   other's deletes. The `sync` cleans the blocks, but the next build's own allocations
#   dirty them again, so only a wait past 360 s drains the deletes: with 65 s, in three
#   rounds, rbuild's settled COPY took 7.1 s when it ran second and 25.6 s when it ran
#   first after the fresh case's clean-up. Rows "... cold, settled", each with its floor
#   (`cp -a` of the files, the RUN's loop in an overlay; each + `tar | sha256sum`); about
#   45 minutes a round.
# WARNING: cold BuildKit runs empty dockerd's whole build cache (`docker builder prune -af`).
# Takes about 45 minutes on 2 cores for everything with RUNS=3.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SHARED=${RBUILD_SHARED:-$REPO/../shared}
ROUNDS=${RUNS:-3}; OUT=${OUT:-/tmp/rbuild-large-out}
# The runs are interleaved: RUNS rounds, each running the shared script once with one run
# per builder and case, then settling (sync, 10 s). Each cold run writes and deletes
# gigabytes, and on a VM whose disk is mounted `discard` and whose host takes freed memory
# back, the builder that runs right after the other's deletes pays for them. ORDER says who
# goes first in a round: `alternate` (default: BuildKit in odd rounds, rbuild in even ones),
# `buildkit-first` or `rbuild-first` (every round).
case ${ORDER:=alternate} in
  alternate|buildkit-first|rbuild-first) ;;
  *) echo "benches/large.sh: ORDER is alternate, buildkit-first or rbuild-first" >&2; exit 2 ;;
esac
peers_of_round() {
  case $ORDER in
    buildkit-first) echo "buildkit rbuild" ;;
    rbuild-first) echo "rbuild buildkit" ;;
    alternate) if (( $1 % 2 )); then echo "buildkit rbuild"; else echo "rbuild buildkit"; fi ;;
  esac
}
export RUNS=1 RBUILD=${RBUILD:-$REPO/target/release/rbuild}
export RBUILD_ROOT=${RBUILD_ROOT:-/tmp/rbuild-large-root}
REG=127.0.0.1:5000
D=/usr/bin/docker
for t in hyperfine jq python3 "$D"; do
  command -v "$t" >/dev/null || { echo "benches/large.sh: $t is required" >&2; exit 1; }
done
[ -x "$RBUILD" ] || cargo build --release -q

CASES=("$@"); [ ${#CASES[@]} -gt 0 ] || CASES=(limits bigcopy many run touch push fresh)
SETTLED_W=$(mktemp -d /tmp/rbuild-large-settled.XXXXXX)
OUT_ALL=$OUT; rm -rf "$OUT_ALL"; mkdir -p "$OUT_ALL"

case_fresh() {
  local rw=${RBUILD_REALWORLD_DIR:-/tmp/rbuild-realworld} tarball w tag=$REG/large-fresh:1
  tarball=$(ls "$rw"/rootfs/*.tar 2>/dev/null | head -1)
  if [ -z "$tarball" ]; then
    echo "fresh: no rootfs tarball in $rw/rootfs: run scripts/realworld.sh once" >&2
    return 0
  fi
  w=$(mktemp -d /tmp/rbuild-large-fresh.XXXXXX); FRESH_W=$w
  cp "$tarball" "$w/base.tar"
  mkdir -p "$w/marker/etc" && date +%s%N >"$w/marker/etc/rbuild-bench-marker"
  tar -rf "$w/base.tar" -C "$w/marker" etc/rbuild-bench-marker
  $D import "$w/base.tar" "$tag" >/dev/null || { echo "fresh: docker import failed" >&2; return 1; }
  $D push "$tag" >/dev/null || { echo "fresh: docker push $tag failed" >&2; return 1; }
  mkdir -p "$w/ctx" && printf 'FROM %s\nRUN echo hi > /x\n' "$tag" >"$w/ctx/Dockerfile"
  local files; files=$(tar -tf "$w/base.tar" | wc -l)
  printf '\n## fresh: first build on an empty store (base: %s entries, %s MiB, one layer)\n\n' \
    "$files" "$(( $(stat -c %s "$w/base.tar") / 1048576 ))" | tee -a "$OUT/fresh-summary.md"
  printf 'load at start: `%s`\n\n' "$(uptime | sed 's/^ *//')" | tee -a "$OUT/fresh-summary.md"
  fresh_buildkit() {
    hyperfine -S bash --runs "$RUNS" --export-json "$OUT/fresh-buildkit.json" \
      -n "fresh-store first build buildkit" \
      --prepare "$D rmi -f $tag large-fresh-out >/dev/null 2>&1; $D builder prune -af >/dev/null; sync; sleep 10" \
      "$D pull -q $tag >/dev/null && DOCKER_BUILDKIT=1 $D build -q --network none -t large-fresh-out $w/ctx >/dev/null" \
      >>"$OUT/hyperfine.log" 2>&1
  }
  fresh_rbuild() {
    hyperfine -S bash --runs "$RUNS" --export-json "$OUT/fresh-rbuild.json" \
      -n "fresh-store first build rbuild" --prepare "sync; sleep 3" \
      "$RBUILD --root \$(mktemp -d -u $w/root.XXXXXX) build --progress quiet --network none -t out $w/ctx" \
      >>"$OUT/hyperfine.log" 2>&1
  }
  local p; for p in $PEERS; do "fresh_$p"; done
  # The floors: extracting the base's files onto this disk (GNU tar, one thread), from
  # its tar and from the tar gzipped (gzip -d in a process of its own), each into a new
  # directory as rbuild's store is.
  gzip -c "$w/base.tar" >"$w/base.tar.gz"
  hyperfine -S bash --runs "$RUNS" --export-json "$OUT/fresh-floor.json" \
    -n "fresh-store floor (tar -x of the base)" --prepare "sync; sleep 3" \
    "tar -xf $w/base.tar -C \$(mktemp -d $w/x.XXXXXX)" \
    >>"$OUT/hyperfine.log" 2>&1
  hyperfine -S bash --runs "$RUNS" --export-json "$OUT/fresh-floor-gz.json" \
    -n "fresh-store floor (tar -xzf of the base gzipped)" --prepare "sync; sleep 3" \
    "tar -xzf $w/base.tar.gz -C \$(mktemp -d $w/x.XXXXXX)" \
    >>"$OUT/hyperfine.log" 2>&1
  jq -r '.results[0] | "tar -x of the base: median \(.median*1000|floor) ms (min \(.min*1000|floor), max \(.max*1000|floor))"' \
    "$OUT/fresh-floor.json" | tee -a "$OUT/fresh-summary.md"
  jq -r '.results[0] | "tar -xzf of the base gzipped: median \(.median*1000|floor) ms (min \(.min*1000|floor), max \(.max*1000|floor))"' \
    "$OUT/fresh-floor-gz.json" | tee -a "$OUT/fresh-summary.md"
  fresh_cleanup
}
fresh_cleanup() {
  [ -n "${FRESH_W:-}" ] || return 0
  rm -rf "$FRESH_W"
  $D rmi -f "$REG/large-fresh:1" large-fresh-out >/dev/null 2>&1 || true
  FRESH_W=
}
trap 'fresh_cleanup; rm -rf "$SETTLED_W"' EXIT

case_settled() {
  local w=$SETTLED_W settle=${SETTLE:-400} p lbl=rbuild-large=1
  if [ ! -d "$w/many/files" ]; then
    mkdir -p "$w/run"
    for d in $(seq -w 0 99); do
      mkdir -p "$w/many/files/d$d"
      head -c 1024000 /dev/urandom | split -b 1024 -a 3 -d - "$w/many/files/d$d/f"
    done
    printf 'FROM base\nCOPY files/ /files/\n' >"$w/many/Dockerfile"
    printf 'FROM base\nRUN mkdir /m && cd /m && for i in $(seq 1 100000); do echo $i > f$i; done\n' >"$w/run/Dockerfile"
  fi
  $D image inspect base >/dev/null 2>&1 || { $D pull -q "$REG/busybox:latest" && $D tag "$REG/busybox:latest" base; } >/dev/null
  "$RBUILD" inspect base >/dev/null 2>&1 || { "$RBUILD" pull -q "$REG/busybox:latest" && "$RBUILD" tag "$REG/busybox:latest" base; } >/dev/null
  local c name tag
  for c in many run; do
    case $c in many) name="many-files-copy cold, settled" tag=large-settled-many ;;
               run) name="run-many-files cold, settled" tag=large-settled-run ;; esac
    for p in $PEERS; do
      case $p in
        buildkit) hyperfine -S bash --runs 1 --export-json "$OUT/settled-$c-$p.json" -n "$name $p" \
            --prepare "$D rmi -f $tag >/dev/null 2>&1; $D builder prune -af >/dev/null; sync; sleep $settle" \
            "DOCKER_BUILDKIT=1 $D build -q --network none --label $lbl -t $tag $w/$c >/dev/null" >>"$OUT/hyperfine.log" 2>&1 ;;
        rbuild) hyperfine -S bash --runs 1 --export-json "$OUT/settled-$c-$p.json" -n "$name $p" \
            --prepare "$RBUILD rmi $tag >/dev/null 2>&1; sync; sleep $settle" \
            "$RBUILD build --progress quiet --network none --no-cache -t $tag $w/$c" >>"$OUT/hyperfine.log" 2>&1 ;;
      esac
      jq -r '.results[0] | "\(.command): \(.median*100|round/100) s"' "$OUT/settled-$c-$p.json" \
        | tee -a "$OUT/fresh-summary.md"
    done
  done
  copy_floor "$w" "$settle"
  run_floor "$w" "$settle"
  $D rmi -f large-settled-many large-settled-run >/dev/null 2>&1 || true
}

# The floor of the COPY of 100k files, settled like the builders' runs: `cp -a` of the
# context's files into a new directory (one thread reads and creates them), then
# `tar -cf - | sha256sum` of the copy (a layer's tar and diff ID) and `sync -f`.
copy_floor() {
  local w=$1 settle=$2 d=$1/copyfloor
  hyperfine -S bash --runs 1 --export-json "$OUT/settled-many-floor.json" \
    -n "many-files-copy cold, settled floor" \
    --prepare "rm -rf $d; mkdir -p $d; sync; sleep $settle" \
    "cp -a $w/many/files $d/files && tar -cf - -C $d files | sha256sum >/dev/null && sync -f $d" \
    >>"$OUT/hyperfine.log" 2>&1
  jq -r '.results[0] | "\(.command): \(.median*100|round/100) s (cp -a + tar | sha256sum + sync -f)"' \
    "$OUT/settled-many-floor.json" | tee -a "$OUT/fresh-summary.md"
  rm -rf "$d"
}

# The floor of the RUN writing 100k files, settled like the builders' runs: the same
# command by busybox sh, chrooted into a `volatile` overlay on the busybox rootfs (the
# step's own work), then what the issue names as the commit's floor, `tar -cf - | sha256sum`
# of the upperdir, and a flush of the filesystem (`sync -f`).
run_floor() {
  local w=$1 settle=$2 d=$1/runfloor rootfs=/tmp/rbuild-peers/oci/busybox-rootfs.tar.gz
  [ -f "$rootfs" ] || { echo "run floor: no $rootfs (../shared/peers/setup.sh)" >&2; return 0; }
  cat >"$w/runfloor-prepare.sh" <<PREP
set -e; rm -rf $d; mkdir -p $d/lower $d/upper $d/work $d/merged; tar -xzf $rootfs -C $d/lower
PREP
  cat >"$w/runfloor.sh" <<'RUN'
set -e; d=$1
mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work,volatile" "$d/merged"
chroot "$d/merged" /bin/sh -c 'mkdir /m && cd /m && for i in $(seq 1 100000); do echo $i > f$i; done'
umount "$d/merged"
tar -cf - -C "$d/upper" . | sha256sum >/dev/null
sync -f "$d/upper"
RUN
  hyperfine -S bash --runs 1 --export-json "$OUT/settled-run-floor.json" \
    -n "run-many-files cold, settled floor" \
    --prepare "bash $w/runfloor-prepare.sh; sync; sleep $settle" "bash $w/runfloor.sh $d" \
    >>"$OUT/hyperfine.log" 2>&1
  jq -r '.results[0] | "\(.command): \(.median*100|round/100) s (sh loop in a volatile overlay + tar | sha256sum + sync -f)"' \
    "$OUT/settled-run-floor.json" | tee -a "$OUT/fresh-summary.md"
  rm -rf "$d"
}

# The floor of `touch` for a builder that checks a snapshot before its first use in a
# process (rbuild: see src/store/snapmeta.rs): one `lstat` of every entry of the
# 100k-file lower, as `find -printf` does it (one thread; rbuild's fingerprint reads
# directories ahead on up to four, src/store/treewalk.rs).
touch_floor() {
  local snap='' d
  for d in "$RBUILD_ROOT"/snapshots/*/m; do
    [ -d "$d" ] && [ "$(find "$d" -maxdepth 1 -type f | head -100001 | wc -l)" -ge 100000 ] \
      && { snap=${d%/m}; break; }
  done
  [ -n "$snap" ] || { echo "touch floor: no 100k-file snapshot in $RBUILD_ROOT" >&2; return 0; }
  printf '\n## touch floor: lstat of every entry of the lower snapshot (%s)\n\n' "$snap" \
    | tee -a "$OUT/summary.md"
  hyperfine -S bash --runs "$((ROUNDS * 3))" --warmup 1 --export-json "$OUT/touch-floor.json" \
    -n "touch-one floor (stat walk of the lower)" \
    "find $snap -printf '%C@ %s %i\\n' >/dev/null" \
    >>"$OUT/hyperfine.log" 2>&1
  jq -r '.results[0] | "stat walk of the lower: median \(.median*1000|floor) ms (min \(.min*1000|floor), max \(.max*1000|floor))"' \
    "$OUT/touch-floor.json" | tee -a "$OUT/summary.md"
}

settle() { sync; sleep 10; }
for round in $(seq 1 "$ROUNDS"); do
  export PEERS; PEERS=$(peers_of_round "$round")
  export OUT=$OUT_ALL/round-$round; mkdir -p "$OUT"
  shared_cases=()
  for c in "${CASES[@]}"; do
    case $c in fresh|settled) ;; limits) [ "$round" = 1 ] && shared_cases+=("$c") ;; *) shared_cases+=("$c") ;; esac
  done
  printf '\n# round %s of %s: %s\n' "$round" "$ROUNDS" "$PEERS" | tee -a "$OUT_ALL/summary.md"
  if [ ${#shared_cases[@]} -gt 0 ]; then
    bash "$SHARED/peers/large/bench-large.sh" "${shared_cases[@]}"
    cat "$OUT/summary.md" >>"$OUT_ALL/summary.md"
  fi
  : >"$OUT/fresh-summary.md"
  for c in "${CASES[@]}"; do
    case $c in
      fresh) settle; case_fresh ;;
      settled) case_settled ;;
    esac
  done
  cat "$OUT/fresh-summary.md" >>"$OUT_ALL/summary.md"
  settle
done
export OUT=$OUT_ALL
for c in "${CASES[@]}"; do [ "$c" != touch ] || touch_floor; done
# Every --no-cache run leaves cache records and blobs: without this the store had
# grown to 45 GB over many runs, and a nearly full disk slows every case.
"$RBUILD" --root "$RBUILD_ROOT" prune -f >/dev/null || echo "benches/large.sh: rbuild prune failed" >&2

# The ratio table: every hyperfine JSON of the rounds, named "<workload> <peer>"; a row's
# median, min and max are over all its runs (one per round). Then the raw speeds and floors
# measured in the same run, and rbuild's max RSS per workload (GNU time, KiB -> MiB).
python3 - "$OUT" <<'EOF'
import glob, json, statistics, sys
targets = {
    "big-copy cold": "<= 0.5", "many-files-copy cold": "<= 0.2",
    "many-files-copy no-change rebuild": "<= 0.15", "many-files-copy one file changed": "<= 0.3",
    "run-many-files cold": "<= 0.5", "touch-one cold": "<= 0.3", "push cold (repo empty)": "keep (0.34)",
    "fresh-store first build": "<= 0.7",
    "many-files-copy cold, settled": "<= 0.2", "run-many-files cold, settled": "<= 0.5",
}
times, rss = {}, {}
paths = glob.glob(sys.argv[1] + "/round-*/*.json") + glob.glob(sys.argv[1] + "/*.json")
for path in paths:
    try:
        res = json.load(open(path))["results"][0]
    except (ValueError, KeyError, IndexError):
        continue
    name, _, peer = res["command"].rpartition(" ")
    times.setdefault(name, {}).setdefault(peer, []).extend(res["times"])
    try:
        kib = [int(l) for l in open(path[:-5] + ".rss") if l.strip().isdigit()]
        rss.setdefault(name, {})[peer] = max(kib + [rss.get(name, {}).get(peer, 0)])
    except OSError:
        pass
stat = lambda t: (statistics.median(t), min(t), max(t))
fmt = lambda t: "%.2f (%.2f-%.2f)" % stat(t)
print("\n| workload | BuildKit s (min-max) | rbuild s (min-max) | ratio | target | rbuild max RSS MiB |")
print("|---|---|---|---|---|---|")
for name in sorted(times):
    r = times[name]
    if "rbuild" not in r or "buildkit" not in r:
        continue
    ratio = stat(r["rbuild"])[0] / stat(r["buildkit"])[0]
    mib = rss.get(name, {}).get("rbuild", 0) // 1024 or "-"
    print(f"| {name} | {fmt(r['buildkit'])} | {fmt(r['rbuild'])} | {ratio:.2f}x | {targets.get(name, '-')} | {mib} |")
print("\n| raw speed or floor (same run) | median s (min-max) |\n|---|---|")
for name in sorted(times):
    for peer, t in sorted(times[name].items()):
        if peer not in ("rbuild", "buildkit"):
            print(f"| {name} {peer} | {fmt(t)} |")
for name in sorted(times):
    r = times[name]
    if "rbuild" in r and "floor" in r:
        print(f"\n{name}: rbuild {stat(r['rbuild'])[0] / stat(r['floor'])[0]:.2f}x of its floor")
fresh = times.get("fresh-store first build", {}).get("rbuild")
for name in sorted(times):
    for peer, t in times[name].items():
        if fresh and name.startswith("fresh-store floor"):
            print(f"\nrbuild's first build on an empty store: {stat(fresh)[0] / stat(t)[0]:.2f}x of {name} {peer}")
EOF
