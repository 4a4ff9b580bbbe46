//! cgroup v2: the files a step cgroup gets per controller, and its counters.

use super::write::Write;
use super::Controller;
use crate::executor::sandbox::limits::{Limits, Swap, SwapTotal, DEFAULT_CPU_PERIOD};

/// The writes for `controller`, in order (none for [`Controller::Devices`]: v2 has
/// no device files; `step.rs` attaches the device program instead).
pub(super) fn writes(controller: Controller, limits: &Limits) -> Vec<Write> {
    match controller {
        Controller::Memory => memory(limits),
        Controller::Pids => limits
            .pids
            .map(|n| Write::new("pids.max", n.to_string()))
            .into_iter()
            .collect(),
        Controller::Cpu => cpu(limits).into_iter().collect(),
        Controller::Cpuset => limits
            .cpuset_cpus
            .clone()
            .map(|cpus| Write::new("cpuset.cpus", cpus))
            .into_iter()
            .collect(),
        Controller::Devices => Vec::new(),
    }
}

/// `memory.max`, then `memory.swap.max`: swap alone on v2, the total minus the
/// memory. Without swap accounting the default swap and `-1` are skipped; a total
/// fails on the missing file.
fn memory(limits: &Limits) -> Vec<Write> {
    let Some(memory) = limits.memory else {
        return Vec::new();
    };
    let mut out = vec![Write::new("memory.max", memory.to_string())];
    let swap = match limits.swap_total() {
        Some(SwapTotal::Bytes(total)) => total.saturating_sub(memory).to_string(),
        Some(SwapTotal::Unlimited) => "max".to_owned(),
        None => return out,
    };
    let swap = Write::new("memory.swap.max", swap);
    // Without swap accounting, no swap limit is what the default and `-1` ask for.
    out.push(match limits.memory_swap {
        None | Some(Swap::Unlimited) => swap.optional(),
        Some(Swap::Total(_)) => swap,
    });
    out
}

/// `cpu.max`: `QUOTA PERIOD`, `max` for no quota.
fn cpu(limits: &Limits) -> Option<Write> {
    if limits.cpu_quota.is_none() && limits.cpu_period.is_none() {
        return None;
    }
    let quota = limits
        .cpu_quota
        .map_or_else(|| "max".to_owned(), |q| q.to_string());
    let period = limits.cpu_period.unwrap_or(DEFAULT_CPU_PERIOD);
    Some(Write::new("cpu.max", format!("{quota} {period}")))
}

/// Where the OOM kills are counted: file and key.
pub(super) const OOM_KILLS: (&str, &str) = ("memory.events", "oom_kill");

#[cfg(test)]
mod tests {
    use super::super::write::testutil::{tuples, w};
    use super::*;

    fn files(c: Controller, limits: &Limits) -> Vec<(String, String, bool)> {
        tuples(writes(c, limits))
    }

    #[test]
    fn memory_and_swap_are_separate_on_v2() {
        let mut limits = Limits {
            memory: Some(64 << 20),
            ..Limits::default()
        };
        assert_eq!(
            files(Controller::Memory, &limits),
            [
                w("memory.max", "67108864", false),
                w("memory.swap.max", "67108864", true)
            ]
        );
        limits.memory_swap = Some(Swap::Total(64 << 20));
        assert_eq!(
            files(Controller::Memory, &limits)[1],
            w("memory.swap.max", "0", false)
        );
        limits.memory_swap = Some(Swap::Unlimited);
        assert_eq!(
            files(Controller::Memory, &limits)[1],
            w("memory.swap.max", "max", true)
        );
    }

    #[test]
    fn cpu_max_pids_cpuset_and_no_devices() {
        let limits = Limits {
            cpu_quota: Some(50_000),
            pids: Some(50),
            cpuset_cpus: Some("0-1".into()),
            ..Limits::default()
        };
        assert_eq!(
            files(Controller::Cpu, &limits),
            [w("cpu.max", "50000 100000", false)]
        );
        let period_only = Limits {
            cpu_period: Some(20_000),
            ..Limits::default()
        };
        assert_eq!(
            files(Controller::Cpu, &period_only),
            [w("cpu.max", "max 20000", false)]
        );
        assert_eq!(
            files(Controller::Pids, &limits),
            [w("pids.max", "50", false)]
        );
        assert_eq!(
            files(Controller::Cpuset, &limits),
            [w("cpuset.cpus", "0-1", false)]
        );
        assert!(files(Controller::Cpuset, &Limits::default()).is_empty());
        assert!(files(Controller::Devices, &limits).is_empty());
        assert!(files(Controller::Cpu, &Limits::default()).is_empty());
    }
}
