#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs what the tests need,
# then runs formatting, lints, docs and every test. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the build and the tests use (installed only when missing).
# busybox: the sandbox tests' rootfs; image readers; ADD archive compressors; ssh-agent for
# RUN --mount=type=ssh; registry tests: the CNCF registry (docker-registry), bcrypt htpasswd
# (apache2-utils), certificates and token keys (openssl), curl; GNU time (max RSS of
# builds fed hostile layers); git (git build contexts, served by git-daemon); man-db (the
# manual pages render); containerd (pulls and mounts a zstd image rbuild pushed); tmux (the
# terminal progress view, read back from a real terminal); passt (pasta: the default network
# of RUN steps); iproute2 and nftables (its veth path, tests/it/network_veth.rs); uidmap
# (newuidmap/newgidmap: rootless builds with subordinate ids);
# libcap2-bin and ca-certificates (scripts/image.sh: rbuild's own image, tests/it/image.rs).
# qemu-user-static: foreign-platform RUN steps (tests/it/platform.rs), registered per step.
packages=(pkg-config busybox-static skopeo umoci oci-image-tool podman bzip2 xz-utils zstd openssh-client
          docker-registry apache2-utils openssl curl time git man-db containerd tmux passt iproute2 nftables
          uidmap libcap2-bin ca-certificates qemu-user-static)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# The multi-platform base of tests/it/platform.rs is Debian's busybox-static for amd64
# and arm64, fetched with `apt-get download`: the arm64 architecture must be known to apt.
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ "$need_update" = 1 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then apt-get install -y -qq "${missing[@]}" >/dev/null; fi
fi

# Rootless tests (tests/it/rootless.rs) run rbuild as these users: rbuild-test with
# subordinate ids, rbuild-nosub without. RUN's default network needs /dev/net/tun open to
# them (Debian's udev makes it 0666; a machine without udev leaves it 0600).
if ! id rbuild-test >/dev/null 2>&1; then
  useradd --uid 2345 --user-group --no-create-home --shell /usr/sbin/nologin rbuild-test
fi
if ! grep -q '^rbuild-test:' /etc/subuid || ! grep -q '^rbuild-test:' /etc/subgid; then
  usermod --add-subuids 200000-265535 --add-subgids 200000-265535 rbuild-test
fi
if ! id rbuild-nosub >/dev/null 2>&1; then
  useradd --uid 2346 --user-group --no-create-home --shell /usr/sbin/nologin \
    -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 rbuild-nosub
fi
if [ -c /dev/net/tun ]; then chmod 0666 /dev/net/tun; fi

if [ ! -f ../shared/conformance/README.md ]; then
  echo "error: ../shared/conformance not found beside the repository (conformance tests need it)" >&2
  exit 1
fi

set -x
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items --quiet
cargo test --lib --bins --tests --quiet
# The conformance corpora print their "N passed, M failed" tallies.
cargo test --quiet --test conformance -- --nocapture --test-threads=1 2>&1 | grep -E "passed, [0-9]+ failed|^test result"
