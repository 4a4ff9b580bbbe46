#!/usr/bin/env bash
# Checks examples/ci/k8s-job.yaml the closest way a machine without Kubernetes allows:
# its pod template translated into the `podman run` a kubelet with runc would make:
# the same user, capabilities, privilege escalation, procMount (Unmasked: no masked or
# read-only /proc paths, podman's unmask=ALL), seccomp profile (the Localhost profile,
# contrib/seccomp.json installed as rbuild-seccomp.json), volumes (the store on an
# emptyDir, the credentials Secret as config.json), environment and arguments.
# Substituted for the check: the image (rbuild's, built by scripts/image.sh from
# --binary), the context (a busybox build on a bind mount), the destination (REGISTRY,
# default 127.0.0.1:5000) and the pod's network (the host's, to reach it).
# Not `podman kube play`: podman 4.3 ignores procMount, and its hostUsers
# (--userns=auto) cannot mount /sys in the host's network. So hostUsers: false is not
# checked here (it changes nothing rbuild needs beyond the ranges of the image's
# /etc/subuid, which fit the pod's 65536 ids).
#
# usage: examples/ci/check-k8s.sh [--binary PATH]   (as root; needs podman, skopeo,
#        python3-yaml; --binary defaults to target/debug/rbuild)
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=target/debug/rbuild
[ "${1:-}" = --binary ] && binary=$2
registry=${REGISTRY:-127.0.0.1:5000}
work=$(mktemp -d "${TMPDIR:-/tmp}/rbuild-k8s.XXXXXX")
pm=(podman --root "$work/podman-root" --runroot "$work/podman-run" --storage-driver vfs --events-backend none)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"

scripts/image.sh --binary "$binary" --root "$work/store" --tag localhost/rbuild:check \
  -- -q -o "type=oci,dest=$work/rbuild.tar" >/dev/null
"${pm[@]}" load -q -i "$work/rbuild.tar"

mkdir -p "$work/seccomp" "$work/ctx" "$work/docker" "$work/emptydir-store"
chmod 0777 "$work/emptydir-store"   # as the kubelet makes an emptyDir
cp contrib/seccomp.json "$work/seccomp/rbuild-seccomp.json"
cp /bin/busybox "$work/ctx/"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN echo built by a Job > /hello\n' >"$work/ctx/Dockerfile"
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$registry" "$(printf ci:unused | base64)" >"$work/docker/config.json"
chmod -R a+rX "$work/ctx" "$work/docker"

mapfile -t run < <(python3 examples/ci/k8s_to_podman.py examples/ci/k8s-job.yaml "$work" "$registry")
echo "== podman run --rm --network host ${run[*]}"
"${pm[@]}" run --rm --network host "${run[@]}" 2>&1 | grep -v '^#' \
  || { echo "error: the build in the Job's container failed" >&2; exit 1; }
skopeo inspect --tls-verify=false "docker://$registry/rbuild-check/app:1" --format 'pushed: {{.Name}}@{{.Digest}}'
