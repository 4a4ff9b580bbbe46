//! The device allowlist of a step cgroup: deny everything, then allow what runc
//! allows every container (`libcontainer/specconv` `AllowedDevices`): `mknod` of any
//! device (using one is what is checked), the nodes of the sandbox's `/dev` and the
//! pseudo-terminals. On top of it the sandbox mounts a fresh tmpfs on `/dev` holding
//! only those nodes.
//!
//! One list, two renderings: the lines of the v1 `devices` controller
//! (`devices.allow`, see `v1.rs`) and the cgroup v2 eBPF device program
//! (`devices_bpf/`).

use std::fmt;

/// Written to `devices.deny` first (v1): every device, every access.
pub(super) const DENY_ALL: &str = "a";

/// A device's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A character device (`c`).
    Char,
    /// A block device (`b`).
    Block,
}

impl Kind {
    /// The letter of a v1 rule.
    fn letter(self) -> char {
        match self {
            Kind::Char => 'c',
            Kind::Block => 'b',
        }
    }
}

/// A set of accesses to a device. The bits are the kernel's (`DEVCG_ACC_*` of the v1
/// controller, `BPF_DEVCG_ACC_*` of a device program): `mknod` 1, read 2, write 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Access(u32);

impl Access {
    /// Creating a node (`mknod`).
    pub const MKNOD: Access = Access(1);
    /// Opening for reading.
    pub const READ: Access = Access(2);
    /// Opening for writing.
    pub const WRITE: Access = Access(4);
    /// Read, write and `mknod`.
    pub const RWM: Access = Access(7);

    /// The kernel's bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every access of `other` is in `self`.
    #[cfg(test)]
    pub fn contains(self, other: Access) -> bool {
        other.0 & !self.0 == 0
    }
}

impl fmt::Display for Access {
    /// `rwm`, in that order, as the v1 controller writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (access, letter) in [
            (Access::READ, "r"),
            (Access::WRITE, "w"),
            (Access::MKNOD, "m"),
        ] {
            if self.0 & access.0 != 0 {
                f.write_str(letter)?;
            }
        }
        Ok(())
    }
}

/// One allowed set of devices: a type, a major and minor number (`None`: any), and
/// the accesses granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rule {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

impl Rule {
    /// Device `major:minor`.
    const fn device(kind: Kind, major: u32, minor: u32, access: Access) -> Rule {
        Rule {
            kind,
            major: Some(major),
            minor: Some(minor),
            access,
        }
    }

    /// Every minor of `major`.
    const fn major(kind: Kind, major: u32, access: Access) -> Rule {
        Rule {
            kind,
            major: Some(major),
            minor: None,
            access,
        }
    }

    /// Every device of `kind`.
    const fn any(kind: Kind, access: Access) -> Rule {
        Rule {
            kind,
            major: None,
            minor: None,
            access,
        }
    }
}

impl fmt::Display for Rule {
    /// The v1 form: `c 1:3 rwm`, `c 136:* rwm`, `b *:* m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind.letter(),
            number(self.major),
            number(self.minor),
            self.access
        )
    }
}

/// What a step may do with devices; everything else is denied.
pub(super) const ALLOW: [Rule; 10] = [
    Rule::any(Kind::Char, Access::MKNOD),
    Rule::any(Kind::Block, Access::MKNOD),
    Rule::device(Kind::Char, 1, 3, Access::RWM), // /dev/null
    Rule::device(Kind::Char, 1, 8, Access::RWM), // /dev/random
    Rule::device(Kind::Char, 1, 7, Access::RWM), // /dev/full
    Rule::device(Kind::Char, 5, 0, Access::RWM), // /dev/tty
    Rule::device(Kind::Char, 1, 5, Access::RWM), // /dev/zero
    Rule::device(Kind::Char, 1, 9, Access::RWM), // /dev/urandom
    Rule::major(Kind::Char, 136, Access::RWM),   // /dev/pts/*
    Rule::device(Kind::Char, 5, 2, Access::RWM), // /dev/ptmx
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v1_lines_are_runc_s() {
        let lines: Vec<String> = ALLOW.iter().map(Rule::to_string).collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
            ]
        );
        let rw = Access(Access::READ.bits() | Access::WRITE.bits());
        assert_eq!(rw.to_string(), "rw");
        assert!(Access::RWM.contains(rw) && !rw.contains(Access::MKNOD));
    }
}
