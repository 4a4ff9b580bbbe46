#!/usr/bin/env bash
# Layer benchmark: tar + compress + digest of (a) 1 GiB in 100k files and (b) one 1 GiB
# file, against `tar -c | gzip -1 | sha256sum` on the same tree in the same run.
# Prints MB/s of uncompressed tar input, peak RSS and the ratio to the baseline.
# Data lives under /tmp and is deleted on exit. Usage: bash benches/layer.sh [BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-1073741824}
cargo build --release --quiet --example layer_bench
bin=target/release/examples/layer_bench
data=$(mktemp -d /tmp/rbuild-layer-bench.XXXXXX)
trap 'rm -rf "$data"' EXIT

echo "generating $total bytes in 100000 files and in one file under $data"
"$bin" gen-files "$data/many" 100000 "$total"
"$bin" gen-big "$data/one/big.dat" "$total"

# Runs a command under /usr/bin/time -v; prints "seconds peak_rss_kib".
measure() {
  local log
  log=$(mktemp)
  /usr/bin/time -v "$@" >"$log.out" 2>"$log" || { cat "$log" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  cat "$log.out" >>"$data/outputs"
  rm -f "$log" "$log.out"
  echo "$wall $rss"
}

printf '%-6s %-22s %9s %9s %10s %8s\n' tree method MB/s "RSS MiB" "blob MiB" "vs base"
for tree in many one; do
  dir="$data/$tree"
  tar_bytes=$("$bin" write "$dir" none | awk '{print $1}')
  read -r base_s base_rss < <(measure sh -c "tar -C '$dir' -cf - . | gzip -1 | sha256sum")
  base_mbs=$(awk -v b="$tar_bytes" -v s="$base_s" 'BEGIN {printf "%.1f", b/s/1e6}')
  # RSS of a pipeline under time -v is its largest member's.
  printf '%-6s %-22s %9s %9.1f %10s %8s\n' "$tree" "tar|gzip -1|sha256sum" "$base_mbs" "$(echo "$base_rss/1024" | bc -l)" - 1.00
  for mode in gzip1 gzip6 zstd none; do
    read -r s rss < <(measure "$bin" write "$dir" "$mode")
    line=$(tail -n 1 "$data/outputs")
    blob=$(echo "$line" | awk '{print $2}')
    # The example's own timer covers the layer pass only (time -v adds a size pass).
    own_s=$(echo "$line" | awk '{print $3}')
    mbs=$(awk -v b="$tar_bytes" -v s="$own_s" 'BEGIN {printf "%.1f", b/s/1e6}')
    ratio=$(awk -v a="$mbs" -v b="$base_mbs" 'BEGIN {printf "%.2f", a/b}')
    printf '%-6s %-22s %9s %9.1f %10.1f %8s\n' "$tree" "rbuild $mode" "$mbs" "$(echo "$rss/1024" | bc -l)" "$(echo "$blob/1048576" | bc -l)" "$ratio"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (2 shared cores: figures carry noise)"
