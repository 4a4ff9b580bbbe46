#!/usr/bin/env bash
# Builds rbuild's own image with rbuild: FROM scratch plus a root filesystem this
# script assembles as rootfs.tar in a context directory (see examples/image/Dockerfile;
# a tar because ADD keeps its entries' xattrs, the file capabilities, and COPY does not):
#   /usr/local/bin/rbuild          the binary (static: glibc with crt-static)
#   /usr/bin/newuidmap, newgidmap  from Debian's uidmap, with file capabilities
#                                  (cap_setuid+ep / cap_setgid+ep, as podman's image),
#                                  not setuid root: a setuid newuidmap opens uid_map as
#                                  root, which then needs CAP_SYS_ADMIN (no container
#                                  has it); with file capabilities it stays the user,
#                                  the namespace's owner
#   /usr/bin/pasta                 from Debian's passt: RUN's default network
#   /lib*/...                      the shared libraries of the three helpers (and of
#                                  the binary, when it is not static)
#   /etc/ssl/certs/ca-certificates.crt, /etc/passwd, /etc/group
#   /etc/subuid, /etc/subgid       rbuild:1:999 and rbuild:1001:64535, as podman's
#                                  image: every id of a 65536-id user namespace but
#                                  the user's, so it also runs in a Kubernetes pod
#                                  with hostUsers: false (rbuild maps all ranges)
#   /home/rbuild, /tmp             the user's home (HOME) and a sticky /tmp
# No shell, no package manager. The image runs as user rbuild (1000).
#
# usage: scripts/image.sh [--binary PATH] [--tag REF] [--root STORE] [--shell]
#                         [-- BUILD-ARGS...]
#   --binary PATH  the rbuild binary to ship (default: build a static release binary,
#                  target/x86_64-unknown-linux-gnu/release/rbuild); a dynamic binary
#                  (a debug build, as the tests use) gets its libraries copied too
#   --tag REF      the image name (default rbuild:latest)
#   --root STORE   the store of the rbuild that builds the image
#   --shell        add a static busybox as /bin/sh (and its applets): for CI systems
#                  that run a job's script with the image's shell (GitLab CI)
#   BUILD-ARGS     passed to `rbuild build` (e.g. --push, -o type=oci,dest=rbuild.tar)
# Needs root (setcap on the helpers' copies), setcap (libcap2-bin), GNU tar, uidmap,
# passt, ca-certificates and strip (binutils).
set -euo pipefail
cd "$(dirname "$0")/.."

binary= tag=rbuild:latest root=() shell=
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --root) root=(--root "$2"); shift 2 ;;
    --shell) shell=1; shift ;;
    --) shift; break ;;
    *) echo "error: unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done

for tool in setcap strip newuidmap newgidmap pasta; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install libcap2-bin binutils uidmap passt)" >&2; exit 1; }
done
[ -f /etc/ssl/certs/ca-certificates.crt ] || { echo "error: /etc/ssl/certs/ca-certificates.crt not found (apt-get install ca-certificates)" >&2; exit 1; }

if [ -z "$binary" ]; then
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --quiet --target x86_64-unknown-linux-gnu
  binary=target/x86_64-unknown-linux-gnu/release/rbuild
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/rbuild-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
rootfs=$ctx/rootfs
mkdir -p "$rootfs"/{usr/local/bin,usr/bin,etc/ssl/certs,tmp} "$ctx/home"

# copy FILE [DEST]: a file at the same path (or DEST) under the root filesystem, with
# the libraries ldd reports (nothing for a static file).
copy() {
  local dest=$rootfs${2:-$1}
  mkdir -p "$(dirname "$dest")"
  cp -L "$1" "$dest"
  # (a static file: ldd fails and grep finds nothing, neither an error here)
  { ldd "$1" 2>/dev/null || true; } | { grep -o '/[^ ]*' || true; } | while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -Ln "$lib" "$rootfs$lib"
  done
}
copy "$binary" /usr/local/bin/rbuild
copy /usr/bin/newuidmap
copy /usr/bin/newgidmap
copy "$(readlink -f /usr/bin/pasta)" /usr/bin/pasta
chmod 0755 "$rootfs"/usr/bin/* "$rootfs/usr/local/bin/rbuild"
# The image needs no debug information (the release profile keeps line tables).
strip --strip-debug "$rootfs/usr/local/bin/rbuild"
setcap cap_setuid+ep "$rootfs/usr/bin/newuidmap"
setcap cap_setgid+ep "$rootfs/usr/bin/newgidmap"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
if [ -n "$shell" ]; then
  [ -x /bin/busybox ] || { echo "error: --shell needs /bin/busybox (apt-get install busybox-static)" >&2; exit 1; }
  mkdir -p "$rootfs/bin"
  copy /bin/busybox
  for applet in $(/bin/busybox --list); do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
  done
fi
chmod 1777 "$rootfs/tmp"

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
rbuild:x:1000:1000:rbuild:/home/rbuild:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
rbuild:x:1000:
nogroup:x:65534:
EOF
printf 'rbuild:1:999\nrbuild:1001:64535\n' >"$rootfs/etc/subuid"
cp "$rootfs/etc/subuid" "$rootfs/etc/subgid"
tar --create --file "$ctx/rootfs.tar" --directory "$rootfs" --xattrs \
  --xattrs-include=security.capability --numeric-owner --owner=0 --group=0 .
rm -rf "$rootfs"
cp examples/image/Dockerfile "$ctx/Dockerfile"

rbuild=${RBUILD:-$binary}
"$rbuild" "${root[@]}" build -t "$tag" "$@" "$ctx"
