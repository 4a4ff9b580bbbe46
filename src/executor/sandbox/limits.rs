//! What one step may use: the limits its cgroup enforces (memory, swap, CPU time,
//! CPUs, processes), the resource limits (`setrlimit`) of its command and the size of
//! its `/dev/shm`. Values are in the kernel's units (bytes, microseconds); the CLI
//! turns Docker's flag spellings into them.

use serde::{Deserialize, Serialize};

use super::cgroup::Controller;

/// `--shm-size` when not given: Docker's 64 MiB.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// `--pids-limit` when not given (the processes of a step, init included).
pub const DEFAULT_PIDS_LIMIT: u64 = 4096;

/// `--cpu-period` when only a quota (or `--cpus`) is given: the kernel's default CFS
/// period, 100 ms.
pub const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// The limits of one step. `Default` is "no limit" with Docker's 64 MiB `/dev/shm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory of all the step's processes together, in bytes (`--memory`).
    pub memory: Option<u64>,
    /// Memory plus swap (`--memory-swap`); `None` with a memory limit: as much swap
    /// as memory (Docker's default).
    pub memory_swap: Option<Swap>,
    /// CPU time per period, in microseconds (`--cpu-quota`, or `--cpus` × period).
    pub cpu_quota: Option<u64>,
    /// The CFS period, in microseconds (`--cpu-period`); the kernel's when `None`.
    pub cpu_period: Option<u64>,
    /// The CPUs the step may run on, in the kernel's list syntax (`0-3,6`).
    pub cpuset_cpus: Option<String>,
    /// Processes (and threads) of the step at most, init included; `None`: no limit.
    pub pids: Option<u64>,
    /// Resource limits of the command, applied before `execve`.
    pub ulimits: Vec<Ulimit>,
    /// Size of the `/dev/shm` tmpfs, in bytes (more than 0).
    pub shm_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: None,
            memory_swap: None,
            cpu_quota: None,
            cpu_period: None,
            cpuset_cpus: None,
            pids: None,
            ulimits: Vec::new(),
            shm_size: DEFAULT_SHM_SIZE,
        }
    }
}

/// `--memory-swap`: Docker's total of memory and swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Swap {
    /// `-1`: swap is not limited.
    Unlimited,
    /// Memory plus swap, in bytes (at least the memory limit).
    Total(u64),
}

/// What the step's memory and swap may add up to, when limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapTotal {
    /// Memory plus swap, in bytes.
    Bytes(u64),
    /// No limit on swap.
    Unlimited,
}

impl Limits {
    /// Memory plus swap for a step with a memory limit: the given total, or twice
    /// the memory limit as Docker gives (`None` without a memory limit).
    pub fn swap_total(&self) -> Option<SwapTotal> {
        let memory = self.memory?;
        Some(match self.memory_swap {
            Some(Swap::Unlimited) => SwapTotal::Unlimited,
            Some(Swap::Total(total)) => SwapTotal::Bytes(total),
            None => SwapTotal::Bytes(memory.saturating_mul(2)),
        })
    }

    /// The controllers these limits need, each with the flag that asks for it. The
    /// default `--pids-limit` is not in the list: it is applied where a cgroup can be
    /// made and skipped, with a note, where none can.
    pub fn required(&self) -> Vec<(Controller, &'static str)> {
        let mut out = Vec::new();
        if self.memory.is_some() {
            out.push((Controller::Memory, "--memory"));
        }
        if self.memory_swap.is_some() {
            out.push((Controller::Memory, "--memory-swap"));
        }
        if self.cpu_quota.is_some() || self.cpu_period.is_some() {
            out.push((Controller::Cpu, "--cpus/--cpu-quota/--cpu-period"));
        }
        if self.cpuset_cpus.is_some() {
            out.push((Controller::Cpuset, "--cpuset-cpus"));
        }
        if self.pids.is_some_and(|n| n != DEFAULT_PIDS_LIMIT) {
            out.push((Controller::Pids, "--pids-limit"));
        }
        out
    }
}

/// One `--ulimit NAME=SOFT[:HARD]`; `None` is unlimited (`-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Which limit.
    pub name: UlimitName,
    /// The soft limit.
    pub soft: Option<u64>,
    /// The hard limit (at least the soft one).
    pub hard: Option<u64>,
}

/// The names `docker run --ulimit` accepts (go-units `ulimitNameMapping`; `as` is left
/// out there too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UlimitName {
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Rttime,
    Sigpending,
    Stack,
}

const ULIMIT_NAMES: [(&str, UlimitName); 15] = [
    ("core", UlimitName::Core),
    ("cpu", UlimitName::Cpu),
    ("data", UlimitName::Data),
    ("fsize", UlimitName::Fsize),
    ("locks", UlimitName::Locks),
    ("memlock", UlimitName::Memlock),
    ("msgqueue", UlimitName::Msgqueue),
    ("nice", UlimitName::Nice),
    ("nofile", UlimitName::Nofile),
    ("nproc", UlimitName::Nproc),
    ("rss", UlimitName::Rss),
    ("rtprio", UlimitName::Rtprio),
    ("rttime", UlimitName::Rttime),
    ("sigpending", UlimitName::Sigpending),
    ("stack", UlimitName::Stack),
];

impl UlimitName {
    /// The name as written on the command line.
    pub fn as_str(self) -> &'static str {
        ULIMIT_NAMES
            .iter()
            .find(|(_, n)| *n == self)
            .map_or("?", |(s, _)| s)
    }

    /// The `RLIMIT_*` resource.
    pub(super) fn resource(self) -> rustix::process::Resource {
        use rustix::process::Resource as R;
        match self {
            UlimitName::Core => R::Core,
            UlimitName::Cpu => R::Cpu,
            UlimitName::Data => R::Data,
            UlimitName::Fsize => R::Fsize,
            UlimitName::Locks => R::Locks,
            UlimitName::Memlock => R::Memlock,
            UlimitName::Msgqueue => R::Msgqueue,
            UlimitName::Nice => R::Nice,
            UlimitName::Nofile => R::Nofile,
            UlimitName::Nproc => R::Nproc,
            UlimitName::Rss => R::Rss,
            UlimitName::Rtprio => R::Rtprio,
            UlimitName::Rttime => R::Rttime,
            UlimitName::Sigpending => R::Sigpending,
            UlimitName::Stack => R::Stack,
        }
    }
}

/// Why a `--ulimit` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UlimitError {
    #[error("invalid --ulimit {0:?}: expected NAME=SOFT[:HARD], e.g. nofile=1024:2048")]
    Syntax(String),
    #[error(
        "invalid --ulimit {value:?}: unknown name {name:?} (one of {})",
        names()
    )]
    Name { value: String, name: String },
    #[error("invalid --ulimit {value:?}: {number:?} is not a number (or -1 for unlimited)")]
    Number { value: String, number: String },
    #[error("invalid --ulimit {0:?}: the soft limit is above the hard limit")]
    SoftAboveHard(String),
}

fn names() -> String {
    ULIMIT_NAMES.map(|(s, _)| s).join(", ")
}

impl std::str::FromStr for Ulimit {
    type Err = UlimitError;

    /// `NAME=SOFT[:HARD]` as go-units `ParseUlimit`: one value sets both limits;
    /// `-1` is unlimited.
    fn from_str(value: &str) -> Result<Ulimit, UlimitError> {
        let (name, limits) = value
            .split_once('=')
            .ok_or_else(|| UlimitError::Syntax(value.to_owned()))?;
        let known = ULIMIT_NAMES.iter().find(|(s, _)| *s == name);
        let (_, name) = known.ok_or_else(|| UlimitError::Name {
            value: value.to_owned(),
            name: name.to_owned(),
        })?;
        let number = |text: &str| match text.parse::<i64>() {
            Ok(-1) => Ok(None),
            Ok(n) if n >= 0 => Ok(Some(n as u64)),
            _ => Err(UlimitError::Number {
                value: value.to_owned(),
                number: text.to_owned(),
            }),
        };
        let (soft, hard) = match limits.split_once(':') {
            Some((soft, hard)) => (number(soft)?, number(hard)?),
            None => {
                let both = number(limits)?;
                (both, both)
            }
        };
        let above = match (soft, hard) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(s), Some(h)) => s > h,
        };
        if above {
            return Err(UlimitError::SoftAboveHard(value.to_owned()));
        }
        Ok(Ulimit {
            name: *name,
            soft,
            hard,
        })
    }
}

/// Applies `ulimits` to the calling process (the command, before it drops its
/// privileges: raising a hard limit needs `CAP_SYS_RESOURCE`). On failure, the name
/// of the limit that could not be set.
pub(super) fn apply_ulimits(ulimits: &[Ulimit]) -> Result<(), (&'static str, std::io::Error)> {
    for u in ulimits {
        let limit = rustix::process::Rlimit {
            current: u.soft,
            maximum: u.hard,
        };
        rustix::process::setrlimit(u.name.resource(), limit)
            .map_err(|e| (u.name.as_str(), e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Ulimit, UlimitError> {
        s.parse()
    }

    #[test]
    fn ulimits_parse_as_docker_reads_them() {
        assert_eq!(
            parse("nofile=100:200"),
            Ok(Ulimit {
                name: UlimitName::Nofile,
                soft: Some(100),
                hard: Some(200)
            })
        );
        assert_eq!(
            parse("nproc=50"),
            Ok(Ulimit {
                name: UlimitName::Nproc,
                soft: Some(50),
                hard: Some(50)
            })
        );
        assert_eq!(
            parse("core=-1"),
            Ok(Ulimit {
                name: UlimitName::Core,
                soft: None,
                hard: None
            })
        );
        assert_eq!(parse("core=0:-1").unwrap().hard, None);
    }

    #[test]
    fn bad_ulimits_are_refused_with_the_reason() {
        assert!(matches!(parse("nofile"), Err(UlimitError::Syntax(_))));
        assert!(matches!(parse("as=1"), Err(UlimitError::Name { .. })));
        assert!(matches!(parse("NOFILE=1"), Err(UlimitError::Name { .. })));
        assert!(matches!(parse("nofile=x"), Err(UlimitError::Number { .. })));
        assert!(matches!(
            parse("nofile=-2"),
            Err(UlimitError::Number { .. })
        ));
        assert!(matches!(
            parse("nofile=1:2:3"),
            Err(UlimitError::Number { .. })
        ));
        assert!(matches!(
            parse("nofile=3:2"),
            Err(UlimitError::SoftAboveHard(_))
        ));
        assert!(matches!(
            parse("nofile=-1:2"),
            Err(UlimitError::SoftAboveHard(_))
        ));
        let message = parse("bogus=1").unwrap_err().to_string();
        assert!(
            message.contains("nofile") && message.contains("bogus"),
            "{message}"
        );
    }

    #[test]
    fn swap_defaults_to_as_much_as_memory() {
        let mut limits = Limits {
            memory: Some(64 << 20),
            ..Limits::default()
        };
        assert_eq!(limits.swap_total(), Some(SwapTotal::Bytes(128 << 20)));
        limits.memory_swap = Some(Swap::Unlimited);
        assert_eq!(limits.swap_total(), Some(SwapTotal::Unlimited));
        limits.memory_swap = Some(Swap::Total(64 << 20));
        assert_eq!(limits.swap_total(), Some(SwapTotal::Bytes(64 << 20)));
        assert_eq!(Limits::default().swap_total(), None);
    }

    #[test]
    fn the_default_pids_limit_is_best_effort() {
        let mut limits = Limits {
            pids: Some(DEFAULT_PIDS_LIMIT),
            ..Limits::default()
        };
        assert!(limits.required().is_empty());
        limits.pids = Some(100);
        limits.cpuset_cpus = Some("0".into());
        assert_eq!(
            limits.required(),
            [
                (Controller::Cpuset, "--cpuset-cpus"),
                (Controller::Pids, "--pids-limit")
            ]
        );
    }
}
