//! RUN's limits within a build: the host's cgroup [`Place`], found once per build at
//! the first RUN (stale step cgroups are removed then); the one note when no cgroup
//! can be used; the refusal when a flag needs a controller that cannot be used; and
//! the failure of a step that hit its memory or process limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::error::ExecError;
use super::events::{BuildEvent, Reporter};
use super::sandbox::cgroup::{self, Controller, Place};
use super::sandbox::{ExitStatus, Limits};

/// The cgroups of one build's RUN steps.
#[derive(Default)]
pub struct RunCgroups {
    place: OnceLock<Place>,
    noted: AtomicBool,
    devices_noted: AtomicBool,
}

impl RunCgroups {
    /// Where the step's cgroup goes (`None`: nowhere, the note has been given), or
    /// the refusal of a flag whose controller cannot be used.
    pub fn place_for(
        &self,
        limits: &Limits,
        reporter: &dyn Reporter,
    ) -> Result<Option<Place>, ExecError> {
        let place = self.place.get_or_init(cgroup::detect);
        if let Some((controller, flag)) =
            limits.required().into_iter().find(|(c, _)| !place.has(*c))
        {
            return Err(ExecError::LimitUnavailable {
                flag,
                reason: place.why_not(controller),
            });
        }
        let pids_skipped = limits.pids.is_some() && !place.has(Controller::Pids);
        if (place.is_empty() || pids_skipped) && !self.noted.swap(true, Ordering::SeqCst) {
            reporter.event(BuildEvent::Note {
                message: note(place, limits),
            });
        }
        let no_devices = !place.is_empty() && !place.has(Controller::Devices);
        if no_devices && !self.devices_noted.swap(true, Ordering::SeqCst) {
            reporter.event(BuildEvent::Note {
                message: format!(
                    "RUN steps get no device cgroup ({}); host devices stay unreachable through nodev mounts",
                    place.why_not(Controller::Devices)
                ),
            });
        }
        Ok((!place.is_empty()).then(|| place.clone()))
    }
}

/// The note for a host where the step's cgroup (or its pids controller) cannot be
/// used.
fn note(place: &Place, limits: &Limits) -> String {
    let pids = limits
        .pids
        .map(|n| format!(" (the default --pids-limit {n} is not applied)"))
        .unwrap_or_default();
    if place.is_empty() {
        let why = place
            .missing
            .first()
            .map_or_else(String::new, |(_, why)| format!(": {why}"));
        format!("no cgroup can be used here{why}; RUN steps run without cgroup limits{pids}")
    } else {
        format!(
            "RUN steps run without a process limit{pids}: {}",
            place.why_not(Controller::Pids)
        )
    }
}

/// The failure of a step that exited non-zero after hitting a limit: out of memory
/// (an OOM kill in its cgroup) or its process limit (a fork refused at `pids.max`).
pub fn limit_failure(
    status: &ExitStatus,
    limits: &Limits,
    command: &str,
    tail: &[String],
) -> Option<ExecError> {
    let usage = status.usage.filter(|_| !status.success())?;
    let limit = if usage.oom_kills > 0 {
        let what = limits.memory.map_or_else(
            || "the memory limit of an enclosing cgroup".to_owned(),
            |m| format!("--memory {}", binary_size(m)),
        );
        format!("RUN was killed: out of memory ({what})")
    } else if usage.pids_refused > 0 {
        let what = limits.pids.map_or_else(
            || "the process limit of an enclosing cgroup".to_owned(),
            |n| format!("--pids-limit {n}"),
        );
        format!("RUN hit the process limit ({what})")
    } else {
        return None;
    };
    Some(ExecError::LimitHit {
        limit,
        command: command.to_owned(),
        code: status.code,
        tail: tail.to_vec(),
    })
}

/// `64MiB`, `1.5GiB`, `100B`: binary units, at most two decimals.
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = None;
    let mut value = bytes as f64;
    while value >= 1024.0 && unit.is_none_or(|u| u + 1 < UNITS.len()) {
        value /= 1024.0;
        unit = Some(unit.map_or(0, |u| u + 1));
    }
    let Some(unit) = unit else {
        return format!("{bytes}B");
    };
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::sandbox::cgroup::{Hierarchy, Usage, Version};
    use crate::executor::Recorder;

    fn failed(usage: Usage) -> ExitStatus {
        ExitStatus {
            code: 137,
            signal: Some(9),
            usage: Some(usage),
        }
    }

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(binary_size(64 << 20), "64MiB");
        assert_eq!(binary_size(3 << 29), "1.5GiB");
        assert_eq!(binary_size(1000), "1000B");
        assert_eq!(binary_size(1536), "1.5KiB");
        assert_eq!(binary_size(u64::MAX), "16384PiB");
    }

    #[test]
    fn limit_failures_name_the_limit() {
        let limits = Limits {
            memory: Some(64 << 20),
            pids: Some(50),
            ..Limits::default()
        };
        let oom = Usage {
            oom_kills: 1,
            pids_refused: 3,
        };
        let err = limit_failure(&failed(oom), &limits, "dd", &[]).unwrap();
        let text = err.to_string();
        assert!(
            text.starts_with("RUN was killed: out of memory (--memory 64MiB)"),
            "{text}"
        );
        assert!(text.contains("exit code: 137"), "{text}");
        let pids = Usage {
            oom_kills: 0,
            pids_refused: 3,
        };
        let text = limit_failure(&failed(pids), &limits, "sh", &[])
            .unwrap()
            .to_string();
        assert!(
            text.starts_with("RUN hit the process limit (--pids-limit 50)"),
            "{text}"
        );
        assert!(limit_failure(&failed(Usage::default()), &limits, "x", &[]).is_none());
        let ok = ExitStatus {
            code: 0,
            signal: None,
            usage: Some(oom),
        };
        assert!(
            limit_failure(&ok, &limits, "x", &[]).is_none(),
            "a success is a success"
        );
    }

    fn cgroups(place: Place) -> RunCgroups {
        let c = RunCgroups::default();
        let _ = c.place.set(place);
        c
    }

    #[test]
    fn no_cgroup_is_one_note_and_a_refusal_for_flags() {
        let nowhere = Place {
            version: Version::V1,
            hierarchies: Vec::new(),
            missing: vec![(Controller::Memory, "read-only".into())],
        };
        let c = cgroups(nowhere);
        let recorder = Recorder::default();
        let default = Limits {
            pids: Some(crate::executor::sandbox::DEFAULT_PIDS_LIMIT),
            ..Limits::default()
        };
        assert_eq!(c.place_for(&default, &recorder).unwrap(), None);
        assert_eq!(c.place_for(&default, &recorder).unwrap(), None);
        let events = recorder.events();
        assert_eq!(events.len(), 1, "once per build: {events:?}");
        let memory = Limits {
            memory: Some(1 << 30),
            ..default
        };
        let err = c.place_for(&memory, &recorder).unwrap_err().to_string();
        assert!(
            err.contains("--memory") && err.contains("read-only"),
            "{err}"
        );
    }

    #[test]
    fn a_usable_place_is_given_to_the_step() {
        let place = Place {
            version: Version::V2,
            hierarchies: vec![Hierarchy {
                dir: "/sys/fs/cgroup/x".into(),
                controllers: vec![Controller::Memory, Controller::Pids],
            }],
            missing: vec![(Controller::Cpu, "not available".into())],
        };
        let c = cgroups(place.clone());
        let recorder = Recorder::default();
        let limits = Limits {
            memory: Some(1 << 30),
            pids: Some(10),
            ..Limits::default()
        };
        assert_eq!(c.place_for(&limits, &recorder).unwrap(), Some(place));
        assert!(c.place_for(&limits, &recorder).unwrap().is_some());
        let events = recorder.events();
        assert_eq!(events.len(), 1, "one note, about devices: {events:?}");
        assert!(
            format!("{events:?}").contains("no device cgroup"),
            "{events:?}"
        );
        let cpus = Limits {
            cpu_quota: Some(50_000),
            ..Limits::default()
        };
        let err = c.place_for(&cpus, &recorder).unwrap_err().to_string();
        assert!(
            err.contains("--cpus") && err.contains("not available"),
            "{err}"
        );
    }
}
