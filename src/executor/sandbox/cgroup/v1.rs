//! cgroup v1: the files a step cgroup gets per controller, and its counters.

use super::devices;
use super::write::Write;
use super::Controller;
use crate::executor::sandbox::limits::{Limits, Swap, SwapTotal};

/// The memory controller's limit file of memory plus swap (present only with swap
/// accounting).
const MEMSW: &str = "memory.memsw.limit_in_bytes";

/// The parent's `cpuset.cpus` and `cpuset.mems`: a v1 cpuset starts empty, and no
/// process can join it until both are set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ParentCpuset {
    pub cpus: String,
    pub mems: String,
}

/// The writes for `controller`, in order.
pub(super) fn writes(controller: Controller, limits: &Limits, cpuset: &ParentCpuset) -> Vec<Write> {
    match controller {
        Controller::Memory => memory(limits),
        Controller::Pids => limits
            .pids
            .map(|n| Write::new("pids.max", n.to_string()))
            .into_iter()
            .collect(),
        Controller::Cpu => cpu(limits),
        Controller::Cpuset => vec![
            Write::new(
                "cpuset.cpus",
                limits
                    .cpuset_cpus
                    .clone()
                    .unwrap_or_else(|| cpuset.cpus.trim().to_owned()),
            ),
            Write::new("cpuset.mems", cpuset.mems.trim().to_owned()),
        ],
        Controller::Devices => std::iter::once(Write::new("devices.deny", devices::DENY_ALL))
            .chain(
                devices::ALLOW
                    .iter()
                    .map(|rule| Write::new("devices.allow", rule.to_string())),
            )
            .collect(),
    }
}

/// The memory limit, then memory plus swap (never below the memory limit, so this
/// order is valid from a new cgroup's unlimited values). Without swap accounting the
/// default swap and `-1` are skipped; a total fails on the missing file.
fn memory(limits: &Limits) -> Vec<Write> {
    let Some(memory) = limits.memory else {
        return Vec::new();
    };
    let mut out = vec![Write::new("memory.limit_in_bytes", memory.to_string())];
    let total = match limits.swap_total() {
        Some(SwapTotal::Bytes(total)) => total.to_string(),
        Some(SwapTotal::Unlimited) => "-1".to_owned(),
        None => return out,
    };
    let swap = Write::new(MEMSW, total);
    // Without swap accounting, no swap limit is what the default and `-1` ask for.
    out.push(match limits.memory_swap {
        None | Some(Swap::Unlimited) => swap.optional(),
        Some(Swap::Total(_)) => swap,
    });
    out
}

/// The period first: the quota is checked against it.
fn cpu(limits: &Limits) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(period) = limits.cpu_period {
        out.push(Write::new("cpu.cfs_period_us", period.to_string()));
    }
    if let Some(quota) = limits.cpu_quota {
        out.push(Write::new("cpu.cfs_quota_us", quota.to_string()));
    }
    out
}

/// Where the OOM kills are counted: file and key.
pub(super) const OOM_KILLS: (&str, &str) = ("memory.oom_control", "oom_kill");

#[cfg(test)]
mod tests {
    use super::super::write::testutil::{tuples, w};
    use super::*;

    fn files(c: Controller, limits: &Limits) -> Vec<(String, String, bool)> {
        let parent = ParentCpuset {
            cpus: "0-1\n".into(),
            mems: "0\n".into(),
        };
        tuples(writes(c, limits, &parent))
    }

    #[test]
    fn memory_with_docker_s_default_swap() {
        let limits = Limits {
            memory: Some(64 << 20),
            ..Limits::default()
        };
        assert_eq!(
            files(Controller::Memory, &limits),
            [
                w("memory.limit_in_bytes", "67108864", false),
                w(MEMSW, "134217728", true)
            ]
        );
        let limits = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(Swap::Unlimited),
            ..Limits::default()
        };
        assert_eq!(files(Controller::Memory, &limits)[1], w(MEMSW, "-1", true));
        assert!(files(Controller::Memory, &Limits::default()).is_empty());
    }

    #[test]
    fn cpus_half_is_a_50ms_quota_per_100ms() {
        let limits = Limits {
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            ..Limits::default()
        };
        assert_eq!(
            files(Controller::Cpu, &limits),
            [
                w("cpu.cfs_period_us", "100000", false),
                w("cpu.cfs_quota_us", "50000", false)
            ]
        );
    }

    #[test]
    fn cpuset_is_copied_from_the_parent_unless_given() {
        assert_eq!(
            files(Controller::Cpuset, &Limits::default()),
            [w("cpuset.cpus", "0-1", false), w("cpuset.mems", "0", false)]
        );
        let limits = Limits {
            cpuset_cpus: Some("1".into()),
            ..Limits::default()
        };
        assert_eq!(
            files(Controller::Cpuset, &limits)[0],
            w("cpuset.cpus", "1", false)
        );
    }

    #[test]
    fn pids_and_devices() {
        let limits = Limits {
            pids: Some(100),
            ..Limits::default()
        };
        assert_eq!(
            files(Controller::Pids, &limits),
            [w("pids.max", "100", false)]
        );
        assert!(files(Controller::Pids, &Limits::default()).is_empty());
        let devices = files(Controller::Devices, &Limits::default());
        assert_eq!(devices[0], w("devices.deny", "a", false));
        assert_eq!(devices.len(), 11);
        assert!(devices.contains(&w("devices.allow", "c 1:3 rwm", false)));
        assert!(devices.contains(&w("devices.allow", "c 136:* rwm", false)));
    }
}
