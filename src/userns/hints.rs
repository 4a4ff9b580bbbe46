//! What a container must grant a rootless rbuild, said where a privilege is missing.
//!
//! Inside a container, a refused user namespace, id map, host name, procfs or
//! `/dev/net/tun` is usually an option of the container, not a setting of the host:
//! each [`Missing`] privilege has one hint naming the option of the runtime found
//! ([`Runtime::detect`]), or the host's remedy outside a container. The options are
//! the ones the README's "Rootless and CI" section lists, all checked on podman 4.3
//! and Docker 20.10 (`tests/it/image.rs`, `examples/ci/check-k8s.sh`).

/// The container runtime this process runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// podman (it leaves `/run/.containerenv`).
    Podman,
    /// Docker (it leaves `/.dockerenv`).
    Docker,
    /// A Kubernetes pod (the kubelet sets `KUBERNETES_SERVICE_HOST`).
    Kubernetes,
}

impl Runtime {
    /// The runtime this process runs under, or `None` on a host (or an unknown one).
    pub fn detect() -> Option<Runtime> {
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            Some(Runtime::Kubernetes)
        } else if std::path::Path::new("/run/.containerenv").exists() {
            Some(Runtime::Podman)
        } else if std::path::Path::new("/.dockerenv").exists() {
            Some(Runtime::Docker)
        } else {
            None
        }
    }
}

/// A privilege a rootless build needs and was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// `unshare(CLONE_NEWUSER)`.
    UserNamespace,
    /// `newuidmap`/`newgidmap` writing the maps.
    IdMap,
    /// `sethostname` in a step's UTS namespace.
    HostName,
    /// A new procfs for a step's pid namespace.
    Procfs,
    /// `/dev/net/tun` for `pasta`.
    Tun,
}

/// The hint for `missing` where this process runs.
pub fn hint(missing: Missing) -> String {
    text(missing, Runtime::detect())
}

/// The seccomp part shared by the hints: where the shipped profile goes.
fn seccomp_option(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Kubernetes => {
            "securityContext.seccompProfile {type: Localhost, localhostProfile: \
             <contrib/seccomp.json installed on the node>} (RuntimeDefault refuses it)"
        }
        Runtime::Podman | Runtime::Docker => {
            "--security-opt seccomp=contrib/seccomp.json (the default profile refuses it \
             without CAP_SYS_ADMIN)"
        }
    }
}

/// The hint for `missing` under `runtime` (`None`: on a host).
fn text(missing: Missing, runtime: Option<Runtime>) -> String {
    let Some(rt) = runtime else {
        return host_text(missing).to_owned();
    };
    let inside = match rt {
        Runtime::Podman => "inside a podman container",
        Runtime::Docker => "inside a Docker container",
        Runtime::Kubernetes => "inside a Kubernetes pod",
    };
    let what = match missing {
        Missing::UserNamespace => format!(
            "the seccomp profile must allow it: {}; with it, the host's sysctl \
             user.max_user_namespaces may still be 0",
            seccomp_option(rt)
        ),
        Missing::HostName => format!(
            "the seccomp profile must allow sethostname: {}",
            seccomp_option(rt)
        ),
        Missing::IdMap => id_map_text(rt).to_owned(),
        Missing::Procfs => format!(
            "the container masks parts of /proc, and the kernel makes a new procfs only \
             where one is wholly visible: {}",
            match rt {
                Runtime::Podman => "run with --security-opt unmask=/proc/*",
                Runtime::Docker => "run with --security-opt systempaths=unconfined",
                Runtime::Kubernetes => {
                    "set securityContext.procMount: Unmasked (Kubernetes wants hostUsers: \
                     false with it)"
                }
            }
        ),
        Missing::Tun => match rt {
            Runtime::Kubernetes => "a pod gets no /dev/net/tun: build with --network none \
                                    or --network host (the pod's network)"
                .to_owned(),
            _ => "run the container with --device /dev/net/tun, or build with --network \
                  none or --network host (the container's network)"
                .to_owned(),
        },
    };
    format!("{inside}, {what} (README: \"Rootless and CI\")")
}

/// What `newuidmap`/`newgidmap` need in a container.
fn id_map_text(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Kubernetes => {
            "newuidmap and newgidmap need file capabilities (cap_setuid+ep, \
             cap_setgid+ep: rbuild's image has them), allowPrivilegeEscalation not false, \
             and SETUID and SETGID not dropped from the capabilities"
        }
        Runtime::Podman | Runtime::Docker => {
            "newuidmap and newgidmap need file capabilities (cap_setuid+ep, \
             cap_setgid+ep: rbuild's image has them; setuid-root copies need \
             CAP_SYS_ADMIN), no --security-opt no-new-privileges, and CAP_SETUID and \
             CAP_SETGID kept (the default)"
        }
    }
}

/// The remedy on a host.
fn host_text(missing: Missing) -> &'static str {
    match missing {
        Missing::UserNamespace => {
            "are they allowed? sysctl user.max_user_namespaces, \
             kernel.unprivileged_userns_clone; or run as root"
        }
        Missing::IdMap => "check the user's lines in /etc/subuid and /etc/subgid",
        Missing::HostName | Missing::Procfs => {
            "rbuild is in a user namespace it did not make (an unknown container?): \
             see the README's \"Rootless and CI\""
        }
        Missing::Tun => {
            "as root, `chmod 0666 /dev/net/tun` (Debian's default), or build with \
             --network host or --network none"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_runtime_gets_its_own_option() {
        let podman = text(Missing::Procfs, Some(Runtime::Podman));
        assert!(podman.contains("unmask=/proc/*"), "{podman}");
        let docker = text(Missing::Procfs, Some(Runtime::Docker));
        assert!(docker.contains("systempaths=unconfined"), "{docker}");
        let k8s = text(Missing::HostName, Some(Runtime::Kubernetes));
        assert!(
            k8s.contains("Localhost") && !k8s.contains("--security-opt"),
            "{k8s}"
        );
        let tun = text(Missing::Tun, Some(Runtime::Docker));
        assert!(tun.contains("--device /dev/net/tun"), "{tun}");
    }

    #[test]
    fn a_host_gets_the_host_remedy() {
        let host = text(Missing::UserNamespace, None);
        assert!(host.contains("max_user_namespaces") && !host.contains("container"));
        assert!(text(Missing::Tun, None).contains("chmod 0666"));
    }
}
