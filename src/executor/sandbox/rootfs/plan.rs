//! The mount plan inside the new root: what [`apply`](super::apply) does after
//! `pivot_root`, as a list of [`Step`]s made from the spec alone (pure, unit-tested).

use rustix::mount::MountFlags;

use super::super::{Mount, SandboxSpec};
use super::{MASKED_PATHS, READONLY_PATHS};

/// The device nodes of `/dev`: name, major, minor (all `0666`, root-owned). Each is
/// bound onto itself and only those mounts allow devices (`/dev` itself is `nodev`).
/// In a user namespace, where `mknod` is refused, the host's nodes are bound instead
/// (see [`HostTrees`]).
pub(crate) const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The symlinks of `/dev`: link target, link path.
const DEV_LINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
];

/// Where the generated `/etc` files are written before being bind-mounted (on the
/// `/dev` tmpfs; removed again once mounted).
pub(super) const STAGE: &str = "/dev/.rbuild-etc";

/// One step of the filesystem setup after `pivot_root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Make sure a mount point exists: `strict` ones must be real directories.
    Target {
        path: String,
        dir: bool,
        strict: bool,
    },
    /// Mount a filesystem on a target.
    Mount {
        fstype: &'static str,
        target: String,
        flags: MountFlags,
        data: String,
    },
    Mkdir {
        path: String,
        mode: u32,
    },
    Mknod {
        path: String,
        major: u32,
        minor: u32,
    },
    Symlink {
        target: &'static str,
        link: &'static str,
    },
    WriteFile {
        path: String,
        contents: Vec<u8>,
    },
    /// Recursive bind of a path inside the root onto a target.
    Bind {
        source: String,
        target: String,
    },
    /// Add `flags` to a mount and every mount below it.
    Restrict {
        target: String,
        flags: MountFlags,
    },
    /// Let the one mount at `target` (a node of [`DEVICES`]) open devices.
    AllowDevices {
        target: String,
    },
    /// Attach the `tree`-th cloned host bind source.
    Attach {
        tree: usize,
        target: String,
    },
    /// Hide a path if it exists (see [`MASKED_PATHS`]).
    Mask {
        path: &'static str,
    },
    /// Make a path read-only if it exists (see [`READONLY_PATHS`]).
    ReadOnlyPath {
        path: &'static str,
    },
    /// Remove a staging file or directory.
    Remove {
        path: String,
        dir: bool,
    },
}

/// In a user namespace (a rootless build) a new procfs may only be mounted while the
/// host's is still in the mount namespace, `mknod` is refused, and a sysfs only
/// belongs to a network namespace of one's own: so `enter` makes these before
/// `pivot_root` as detached trees, numbered after the bind sources: the host's
/// [`DEVICES`] nodes, then the procfs, then the sysfs (or the host's `/sys`, read-only,
/// under the host's network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostTrees {
    /// The index of the first of them (the number of bind sources).
    pub(crate) first: usize,
    /// Whether group 5 (`tty`, the owner of `/dev/pts` nodes) is mapped: not without
    /// subordinate ids, where the pts nodes keep the creator's group.
    pub(crate) tty_group: bool,
}

impl HostTrees {
    fn device(self, k: usize) -> usize {
        self.first + k
    }
    fn proc(self) -> usize {
        self.first + DEVICES.len()
    }
    fn sys(self) -> usize {
        self.first + DEVICES.len() + 1
    }
}

/// The steps for `spec`; `bind_is_dir[i]` tells whether the `i`-th bind mount's source
/// is a directory; `host` is set in a user namespace.
pub(crate) fn plan(spec: &SandboxSpec, bind_is_dir: &[bool], host: Option<HostTrees>) -> Vec<Step> {
    let mut s = Vec::new();
    proc_and_dev(&mut s, spec, host);
    etc_files(&mut s, spec);
    step_mounts(&mut s, spec, bind_is_dir);
    s.extend(MASKED_PATHS.map(|path| Step::Mask { path }));
    s.extend(READONLY_PATHS.map(|path| Step::ReadOnlyPath { path }));
    s
}

fn target(path: &str, dir: bool, strict: bool) -> Step {
    Step::Target {
        path: path.to_owned(),
        dir,
        strict,
    }
}

fn mount(fstype: &'static str, target: &str, flags: MountFlags, data: &str) -> Step {
    Step::Mount {
        fstype,
        target: target.to_owned(),
        flags,
        data: data.to_owned(),
    }
}

fn attach(tree: usize, target: &str) -> Step {
    Step::Attach {
        tree,
        target: target.to_owned(),
    }
}

fn mkdir(path: &str, mode: u32) -> Step {
    Step::Mkdir {
        path: path.to_owned(),
        mode,
    }
}

/// `/proc`, `/dev` (its nodes, links, `pts`, `shm`, `mqueue`), `/sys`, and the
/// staging directory of the `/etc` files.
fn proc_and_dev(s: &mut Vec<Step>, spec: &SandboxSpec, host: Option<HostTrees>) {
    use MountFlags as F;
    let nsd = F::NOSUID | F::NODEV | F::NOEXEC;
    s.push(target("/proc", true, true));
    s.push(match host {
        Some(h) => attach(h.proc(), "/proc"),
        None => mount("proc", "/proc", nsd, ""),
    });
    s.extend([
        target("/dev", true, true),
        mount(
            "tmpfs",
            "/dev",
            F::NOSUID | F::NODEV | F::STRICTATIME,
            "mode=755,size=65536k",
        ),
    ]);
    for (k, (name, major, minor)) in DEVICES.into_iter().enumerate() {
        let path = format!("/dev/{name}");
        match host {
            Some(h) => s.extend([
                Step::WriteFile {
                    path: path.clone(),
                    contents: Vec::new(),
                },
                attach(h.device(k), &path),
            ]),
            None => s.extend([
                Step::Mknod {
                    path: path.clone(),
                    major,
                    minor,
                },
                Step::Bind {
                    source: path.clone(),
                    target: path.clone(),
                },
            ]),
        }
        s.push(Step::AllowDevices { target: path });
    }
    for (target, link) in DEV_LINKS {
        s.push(Step::Symlink { target, link });
    }
    let shm = format!("mode=1777,size={}", spec.limits.shm_size);
    s.extend([
        mkdir("/dev/pts", 0o755),
        mount(
            "devpts",
            "/dev/pts",
            F::NOSUID | F::NOEXEC,
            match host {
                Some(h) if !h.tty_group => "newinstance,ptmxmode=0666,mode=0620",
                _ => "newinstance,ptmxmode=0666,mode=0620,gid=5",
            },
        ),
        mkdir("/dev/shm", 0o1777),
        mount("tmpfs", "/dev/shm", nsd, &shm),
        mkdir("/dev/mqueue", 0o755),
        mount("mqueue", "/dev/mqueue", nsd, ""),
        target("/sys", true, true),
        match host {
            Some(h) => attach(h.sys(), "/sys"),
            None => mount("sysfs", "/sys", nsd | F::RDONLY, ""),
        },
        mkdir(STAGE, 0o755),
    ]);
}

/// `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`: written to the staging
/// directory, bound read-only over the image's, the staging copies removed.
fn etc_files(s: &mut Vec<Step>, spec: &SandboxSpec) {
    use MountFlags as F;
    let hostname = format!("{}\n", spec.hostname);
    let files = [
        ("hosts", &spec.hosts),
        ("resolv.conf", &spec.resolv_conf),
        ("hostname", &hostname),
    ];
    for (name, contents) in files {
        let (staged, dest) = (format!("{STAGE}/{name}"), format!("/etc/{name}"));
        s.push(Step::WriteFile {
            path: staged.clone(),
            contents: contents.as_bytes().to_vec(),
        });
        s.push(target(&dest, false, false));
        s.push(Step::Bind {
            source: staged.clone(),
            target: dest.clone(),
        });
        s.push(Step::Restrict {
            target: dest,
            flags: F::NOSUID | F::NODEV | F::NOEXEC | F::RDONLY,
        });
        s.push(Step::Remove {
            path: staged,
            dir: false,
        });
    }
    s.push(Step::Remove {
        path: STAGE.to_owned(),
        dir: true,
    });
}

/// The step's own mounts (`RUN --mount`): binds attached from their cloned trees,
/// tmpfs mounted.
fn step_mounts(s: &mut Vec<Step>, spec: &SandboxSpec, bind_is_dir: &[bool]) {
    let mut tree = 0;
    for m in &spec.mounts {
        match m {
            Mount::Bind { target: dest, .. } => {
                let is_dir = bind_is_dir.get(tree).copied().unwrap_or(true);
                s.push(target(dest, is_dir, false));
                // Read-only, nosuid and nodev were set on the whole cloned tree
                // before it was attached (see `enter`).
                s.push(Step::Attach {
                    tree,
                    target: dest.clone(),
                });
                tree += 1;
            }
            Mount::Tmpfs { target: dest, size } => {
                s.push(target(dest, true, false));
                let data = size.map(|n| format!("size={n}")).unwrap_or_default();
                s.push(mount(
                    "tmpfs",
                    dest,
                    MountFlags::NOSUID | MountFlags::NODEV,
                    &data,
                ));
            }
        }
    }
}
