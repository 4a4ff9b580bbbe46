#!/usr/bin/env python3
"""Prints, one per line, the `podman run` arguments a kubelet with runc would give the
container of examples/ci/k8s-job.yaml (user, seccomp, privilege escalation, procMount,
capabilities, volumes, environment, image and arguments), with the check's
substitutions (see check-k8s.sh).

usage: k8s_to_podman.py JOB.yaml WORKDIR REGISTRY
"""
import sys

import yaml

job, work, registry = yaml.safe_load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
spec = job["spec"]["template"]["spec"]
pod_sc, (container,) = spec["securityContext"], spec["containers"]
sc = container["securityContext"]
out = ["--user", "{}:{}".format(pod_sc["runAsUser"], pod_sc["runAsGroup"])]
profile = pod_sc["seccompProfile"]
assert profile["type"] == "Localhost", profile
out += ["--security-opt", "seccomp={}/seccomp/{}".format(work, profile["localhostProfile"])]
if not sc.get("allowPrivilegeEscalation", True):
    out += ["--security-opt", "no-new-privileges"]
if sc.get("procMount") == "Unmasked":
    out += ["--security-opt", "unmask=ALL"]
out += ["--cap-drop=" + c for c in sc["capabilities"].get("drop", [])]
out += ["--cap-add=" + c for c in sc["capabilities"].get("add", [])]
volumes = {v["name"]: v for v in spec["volumes"]}
for mount in container["volumeMounts"]:
    # an emptyDir: a fresh directory; the Secret: a directory with its items
    kind = "emptydir-store" if "emptyDir" in volumes[mount["name"]] else "docker"
    ro = ",ro" if mount.get("readOnly") else ""
    out += ["--mount", "type=bind,source={}/{},destination={}{}".format(work, kind, mount["mountPath"], ro)]
out += ["--mount", "type=bind,source={}/ctx,destination=/ctx,ro".format(work)]
for env in container.get("env", []):
    out += ["--env", "{}={}".format(env["name"], env["value"])]
args = list(container["args"])
args[args.index("-t") + 1] = registry + "/rbuild-check/app:1"
args[-1] = "/ctx"
print("\n".join(out + ["localhost/rbuild:check"] + args))
