#!/usr/bin/env bash
# Builds rbuild and runs it on the example in examples/hello.
# Until the image builder lands (issue 3), this parses the example and prints its
# syntax tree in BuildKit's dump format and as typed JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
./target/release/rbuild parse -f examples/hello/Dockerfile
./target/release/rbuild parse --format json -f examples/hello/Dockerfile > target/hello.json
echo "typed JSON tree written to target/hello.json"
