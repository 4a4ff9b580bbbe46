#!/usr/bin/env python3
"""Writes contrib/seccomp.json: podman's default seccomp profile
(/usr/share/containers/seccomp.json, containers-common) with the one system call a
rootless rbuild needs and that profile grants only to a container with CAP_SYS_ADMIN
moved into an unconditional rule: sethostname (each RUN step's UTS namespace is named
`buildkitsandbox`, as BuildKit's). Everything else rbuild calls (unshare, clone with
namespace flags, setns, mount, umount2, pivot_root, the new mount API) the default
profile already allows. Without CAP_SYS_ADMIN in the container it stays confined to
the namespaces rbuild makes: the kernel checks the capability in the user namespace
that owns the step's UTS namespace, so the container's own host name stays out of
reach.

usage: contrib/seccomp.py [DEFAULT-PROFILE] > contrib/seccomp.json
"""
import json
import sys

NEEDED = ["sethostname"]


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/containers/seccomp.json"
    with open(source) as f:
        profile = json.load(f)
    for rule in profile["syscalls"]:
        caps = rule.get("includes", {}).get("caps", []) + rule.get("excludes", {}).get("caps", [])
        if caps == ["CAP_SYS_ADMIN"]:
            rule["names"] = [n for n in rule["names"] if n not in NEEDED]
    profile["syscalls"].append(
        {"names": NEEDED, "action": "SCMP_ACT_ALLOW", "args": [], "comment": "rbuild: the host name of RUN steps' UTS namespaces",
         "includes": {}, "excludes": {}}
    )
    json.dump(profile, sys.stdout, indent=2)
    sys.stdout.write("\n")


main()
