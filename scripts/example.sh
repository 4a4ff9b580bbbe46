#!/usr/bin/env bash
# Builds rbuild and, with it, the example image in examples/hello (as root: the build
# mounts overlays). The image lands in the store (./target/example-store) as hello:1,
# and is exported as an OCI archive and as its root filesystem.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v pkg-config >/dev/null || { apt-get update -qq && apt-get install -y -qq pkg-config >/dev/null; }
cargo build --release --quiet
store=target/example-store
./target/release/rbuild --root "$store" build -t hello:1 \
  -o type=oci,dest=target/hello-oci.tar -o type=local,dest=target/hello-rootfs \
  examples/hello
./target/release/rbuild --root "$store" images
echo "root filesystem:"; find target/hello-rootfs | sort
