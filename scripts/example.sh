#!/usr/bin/env bash
# Builds rbuild, then the example images, as root (builds mount overlays and run RUN
# steps in namespaces), with no registry: examples/app (a busybox base made from
# Debian's busybox-static, then RUN, a cache mount, COPY --from, USER) and
# examples/hello (FROM scratch). Images land in the store target/example-store.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || need+=(busybox-static)
command -v pasta >/dev/null || need+=(passt)   # RUN's default network
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet
store=target/example-store
ctx=target/example-app
rm -rf "$ctx" && mkdir -p "$ctx" && cp -r examples/app/. "$ctx/" && cp /bin/busybox "$ctx/busybox"
./target/release/rbuild --root "$store" build -t app:1 -o type=local,dest=target/app-rootfs "$ctx"
./target/release/rbuild --root "$store" build -t hello:1 -o type=oci,dest=target/hello-oci.tar examples/hello
./target/release/rbuild --root "$store" images
echo "== running the app image's entry point in its exported root filesystem:"
chroot --userspec=1000:1000 target/app-rootfs /app/app.sh
