//! The device allowlist of a v1 step cgroup: deny everything, then allow what runc
//! allows every container (`libcontainer/specconv` `AllowedDevices`): `mknod` of any
//! device (using one is what is checked), the nodes of the sandbox's `/dev` and the
//! pseudo-terminals. On top of it the sandbox mounts a fresh tmpfs on `/dev` holding
//! only those nodes.

/// Written to `devices.deny` first: every device, every access.
pub(super) const DENY_ALL: &str = "a";

/// Written to `devices.allow` one by one, after [`DENY_ALL`].
pub(super) const ALLOW: [&str; 10] = [
    "c *:* m",     // mknod of any character device
    "b *:* m",     // mknod of any block device
    "c 1:3 rwm",   // /dev/null
    "c 1:8 rwm",   // /dev/random
    "c 1:7 rwm",   // /dev/full
    "c 5:0 rwm",   // /dev/tty
    "c 1:5 rwm",   // /dev/zero
    "c 1:9 rwm",   // /dev/urandom
    "c 136:* rwm", // /dev/pts/*
    "c 5:2 rwm",   // /dev/ptmx
];
