#!/bin/sh
# The example's entry point: prints what the build produced.
echo "running as $(id -un) in $(pwd)"
for f in /app/data/*.sorted; do echo "== $f"; cat "$f"; done
