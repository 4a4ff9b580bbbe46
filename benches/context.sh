#!/usr/bin/env bash
# No-change rebuild of a big context: N files (default 100,000) in 100 directories,
# `FROM scratch` + `COPY src/ /src/`, built once, then rebuilt with nothing changed
# (the COPY is a cache hit: every file is lstat'ed and found in the stat cache, none
# is read). Also times `find -printf` of the same tree with the same stat fields,
# the floor any builder that checks every file pays on this machine.
#
# Needs hyperfine. Usage: bash benches/context.sh [-r RUNS] [-n FILES]
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=10
FILES=100000
while getopts "r:n:" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    n) FILES=$OPTARG ;;
    *) echo "usage: $0 [-r RUNS] [-n FILES]" >&2; exit 2 ;;
  esac
done
command -v hyperfine >/dev/null || { echo "hyperfine is required" >&2; exit 1; }
cargo build --release -q
RBUILD=$PWD/target/release/rbuild

work=$(mktemp -d /var/tmp/rbuild-context-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
per_dir=$(( (FILES + 99) / 100 ))
for d in $(seq 0 99); do
  mkdir -p "$work/ctx/src/d$d"
  (cd "$work/ctx/src/d$d" && seq 1 "$per_dir" | sed 's/^/f/' | xargs touch)
done
printf 'FROM scratch\nCOPY src/ /src/\n' > "$work/ctx/Dockerfile"
rb="$RBUILD --root $work/store build --progress quiet -t ctx:1 $work/ctx"
$rb >/dev/null
hyperfine -w 2 -r "$RUNS" -N \
  -n "rbuild no-change rebuild ($FILES files)" "$rb" \
  -n "find -printf size+mtime+ctime+inode (stat floor)" \
  "find $work/ctx/src -printf '%s %T@ %C@ %i\n'"
