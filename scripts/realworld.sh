#!/usr/bin/env bash
# scripts/realworld.sh: build real-world Dockerfiles with rbuild, run the images with podman.
#
# Needs: root; the peers of ../shared/peers/setup.sh (dockerd 20.10 with BuildKit, buildah,
# podman with runc, skopeo, docker-registry); network access to the Debian mirror in
# /etc/apt/sources.list* (apt), PyPI (pip) and registry.npmjs.org (npm). Nothing comes
# from Docker Hub. Installs mmdebstrap (apt) if it is missing; builds target/release/rbuild
# if it is missing.
#
# What it does:
#   1. Makes a Debian bookworm rootfs with mmdebstrap (cached in the state dir) and turns
#      it into base images the ways images are made in the wild, pushed to a registry it
#      starts on loopback (127.0.0.1:5055 or the next free port, data in the state dir):
#        realworld/debian:bookworm      `docker import` (config with JSON nulls)
#        realworld/debian:bookworm-oci  the same, `skopeo copy --format oci`
#        realworld/python:3.11          Docker's classic builder (DOCKER_BUILDKIT=0)
#        realworld/node:18              BuildKit in dockerd (DOCKER_BUILDKIT=1)
#        realworld/golang:1.19          buildah from + run + config + commit
#      Bases are remade only when their inputs change (--rebuild-bases forces it).
#   2. Builds each case of testdata/realworld/cases/ (a Dockerfile from a public project,
#      its origin and changes in the comment at its top, and a minimal app in the same
#      shape) with rbuild in a fresh store that holds only the pulled bases, run from the
#      case's directory as `rbuild build -f Dockerfile --build-arg X_IMAGE=<base> .`.
#   3. Hands each image to podman (docker archive + `podman load`, or `rbuild push` to the
#      loopback registry + `podman pull`), runs it and checks it works: HTTP answers (in
#      the container's own network namespace, through nsenter), output, user, healthcheck.
#   4. With --compare, also builds each case with BuildKit (`docker build --network host`;
#      RBUILD_NETWORK=host runs rbuild's RUN steps on the host's network too; `docker
#      builder prune -af` first, which empties dockerd's whole build cache; bases already
#      local) and prints seconds side by side, with the seconds rbuild spent making
#      layers and the seconds each builder's RUN steps ran their commands (summed over
#      stages: the floor of a build that is its own apt, pip, npm and compilers, where
#      its stages do not overlap) with rbuild's ratio to the lower of the two; `--runs
#      N` builds each case N times with each builder, one after the other, and prints
#      the medians and every run (single runs swing by up to 30 % here: downloads, and
#      this disk).
# Takes 3 to 4 minutes with the rootfs and bases cached (3 more to make them), about
# twice that with --compare (and N times that with --runs N); most of it is apt, pip and
# npm downloads and compiling.
# One PASS/FAIL line per case; exit status 1 if any case failed.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/realworld.sh [OPTIONS] [CASE...]

Builds the real-world Dockerfiles of testdata/realworld/cases/ with rbuild on Debian
bases made by docker import, the classic builder, BuildKit, buildah and skopeo, and
runs each image with podman. Exit status 1 if any case fails.

Options:
  --compare         also build every case with BuildKit (empty cache, bases local)
                    and print a table: case, BuildKit s, rbuild s, ratio. Runs
                    `docker builder prune -af`: dockerd's build cache is emptied
  --runs N          with --compare: N cold builds per builder and case, one after
                    the other (each run both builders); the table gives the medians
                    and every run (default 1)
  --builder B       build the cases with B = rbuild (default) or buildkit (checks the
                    Dockerfiles and the checks themselves against Docker)
  --rebuild-bases   remake the base images even if their inputs did not change
  --keep            keep the rbuild store, images and logs of this run
  --list            list the cases and exit
  -h, --help        this help

Environment:
  RBUILD_REALWORLD_DIR     state dir (default /tmp/rbuild-realworld): rootfs tarball,
                           registry data, stores, logs
  RBUILD_REALWORLD_PORT    first registry port to try (default 5055)
  RBUILD_REALWORLD_MIRROR  Debian mirror for mmdebstrap: a URL or a sources file
                           (default: /etc/apt/sources.list.d/debian.sources if it
                           names bookworm, else http://deb.debian.org/debian)
  RBUILD                   the rbuild binary (default target/release/rbuild)
EOF
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TESTDATA=$REPO/testdata/realworld
BASES_DIR=$TESTDATA/bases
CASES_DIR=$TESTDATA/cases
STATE=${RBUILD_REALWORLD_DIR:-/tmp/rbuild-realworld}
RBUILD=${RBUILD:-$REPO/target/release/rbuild}
DOCKER=/usr/bin/docker # the 20.10 client: it talks to BuildKit in dockerd without buildx
FIRST_PORT=${RBUILD_REALWORLD_PORT:-5055}
NAME_PREFIX=rbuild-realworld # podman containers and docker/podman image names we make

COMPARE=0
COMPARE_RUNS=1
BUILDER=rbuild
REBUILD_BASES=0
KEEP=0
LIST=0
SELECTED=()
while [ $# -gt 0 ]; do
  case "$1" in
    --compare) COMPARE=1 ;;
    --runs) COMPARE_RUNS=${2:?--runs needs a number}; shift ;;
    --runs=*) COMPARE_RUNS=${1#--runs=} ;;
    --builder) BUILDER=${2:?--builder needs rbuild or buildkit}; shift ;;
    --builder=*) BUILDER=${1#--builder=} ;;
    --rebuild-bases) REBUILD_BASES=1 ;;
    --keep) KEEP=1 ;;
    --list) LIST=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "realworld.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) SELECTED+=("$1") ;;
  esac
  shift
done
case "$BUILDER" in rbuild | buildkit) ;; *) echo "realworld.sh: --builder rbuild|buildkit" >&2; exit 2 ;; esac
case "$COMPARE_RUNS" in '' | *[!0-9]* | 0) echo "realworld.sh: --runs needs a number above 0" >&2; exit 2 ;; esac

ALL_CASES=()
for dir in "$CASES_DIR"/*/; do
  ALL_CASES+=("$(basename "$dir")")
done
if [ "$LIST" = 1 ]; then
  for c in "${ALL_CASES[@]}"; do
    printf '%-34s %s\n' "$c" "$(sed -n 's/^# Source: //p' "$CASES_DIR/$c/Dockerfile" | head -1)"
  done
  exit 0
fi
if [ ${#SELECTED[@]} -eq 0 ]; then
  SELECTED=("${ALL_CASES[@]}")
fi
for c in "${SELECTED[@]}"; do
  [ -f "$CASES_DIR/$c/Dockerfile" ] || { echo "realworld.sh: no case $c (see --list)" >&2; exit 2; }
done

log() { printf '[realworld %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ preflight
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap, dockerd, podman and rbuild's sandbox need it)"
[ -x "$DOCKER" ] || die "$DOCKER missing: run ../shared/peers/setup.sh"
"$DOCKER" info >/dev/null 2>&1 || die "dockerd does not answer: run ../shared/peers/setup.sh"
for tool in buildah podman skopeo curl jq nsenter ss; do
  command -v "$tool" >/dev/null || die "$tool missing: run ../shared/peers/setup.sh"
done
[ -x /usr/bin/docker-registry ] || die "docker-registry missing: run ../shared/peers/setup.sh"
if ! command -v mmdebstrap >/dev/null; then
  log "installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
fi
if [ "$BUILDER" = rbuild ] || [ "$COMPARE" = 1 ]; then
  if [ ! -x "$RBUILD" ]; then
    log "building rbuild (cargo build --release)"
    (cd "$REPO" && cargo build --release)
  fi
fi

mkdir -p "$STATE"/{rootfs,stamps,logs,registry}
RUN_DIR=$(mktemp -d "$STATE/run.XXXXXX") # stores, archives: removed on exit unless --keep
LOGS=$STATE/logs/last-run                 # build and check logs of the last run: kept
rm -rf "$LOGS"
mkdir -p "$LOGS"
STORE=$RUN_DIR/store
REG_PID=
CONTAINERS=()

cleanup() {
  local status=$?
  set +e
  for ctr in "${CONTAINERS[@]}"; do
    podman rm -f -t 0 "$ctr" >/dev/null 2>&1
  done
  if [ -n "$REG_PID" ]; then
    kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    rm -f "$STATE/registry/pid"
  fi
  if [ "$KEEP" = 1 ]; then
    log "kept $RUN_DIR"
  else
    # The store's snapshots may be overlay upper dirs owned by anyone: plain rm -rf.
    rm -rf "$RUN_DIR"
    # The images of the cases (the bases stay in dockerd for the next run).
    podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null \
      | grep -E "/$NAME_PREFIX/|/realworld/cases/" | xargs -r podman rmi -f >/dev/null 2>&1
    "$DOCKER" images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null \
      | grep -E "/$NAME_PREFIX/|/realworld/cases/" | xargs -r "$DOCKER" rmi -f >/dev/null 2>&1
  fi
  log "logs in $LOGS"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ registry
# Our own docker-registry (CNCF distribution, plain HTTP on loopback), data kept in the
# state dir so the bases survive between runs; stopped on exit.
port_busy() { [ -n "$(ss -Hltn "sport = :$1")" ]; }

# `env` arguments that unset the REGISTRY_* variables: they would override the config.
REGISTRY_UNSET=()
for var in $(compgen -e); do
  case "$var" in REGISTRY_*) REGISTRY_UNSET+=(-u "$var") ;; esac
done

start_registry() {
  local pidfile=$STATE/registry/pid port config
  # A registry a killed run left behind is ours: stop it (its pid file says which).
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null \
    && grep -q docker-registry "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    sleep 1
  fi
  config=$STATE/registry/config.yml
  # The images of the cases are pushed anew by each run: drop the last run's, and the
  # blobs nothing refers to any more, before serving (the registry must not run).
  if [ -f "$config" ] && [ -d "$STATE/registry/data/docker/registry/v2/repositories/realworld/cases" ]; then
    rm -rf "$STATE/registry/data/docker/registry/v2/repositories/realworld/cases"
    env "${REGISTRY_UNSET[@]}" /usr/bin/docker-registry garbage-collect --delete-untagged "$config" \
      >"$STATE/logs/registry-gc.log" 2>&1 || log "registry garbage-collect failed (see $STATE/logs/registry-gc.log)"
  fi
  for port in $(seq "$FIRST_PORT" $((FIRST_PORT + 20))); do
    port_busy "$port" && continue
    cat >"$config" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: rbuild-realworld-not-a-secret
EOF
    # env execs the registry: $! is the registry's own pid.
    env "${REGISTRY_UNSET[@]}" /usr/bin/docker-registry serve "$config" \
      >"$STATE/logs/registry.log" 2>&1 &
    REG_PID=$!
    echo "$REG_PID" >"$pidfile"
    for _ in $(seq 50); do
      if ! kill -0 "$REG_PID" 2>/dev/null; then
        break
      fi
      if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then
        REG=127.0.0.1:$port
        log "registry $REG (pid $REG_PID, data $STATE/registry/data)"
        return
      fi
      sleep 0.2
    done
    kill "$REG_PID" 2>/dev/null
    wait "$REG_PID" 2>/dev/null || true
    REG_PID=
    grep -q "address already in use" "$STATE/logs/registry.log" && continue
    tail -20 "$STATE/logs/registry.log" >&2
    die "docker-registry did not start on 127.0.0.1:$port"
  done
  die "no free port in $FIRST_PORT..$((FIRST_PORT + 20)) for the registry"
}

in_registry() { # REF: does the loopback registry have it?
  skopeo inspect --tls-verify=false --raw "docker://$1" >/dev/null 2>&1
}

# ------------------------------------------------------------------ bases
# The Debian mirror mmdebstrap uses: the machine's own apt sources when they are Debian
# bookworm's, so a local mirror or proxy configured there is used here too.
debian_mirror() {
  if [ -n "${RBUILD_REALWORLD_MIRROR:-}" ]; then
    echo "$RBUILD_REALWORLD_MIRROR"
  elif [ -f /etc/apt/sources.list.d/debian.sources ] \
    && grep -q '^Suites:.*bookworm' /etc/apt/sources.list.d/debian.sources; then
    echo /etc/apt/sources.list.d/debian.sources
  else
    echo http://deb.debian.org/debian
  fi
}

# Debian bookworm, variant minbase (Essential + apt), no docs/man/locales, Docker Hub's
# apt.conf.d tweaks; about 125 MB. Cached by its inputs.
# CAs the host trusts locally (/usr/local/share/ca-certificates/*.crt: a TLS-inspecting
# proxy, as on this machine) go into the rootfs the way corporate base images carry
# them: update-ca-certificates adds them to the bundle when a Dockerfile installs
# ca-certificates, so pip and npm reach PyPI and npm through the proxy. Without local
# CAs nothing is added.
ROOTFS=
LOCAL_CAS=()
make_rootfs() {
  local mirror key ca ca_hook
  mirror=$(debian_mirror)
  for ca in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$ca" ] && LOCAL_CAS+=("$ca")
  done
  key=$( {
    echo "bookworm minbase v1 $mirror"
    [ -f "$mirror" ] && cat "$mirror"
    cat "$BASES_DIR/docker-clean" "$BASES_DIR/docker-no-languages"
    [ ${#LOCAL_CAS[@]} -eq 0 ] || cat "${LOCAL_CAS[@]}"
  } | sha256sum | cut -c1-16)
  ROOTFS=$STATE/rootfs/bookworm-minbase-$key.tar
  if [ -s "$ROOTFS" ]; then
    log "rootfs: cached $ROOTFS"
    return
  fi
  ca_hook=true
  if [ ${#LOCAL_CAS[@]} -gt 0 ]; then
    ca_hook="mkdir -p \"\$1/usr/local/share/ca-certificates\" && install -m 0644 $(printf '%q ' "${LOCAL_CAS[@]}")\"\$1/usr/local/share/ca-certificates/\""
    log "rootfs: adding the host's local CAs: ${LOCAL_CAS[*]}"
  fi
  log "rootfs: mmdebstrap bookworm (minbase) from $mirror"
  rm -f "$STATE"/rootfs/bookworm-minbase-*.tar
  # shellcheck disable=SC2016 # "$1" in a hook is the rootfs, for mmdebstrap to expand
  mmdebstrap --variant=minbase --mode=root --format=tar \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="install -m 0644 '$BASES_DIR/docker-clean' \"\$1/etc/apt/apt.conf.d/docker-clean\"" \
    --customize-hook="install -m 0644 '$BASES_DIR/docker-no-languages' \"\$1/etc/apt/apt.conf.d/docker-no-languages\"" \
    --customize-hook='rm -f "$1"/var/cache/apt/*.bin' \
    --customize-hook="$ca_hook" \
    bookworm "$ROOTFS.tmp" "$mirror" >"$STATE/logs/mmdebstrap.log" 2>&1 \
    || { tail -20 "$STATE/logs/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
  mv "$ROOTFS.tmp" "$ROOTFS"
  log "rootfs: $(du -h "$ROOTFS" | cut -f1) in $ROOTFS"
}

# A base is remade when the stamp of its inputs changed or the registry lost it.
base_current() { # NAME KEY REF
  [ "$REBUILD_BASES" = 0 ] && [ "$(cat "$STATE/stamps/$1" 2>/dev/null)" = "$2" ] && in_registry "$3"
}

file_key() { cat "$@" | sha256sum | cut -c1-16; }

# A base remade under the same name leaves its old image dangling in dockerd: drop it
# (`docker rmi` refuses if something still uses it, which is fine).
docker_id() { "$DOCKER" image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
drop_replaced() { # OLD_ID REF
  if [ -n "$1" ] && [ "$1" != "$(docker_id "$2")" ]; then
    "$DOCKER" rmi "$1" >/dev/null 2>&1 || true
  fi
}

make_bases() {
  local key rootfs_key old
  make_rootfs
  rootfs_key=$(basename "$ROOTFS" .tar)

  DEBIAN_REF=$REG/realworld/debian:bookworm
  key=$rootfs_key
  if base_current debian "$key" "$DEBIAN_REF"; then
    log "base $DEBIAN_REF: current"
  else
    log "base $DEBIAN_REF: docker import $ROOTFS"
    old=$(docker_id "$DEBIAN_REF")
    "$DOCKER" import "$ROOTFS" "$DEBIAN_REF" >/dev/null
    drop_replaced "$old" "$DEBIAN_REF"
    "$DOCKER" push "$DEBIAN_REF" >"$STATE/logs/push-debian.log"
    echo "$key" >"$STATE/stamps/debian"
  fi

  DEBIAN_OCI_REF=$REG/realworld/debian:bookworm-oci
  key=$(cat "$STATE/stamps/debian")-oci
  if base_current debian-oci "$key" "$DEBIAN_OCI_REF"; then
    log "base $DEBIAN_OCI_REF: current"
  else
    log "base $DEBIAN_OCI_REF: skopeo copy --format oci"
    skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --format oci \
      "docker://$DEBIAN_REF" "docker://$DEBIAN_OCI_REF"
    echo "$key" >"$STATE/stamps/debian-oci"
  fi

  # The classic builder and BuildKit resolve FROM in dockerd's image store first: make
  # it hold what the registry holds.
  old=$(docker_id "$DEBIAN_REF")
  "$DOCKER" pull -q "$DEBIAN_REF" >/dev/null
  drop_replaced "$old" "$DEBIAN_REF"

  PYTHON_REF=$REG/realworld/python:3.11
  key=$(cat "$STATE/stamps/debian")-$(file_key "$BASES_DIR/python.Dockerfile")
  if base_current python "$key" "$PYTHON_REF"; then
    log "base $PYTHON_REF: current"
  else
    log "base $PYTHON_REF: classic builder (DOCKER_BUILDKIT=0)"
    old=$(docker_id "$PYTHON_REF")
    DOCKER_BUILDKIT=0 "$DOCKER" build --network host --build-arg "DEBIAN_IMAGE=$DEBIAN_REF" \
      -t "$PYTHON_REF" -f "$BASES_DIR/python.Dockerfile" "$BASES_DIR" \
      >"$STATE/logs/base-python.log" 2>&1 \
      || { tail -20 "$STATE/logs/base-python.log" >&2; die "classic build of the python base failed"; }
    drop_replaced "$old" "$PYTHON_REF"
    "$DOCKER" push "$PYTHON_REF" >"$STATE/logs/push-python.log"
    echo "$key" >"$STATE/stamps/python"
  fi

  NODE_REF=$REG/realworld/node:18
  key=$(cat "$STATE/stamps/debian")-$(file_key "$BASES_DIR/node.Dockerfile")
  if base_current node "$key" "$NODE_REF"; then
    log "base $NODE_REF: current"
  else
    log "base $NODE_REF: BuildKit (DOCKER_BUILDKIT=1)"
    old=$(docker_id "$NODE_REF")
    DOCKER_BUILDKIT=1 "$DOCKER" build --progress plain --network host \
      --build-arg "DEBIAN_IMAGE=$DEBIAN_REF" \
      -t "$NODE_REF" -f "$BASES_DIR/node.Dockerfile" "$BASES_DIR" \
      >"$STATE/logs/base-node.log" 2>&1 \
      || { tail -20 "$STATE/logs/base-node.log" >&2; die "BuildKit build of the node base failed"; }
    drop_replaced "$old" "$NODE_REF"
    "$DOCKER" push "$NODE_REF" >"$STATE/logs/push-node.log"
    echo "$key" >"$STATE/stamps/node"
  fi

  GOLANG_REF=$REG/realworld/golang:1.19
  key=$(cat "$STATE/stamps/debian")-$(file_key "$BASES_DIR/golang.buildah.sh")
  if base_current golang "$key" "$GOLANG_REF"; then
    log "base $GOLANG_REF: current"
  else
    log "base $GOLANG_REF: buildah from + run + config + commit"
    "$BASES_DIR/golang.buildah.sh" "$DEBIAN_REF" "localhost/$NAME_PREFIX/golang:1.19" \
      "$STATE/logs/base-golang.log" || die "buildah build of the golang base failed"
    buildah push --quiet --tls-verify=false "localhost/$NAME_PREFIX/golang:1.19" "docker://$GOLANG_REF"
    buildah rmi "localhost/$NAME_PREFIX/golang:1.19" >/dev/null
    echo "$key" >"$STATE/stamps/golang"
  fi
}

# ------------------------------------------------------------------ cases
# The Dockerfiles name their base images through build args (`ARG X_IMAGE=<the original
# image>`); these are ours.
base_for_arg() {
  case "$1" in
    DEBIAN_IMAGE) echo "$DEBIAN_REF" ;;
    DEBIAN_OCI_IMAGE | DISTROLESS_CC_IMAGE) echo "$DEBIAN_OCI_REF" ;;
    PYTHON_IMAGE | DISTROLESS_PYTHON_IMAGE) echo "$PYTHON_REF" ;;
    NODE_IMAGE) echo "$NODE_REF" ;;
    GOLANG_IMAGE | GCC_IMAGE) echo "$GOLANG_REF" ;;
    *) return 1 ;;
  esac
}

case_image_args() { sed -n 's/^ARG \([A-Z_]*_IMAGE\)=.*/\1/p' "$CASES_DIR/$1/Dockerfile"; }

case_target() {
  case "$1" in
    express-backend) echo development ;; # as its compose file builds it
    nodejs-sample) echo prod ;;
  esac
}

# rbuild writes OCI images by default; podman (4.3) ignores HEALTHCHECK in an OCI
# image's config (as buildah warns: "HEALTHCHECK is not supported for OCI image
# format"), so the Dockerfiles with a HEALTHCHECK are built in Docker's format.
case_rbuild_flags() {
  if grep -q '^HEALTHCHECK' "$CASES_DIR/$1/Dockerfile"; then
    echo --format docker
  fi
  # RBUILD_NETWORK=host: RUN steps on the host's network, as the BuildKit side of
  # --compare runs them (`docker build --network host`: the peers' dockerd has no
  # bridge); default: rbuild's isolated default network.
  if [ -n "${RBUILD_NETWORK:-}" ]; then
    echo --network "$RBUILD_NETWORK"
  fi
}

# How the image reaches podman: a docker archive (`-o type=docker`) and `podman load`,
# or a push to the loopback registry and `podman pull`.
case_delivery() {
  case "$1" in
    jq | nginx-golang | python-docker-dev | healthchecks) echo registry ;;
    *) echo archive ;;
  esac
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# prepare_store CASE: a fresh rbuild store holding only the bases the case needs, so
# the build starts with an empty build cache (sets STORE).
prepare_store() {
  local c=$1 arg ref
  STORE=$RUN_DIR/store-$c
  rm -rf "$STORE"
  for arg in $(case_image_args "$c"); do
    ref=$(base_for_arg "$arg")
    "$RBUILD" pull --root "$STORE" "$ref" >>"$LOGS/$c.pull.log" 2>&1 \
      || fail "rbuild pull $ref failed: $(tail -1 "$LOGS/$c.pull.log")" || return 1
  done
}

# build CASE BUILDER LOG [extra build flags...]: builds the case into the builder's own
# store (rbuild's STORE, dockerd's images) and times that alone (BUILD_SECONDS); then,
# unless DELIVER=0, hands the image to podman (BUILT: its podman name). rbuild's docker
# archive comes from a second `rbuild build -o type=docker` (all cache hits, which the
# image ID must show).
DELIVER=1
build() {
  local c=$1 builder=$2 logf=$3 target delivery ref t0 t1 arg out loaded id1 id2 old
  shift 3
  local args=()
  target=$(case_target "$c")
  delivery=$(case_delivery "$c")
  for arg in $(case_image_args "$c"); do
    args+=(--build-arg "$arg=$(base_for_arg "$arg")")
  done
  [ -z "$target" ] || args+=(--target "$target")
  # Run from the context directory with `-f Dockerfile .`, as people do.
  args+=(-f Dockerfile "$@")
  if [ "$delivery" = archive ]; then
    ref=localhost/$NAME_PREFIX/$c:$builder
  else
    ref=$REG/realworld/cases/$c:$builder
  fi
  : >"$logf"
  # Start the clock with no writeback pending (the last store's rm -rf, a prune): file
  # creation is several times slower while the disk flushes.
  sync
  if [ "$builder" = rbuild ]; then
    # shellcheck disable=SC2046 # flags, split on purpose
    set -- $(case_rbuild_flags "$c")
    args+=("$@")
    t0=$(now)
    (cd "$CASES_DIR/$c" && "$RBUILD" build --root "$STORE" --progress plain \
      --iidfile "$RUN_DIR/$c.iid" -t "$ref" "${args[@]}" .) >>"$logf" 2>&1 || return 1
    t1=$(now)
  else
    old=$(docker_id "$ref")
    t0=$(now)
    (cd "$CASES_DIR/$c" && DOCKER_BUILDKIT=1 "$DOCKER" build --progress plain --network host \
      -t "$ref" "${args[@]}" .) >>"$logf" 2>&1 || return 1
    t1=$(now)
    drop_replaced "$old" "$ref" # a rerun's image takes the name: no dangling image
  fi
  BUILD_SECONDS=$(elapsed "$t0" "$t1")
  [ "$DELIVER" = 1 ] || return 0
  echo "=== delivery to podman ($delivery)" >>"$logf"
  if [ "$builder" = rbuild ] && [ "$delivery" = archive ]; then
    (cd "$CASES_DIR/$c" && "$RBUILD" build --root "$STORE" --progress plain \
      --iidfile "$RUN_DIR/$c.iid2" -t "$ref" -o "type=docker,dest=$RUN_DIR/$c.tar" "${args[@]}" .) \
      >>"$logf" 2>&1 || return 1
    id1=$(cat "$RUN_DIR/$c.iid") id2=$(cat "$RUN_DIR/$c.iid2")
    [ "$id1" = "$id2" ] || { echo "the rebuild made another image: $id1 then $id2" >>"$logf"; return 1; }
  elif [ "$builder" = rbuild ]; then
    "$RBUILD" push --root "$STORE" "$ref" >>"$logf" 2>&1 || return 1
  elif [ "$delivery" = archive ]; then
    "$DOCKER" save -o "$RUN_DIR/$c.tar" "$ref" >>"$logf" 2>&1 || return 1
  else
    "$DOCKER" push "$ref" >>"$logf" 2>&1 || return 1
  fi
  if [ "$delivery" = archive ]; then
    out=$(podman load -i "$RUN_DIR/$c.tar" 2>>"$logf") || return 1
    rm -f "$RUN_DIR/$c.tar"
    loaded=$(sed -n 's/^Loaded image[^:]*: *//p' <<<"$out" | head -1)
    [ -n "$loaded" ] || { echo "podman load named no image: $out" >>"$logf"; return 1; }
    BUILT=$loaded
  else
    podman pull -q --tls-verify=false "$ref" >>"$logf" 2>&1 || return 1
    BUILT=$ref
  fi
}

# ------------------------------------------------------------------ checks
# Each check_<case> IMAGE returns 1 with the reason in WHY when the image does not work.
WHY=
fail() { WHY=$*; return 1; }

prun() { podman run --rm --network none "$@"; }

# start CASE IMAGE [run flags...]: runs the image detached in a network namespace of its
# own (loopback only: nothing is published, no port can clash); sets CTR.
CTR=
start() {
  local name=$NAME_PREFIX-$1 image=$2 out
  shift 2
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  CONTAINERS+=("$name")
  # (podman logs that it cannot reach systemd to time healthchecks: none needed here)
  out=$(podman run -d --name "$name" --network none "$@" "$image" 2>&1) \
    || fail "podman run failed: $out" || return 1
  CTR=$name
}

# http CTR URL [curl flags...]: curl run on the host inside the container's network
# namespace (so images without curl can be probed); retried for up to 60 s while the
# app starts. Prints the body.
http() {
  local ctr=$1 url=$2 pid i
  shift 2
  for i in $(seq 120); do
    pid=$(podman inspect -f '{{.State.Pid}}' "$ctr" 2>/dev/null) || pid=0
    if [ "$pid" = 0 ]; then
      fail "container exited: $(podman logs --tail 5 "$ctr" 2>&1 | tr '\n' ' ')"
      return 1
    fi
    if nsenter -t "$pid" -n curl -fsS --max-time 5 "$@" "$url" 2>/dev/null; then
      return 0
    fi
    [ "$i" = 1 ] || sleep 0.5
  done
  fail "no answer from $url in 60 s; logs: $(podman logs --tail 5 "$ctr" 2>&1 | tr '\n' ' ')"
}

user_of() { podman exec "$1" id -un; }

# The image's HEALTHCHECK, run by podman in the container (`podman healthcheck run`).
healthy() {
  local ctr=$1 out i
  for i in $(seq 10); do
    out=$(podman healthcheck run "$ctr" 2>&1) && return 0
    sleep 2
  done
  fail "podman healthcheck run: $out"
}

expect() { # WHAT ACTUAL PATTERN (grep -E)
  grep -Eq -- "$3" <<<"$2" || fail "$1: expected /$3/, got: $(head -c 300 <<<"$2" | tr '\n' ' ')"
}

check_jq() {
  local out
  out=$(prun "$1" --version 2>&1) || fail "jq --version: $out" || return 1
  expect "jq --version" "$out" '^jq-1\.7\.1-realworld$' || return 1
  out=$(printf '{"a":[1,"x y"],"b":{}}' | podman run --rm -i --network none "$1" . 2>&1) \
    || fail "jq .: $out" || return 1
  [ "$out" = "$(printf '{\n  "a": [\n    1,\n    "x y"\n  ],\n  "b": {}\n}')" ] \
    || fail "jq . printed: $out"
}

check_distroless-cc() {
  local out
  out=$(prun "$1" 2>&1) || fail "./hello: $out" || return 1
  expect "./hello" "$out" '^Hello, world!$'
}

check_distroless-python3-requirements() {
  local out
  out=$(prun "$1" 2>&1) || fail "psutil_example.py: $out" || return 1
  expect "psutil_example.py" "$out" '^psutil 5\.6\.3: RSS [0-9.]+ MiB, VMS [0-9.]+ MiB$'
}

check_nginx-golang() {
  local out
  start nginx-golang "$1" || return 1
  out=$(http "$CTR" http://127.0.0.1:80/realworld) || return 1
  expect "GET /" "$out" '^Hello from Docker! \(go1\.19[^,]*, /realworld\)$'
}

check_express-backend() {
  local out
  start express-backend "$1" || return 1
  out=$(http "$CTR" http://127.0.0.1:80/) || return 1
  expect "GET /" "$out" '"message":"Hello Docker World!".*"env":"production"' || return 1
  out=$(http "$CTR" http://127.0.0.1:80/healthz) || return 1
  expect "GET /healthz" "$out" 'happy and healthy' || return 1
  healthy "$CTR"
}

check_nodejs-sample() {
  local out
  start nodejs-sample "$1" || return 1
  out=$(http "$CTR" http://127.0.0.1:3000/items -X POST -H 'Content-Type: application/json' \
    -d '{"name":"try rbuild"}') || return 1
  expect "POST /items" "$out" '"name":"try rbuild"' || return 1
  out=$(http "$CTR" http://127.0.0.1:3000/) || return 1
  expect "GET /" "$out" 'Todo App' || return 1
  out=$(user_of "$CTR") || fail "id -un failed" || return 1
  expect "user" "$out" '^node$' || return 1
  podman exec "$CTR" test -f node_modules/express/package.json || fail "express not installed" || return 1
  ! podman exec "$CTR" test -e node_modules/nodemon || fail "dev dependency nodemon installed"
}

check_python-docker-dev() {
  local out
  start python-docker-dev "$1" || return 1
  out=$(http "$CTR" http://127.0.0.1:5000/) || return 1
  expect "GET /" "$out" '^Hello from Flask on Python 3\.11\.[0-9]+ as appuser!$' || return 1
  out=$(podman exec "$CTR" id -u) || fail "id -u failed" || return 1
  expect "uid" "$out" '^10001$'
}

check_healthchecks() {
  local out
  start healthchecks "$1" || return 1
  out=$(http "$CTR" http://127.0.0.1:8000/api/v3/status/) || return 1
  expect "GET /api/v3/status/" "$out" '^OK$' || return 1
  out=$(http "$CTR" http://127.0.0.1:8000/) || return 1
  expect "GET / (offline-compressed CSS)" "$out" '/static/CACHE/css/output\.[0-9a-f]+\.css' || return 1
  out=$(user_of "$CTR") || fail "id -un failed" || return 1
  expect "user" "$out" '^hc$' || return 1
  healthy "$CTR"
}

check_apt-cache-mount() {
  local out
  # shellcheck disable=SC2016 # the script runs in the image
  out=$(prun "$1" sh -c '
    echo "user=$(id -un) cwd=$(pwd)"
    curl --version | head -1
    echo "lists=$(ls /var/lib/apt/lists | grep -c _Packages)"
    echo "debs=$(ls /var/cache/apt/archives | grep -c "\.deb$")"
    test -e /etc/apt/apt.conf.d/docker-clean && echo docker-clean=kept || echo docker-clean=removed
  ' 2>&1) || fail "sh in the image: $out" || return 1
  expect "user, workdir" "$out" '^user=user cwd=/app$' || return 1
  expect "curl" "$out" '^curl 7\.88' || return 1
  expect "apt lists (cache mount) not in the image" "$out" '^lists=0$' || return 1
  expect ".debs (cache mount) not in the image" "$out" '^debs=0$' || return 1
  expect "docker-clean removed by the RUN" "$out" '^docker-clean=removed$'
}

# After the check of apt-cache-mount: the RUN again, in the same store, must find every
# .deb in the cache mount ("Need to get 0 B"). The RUN reruns because the build arg
# DEBIAN_FRONTEND it sees changes, to an equivalent value (debconf only warns about the
# capital): `--no-cache` would not do, BuildKit empties cache mounts on --no-cache.
recheck_apt-cache-mount() {
  local logf=$LOGS/apt-cache-mount.rerun.log
  DELIVER=0 build apt-cache-mount "$BUILDER" "$logf" --build-arg DEBIAN_FRONTEND=Noninteractive \
    || fail "the rerun failed (log $logf)" || return 1
  grep -Eq 'Need to get 0 B(/| of)' "$logf" \
    || fail "the rerun downloaded .debs again: $(grep -E 'Need to get' "$logf" | head -1) (log $logf)"
}

# ------------------------------------------------------------------ one case
RESULTS=()
COMPARE_ROWS=()
FAILED=0
OTHER=buildkit
[ "$BUILDER" = rbuild ] || OTHER=rbuild

# cold_start BUILDER CASE: an empty build cache for BUILDER (a fresh rbuild store, or
# dockerd's build cache pruned), then the same settling for both: what the delete left
# to the disk (this disk is mounted with `discard`, and files made right after a big
# delete were made several times slower) is flushed before the timed build starts.
cold_start() {
  if [ "$1" = buildkit ]; then
    "$DOCKER" builder prune -af >/dev/null
  else
    prepare_store "$2" || true
  fi
  settle
}
settle() { sync; sleep 2; }

# timed BUILDER CASE LOG: one cold build without delivery; prints its seconds, or
# `failed`.
timed() {
  cold_start "$1" "$2" >&2
  if DELIVER=0 build "$2" "$1" "$3" >&2; then echo "$BUILD_SECONDS"; else echo failed; fi
}

# median X...: the median of numbers (`failed` if any run failed).
median() {
  printf '%s\n' "$@" | sort -n | awk '/failed/ { bad = 1 } { v[NR] = $1 }
    END { if (bad || NR == 0) print "failed"; else if (NR % 2) print v[(NR + 1) / 2];
          else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# compare_case CASE SECONDS LOG: COMPARE_RUNS cold builds by the other builder (and
# COMPARE_RUNS - 1 more by this one, whose first is the checked build of SECONDS, LOG);
# adds the case's row of medians and runs to COMPARE_ROWS.
compare_case() {
  local c=$1 logf=$3 i log
  local mine=("$2") others=() layers=() rb_cmds=() bk_cmds=()
  note_run "$BUILDER" "$logf"
  for ((i = 1; i <= COMPARE_RUNS; i++)); do
    if ((i > 1)); then
      log "case $c: run $i of $COMPARE_RUNS with $BUILDER"
      log=$LOGS/$c.$BUILDER.run$i.log
      mine+=("$(timed "$BUILDER" "$c" "$log")")
      note_run "$BUILDER" "$log"
    fi
    log "case $c: the same build with $OTHER, for the comparison (run $i of $COMPARE_RUNS)"
    log=$LOGS/$c.$OTHER.run$i.log
    others+=("$(timed "$OTHER" "$c" "$log")")
    note_run "$OTHER" "$log"
  done
  local rb=("${mine[@]}") bk=("${others[@]}")
  if [ "$BUILDER" != rbuild ]; then rb=("${others[@]}") bk=("${mine[@]}"); fi
  COMPARE_ROWS+=("$c $(median "${bk[@]}") $(median "${rb[@]}") $(median "${layers[@]}") \
$(median "${rb_cmds[@]}") $(median "${bk_cmds[@]}") $(IFS=/; echo "${bk[*]}") $(IFS=/; echo "${rb[*]}")")
}

# note_run BUILDER LOG: adds what the timed build's log says to compare_case's lists:
# rbuild's layer seconds and both builders' command seconds.
note_run() {
  if [ "$1" = rbuild ]; then
    layers+=("$(layer_seconds "$2")")
    rb_cmds+=("$(command_seconds "$2")")
  else
    bk_cmds+=("$(command_seconds "$2")")
  fi
}

run_case() {
  local c=$1 logf=$LOGS/$1.$BUILDER.log bases arg status=PASS detail=ok
  local seconds=- t0
  bases=$(for arg in $(case_image_args "$c"); do base_for_arg "$arg"; done \
    | sed 's|.*/realworld/||' | sort -u | tr '\n' ' ')
  BUILD_SECONDS=-
  WHY=
  log "case $c: building with $BUILDER (bases: $bases)"
  # An empty build cache: a fresh rbuild store, or BuildKit's cache (and cache mounts)
  # pruned.
  [ "$BUILDER" = rbuild ] || "$DOCKER" builder prune -af >/dev/null
  if [ "$BUILDER" = rbuild ] && ! prepare_store "$c"; then
    status=FAIL detail=$WHY
  elif ! settle || ! build "$c" "$BUILDER" "$logf"; then
    status=FAIL
    detail="build failed: $(grep -E -i 'error|fail' "$logf" | tail -1 | cut -c1-400) (log $logf)"
    tail -25 "$logf" | sed 's/^/    | /' >&2
  else
    seconds=$BUILD_SECONDS
    log "case $c: built in ${seconds}s; running $BUILT with podman"
    t0=$(now)
    if ! "check_$c" "$BUILT"; then
      status=FAIL detail="check failed: $WHY"
    elif declare -F "recheck_$c" >/dev/null && ! "recheck_$c"; then
      status=FAIL detail="check failed: $WHY"
    fi
    log "case $c: checked in $(elapsed "$t0" "$(now)")s"
  fi
  podman rm -f -t 0 "$NAME_PREFIX-$c" >/dev/null 2>&1 || true
  if [ "$COMPARE" = 1 ]; then
    compare_case "$c" "$seconds" "$logf"
  fi
  # The stores go at exit: files made soon after a big rm -rf were made several times
  # slower on the test machine (GNU tar too), which would skew the next case's timing.
  [ "$status" = PASS ] || FAILED=$((FAILED + 1))
  RESULTS+=("$(printf '%s  %-34s %-8s %8s  %s' "$status" "$c" "$BUILDER" "${seconds}s" "$detail")")
  printf '%s  %-34s %s %ss (bases: %s) %s\n' "$status" "$c" "$BUILDER" "$seconds" "${bases% }" "$detail"
}

# layer_seconds LOG: the seconds rbuild's timed build spent making layers (the sum of
# its plain progress's `DONE …s (layer Xs)` notes, before the delivery's rebuild).
layer_seconds() {
  [ -f "$1" ] || { echo -; return 0; }
  awk '/^=== delivery/ { exit } match($0, /\(layer [0-9.]+s\)/) {
         sum += substr($0, RSTART + 7, RLENGTH - 9) } END { printf "%.1f", sum }' "$1"
}

# command_seconds LOG: the seconds the timed build's RUN steps ran their commands: the
# floor of a build that is its apt, pip, npm and compilers. From plain progress, both
# builders' (`#ID [stage n/m] RUN …`, then `#ID DONE Xs`): BuildKit's step seconds
# (its commit of the step's files included), rbuild's minus the step's `(layer Ys)`.
command_seconds() {
  [ -f "$1" ] || { echo -; return 0; }
  awk '/^=== delivery/ { exit }
       $1 ~ /^#[0-9.]+$/ && !($1 in seen) { seen[$1] = 1; if ($0 ~ /^#[0-9.]+ \[[^]]*\] RUN /) run[$1] = 1 }
       $1 in run && $2 == "DONE" {
         t = $3; sub(/s$/, "", t); sum += t
         if (match($0, /\(layer [0-9.]+s\)/)) sum -= substr($0, RSTART + 7, RLENGTH - 9)
       }
       END { printf "%.1f", sum }' "$1"
}

print_comparison() {
  local row c bk rb layers rb_cmds bk_cmds bk_runs rb_runs
  echo
  echo "Cold builds, empty build cache, bases local (seconds of the build command, median of"
  echo "$COMPARE_RUNS run(s); layers: of rbuild's, the seconds its steps spent making layers;"
  echo "cmds: the seconds the RUN steps ran their commands, rbuild's and BuildKit's, summed"
  echo "over stages: the floor of builds that are their own apt, pip, npm and compilers where"
  echo "stages do not overlap; rb/cmd: rbuild's seconds over the lower of the two):"
  printf '%-34s %9s %9s %6s %7s %9s %9s %7s   %s\n' Dockerfile BuildKit rbuild ratio layers \
    "cmds rb" "cmds bk" "rb/cmd" "runs (BuildKit; rbuild)"
  for row in "${COMPARE_ROWS[@]}"; do
    read -r c bk rb layers rb_cmds bk_cmds bk_runs rb_runs <<<"$row"
    printf '%-34s %9s %9s %6s %7s %9s %9s %7s   %s\n' "$c" "$bk" "$rb" \
      "$(awk -v a="$bk" -v b="$rb" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", b / a; else print "-" }')" \
      "${layers:--}" "$rb_cmds" "$bk_cmds" \
      "$(awk -v r="$rb" -v x="$rb_cmds" -v y="$bk_cmds" 'BEGIN { f = x + 0; if (y + 0 < f) f = y + 0
         if (f >= 0.5 && r + 0 > 0) printf "%.2f", r / f; else print "-" }')" \
      "$bk_runs; $rb_runs"
  done
}

# ------------------------------------------------------------------ main
T_START=$(now)
start_registry
make_bases
log "bases ready in $(elapsed "$T_START" "$(now)")s"
if [ "$COMPARE" = 1 ] || [ "$BUILDER" = buildkit ]; then
  # BuildKit finds FROM images in dockerd's store first: have them all there, the same
  # as in the registry (a pull of what is already there only checks the digest).
  for ref in "$DEBIAN_REF" "$DEBIAN_OCI_REF" "$PYTHON_REF" "$NODE_REF" "$GOLANG_REF"; do
    old=$(docker_id "$ref")
    "$DOCKER" pull -q "$ref" >/dev/null
    drop_replaced "$old" "$ref"
  done
fi
for c in "${SELECTED[@]}"; do
  run_case "$c"
done

echo
echo "realworld: $((${#SELECTED[@]} - FAILED))/${#SELECTED[@]} cases passed with $BUILDER in $(elapsed "$T_START" "$(now)")s"
printf '%s\n' "${RESULTS[@]}"
[ "$COMPARE" = 0 ] || print_comparison
[ "$FAILED" = 0 ]
