//! Capability sets: Docker's default set and how it is split between the sets of a
//! root and a non-root command (moby `oci/defaults.go` `DefaultCapabilities` and
//! `oci.SetCapabilities`).

/// Docker's default capabilities, by name and number (`linux/capability.h`).
pub(super) const DOCKER_DEFAULT: [(&str, u32); 14] = [
    ("CAP_CHOWN", 0),
    ("CAP_DAC_OVERRIDE", 1),
    ("CAP_FSETID", 4),
    ("CAP_FOWNER", 3),
    ("CAP_MKNOD", 27),
    ("CAP_NET_RAW", 13),
    ("CAP_SETGID", 6),
    ("CAP_SETUID", 7),
    ("CAP_SETFCAP", 31),
    ("CAP_SETPCAP", 8),
    ("CAP_NET_BIND_SERVICE", 10),
    ("CAP_SYS_CHROOT", 18),
    ("CAP_KILL", 5),
    ("CAP_AUDIT_WRITE", 29),
];

/// [`DOCKER_DEFAULT`] as a bit mask (`00000000a80425fb` in `/proc/self/status`).
pub(super) const DOCKER_DEFAULT_MASK: u64 = {
    let mut mask = 0u64;
    let mut i = 0;
    while i < DOCKER_DEFAULT.len() {
        mask |= 1 << DOCKER_DEFAULT[i].1;
        i += 1;
    }
    mask
};

/// Whether the capability called `name` (`CAP_...`) is in [`DOCKER_DEFAULT`].
pub(super) fn in_default_set(name: &str) -> bool {
    DOCKER_DEFAULT.iter().any(|(n, _)| *n == name)
}

/// The capability sets of the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CapSets {
    /// The bounding set: what any later `execve` can ever gain.
    pub bounding: u64,
    /// Effective capabilities.
    pub effective: u64,
    /// Permitted capabilities.
    pub permitted: u64,
    /// Inheritable capabilities (empty since moby 20.10.14, CVE-2022-24769).
    pub inheritable: u64,
}

impl CapSets {
    /// Docker's sets for a command running as `uid`: root gets the default set as
    /// bounding, effective and permitted; any other user only the bounding set, which
    /// is what `execve` would leave it anyway.
    pub(super) fn docker_default(uid: u32) -> CapSets {
        let granted = if uid == 0 { DOCKER_DEFAULT_MASK } else { 0 };
        CapSets {
            bounding: DOCKER_DEFAULT_MASK,
            effective: granted,
            permitted: granted,
            inheritable: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mask_is_dockers() {
        assert_eq!(DOCKER_DEFAULT_MASK, 0xa804_25fb);
        assert!(in_default_set("CAP_SYS_CHROOT"));
        assert!(!in_default_set("CAP_SYS_ADMIN"));
    }

    #[test]
    fn non_root_gets_only_the_bounding_set() {
        let root = CapSets::docker_default(0);
        assert_eq!((root.effective, root.permitted), (0xa804_25fb, 0xa804_25fb));
        let user = CapSets::docker_default(1000);
        assert_eq!(user.bounding, 0xa804_25fb);
        assert_eq!(
            (user.effective, user.permitted, user.inheritable),
            (0, 0, 0)
        );
    }
}
