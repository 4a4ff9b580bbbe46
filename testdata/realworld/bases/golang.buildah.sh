#!/usr/bin/env bash
# Base "realworld/golang:1.19", made by buildah without a Dockerfile (buildah from + run +
# config + commit), the way images are scripted in the wild. Like Docker Hub's
# golang:1.19-bookworm it has gcc and make besides Go and GOPATH=/go; it is an OCI image.
# Usage: golang.buildah.sh FROM_REF LOCAL_NAME LOG
set -euo pipefail
from=$1 name=$2 log=$3
ctr=$(buildah from --quiet --pull-always --tls-verify=false "docker://$from")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah run --network host "$ctr" -- sh -c '
  apt-get update &&
  apt-get install -y --no-install-recommends golang-go gcc libc6-dev make &&
  rm -rf /var/lib/apt/lists/* &&
  mkdir -p /go/src /go/bin && chmod -R 1777 /go' >"$log" 2>&1 \
  || { tail -20 "$log" >&2; exit 1; }
buildah config --env GOPATH=/go \
  --env PATH=/go/bin:/usr/lib/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --workingdir /go --cmd bash "$ctr"
buildah commit --quiet "$ctr" "$name" >/dev/null
buildah rm "$ctr" >/dev/null
trap - EXIT
buildah rmi "$from" >/dev/null 2>&1 || true # pulled by `buildah from`
