//! The RUN limit flags of `rbuild build`, in `docker build` / `podman build`
//! spellings, checked as Docker checks them and turned into [`Limits`].

use anyhow::{bail, Context};

use crate::executor::sandbox::{Limits, Swap, Ulimit, DEFAULT_CPU_PERIOD, DEFAULT_PIDS_LIMIT};
use crate::parser::instructions::values::ram_in_bytes;

/// Docker's smallest `--memory` (6 MiB).
const MIN_MEMORY: u64 = 6 << 20;

/// Limits of every RUN step (a cgroup per step; see README "Limits").
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Memory limit of each RUN step, in Docker's units (`512m`, `1g`); default: none.
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory plus swap of each RUN step (`-1`: unlimited swap); default with
    /// --memory: twice --memory (as much swap as memory, as Docker).
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPUs each RUN step may use, as a decimal (`0.5`, `1.5`); default: no limit.
    #[arg(long, value_name = "DECIMAL")]
    pub cpus: Option<String>,
    /// CPU time per period of each RUN step, in microseconds (-1: none).
    #[arg(
        long = "cpu-quota",
        value_name = "MICROSECONDS",
        allow_hyphen_values = true
    )]
    pub cpu_quota: Option<i64>,
    /// The period of --cpu-quota, in microseconds (1000 to 1000000; kernel default
    /// 100000).
    #[arg(long = "cpu-period", value_name = "MICROSECONDS")]
    pub cpu_period: Option<i64>,
    /// CPUs each RUN step may run on (`0-3`, `0,2`).
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Processes (and threads) of each RUN step at most; 0 or -1: no limit.
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true,
          default_value_t = DEFAULT_PIDS_LIMIT as i64)]
    pub pids_limit: i64,
    /// A resource limit of each RUN step's command: `nofile=1024:2048`, `nproc=512`,
    /// `core=0` (-1: unlimited); may be repeated.
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// Size of each RUN step's /dev/shm, in Docker's units.
    #[arg(long = "shm-size", value_name = "BYTES", default_value = "64m")]
    pub shm_size: String,
}

impl LimitArgs {
    /// The flags as [`Limits`], or why they are refused.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        let memory = self.memory.as_deref().map(memory).transpose()?;
        let (cpu_quota, cpu_period) = self.cpu()?;
        Ok(Limits {
            memory,
            memory_swap: self.swap(memory)?,
            cpu_quota,
            cpu_period,
            cpuset_cpus: self.cpuset_cpus.as_deref().map(cpuset).transpose()?,
            pids: pids(self.pids_limit)?,
            ulimits: ulimits(&self.ulimits)?,
            shm_size: shm_size(&self.shm_size)?,
        })
    }

    fn swap(&self, memory: Option<u64>) -> anyhow::Result<Option<Swap>> {
        let Some(text) = self.memory_swap.as_deref() else {
            return Ok(None);
        };
        let Some(memory) = memory else {
            bail!("--memory-swap needs --memory (it is the total of memory and swap)");
        };
        if text == "-1" {
            return Ok(Some(Swap::Unlimited));
        }
        let total = bytes(text, "--memory-swap")?;
        if total < memory {
            bail!(
                "--memory-swap {text} is below --memory: it is the total of memory and swap, \
                 at least --memory"
            );
        }
        Ok(Some(Swap::Total(total)))
    }

    /// `(quota, period)` in microseconds from `--cpus` or `--cpu-quota`/`--cpu-period`.
    fn cpu(&self) -> anyhow::Result<(Option<u64>, Option<u64>)> {
        let quota = match self.cpu_quota {
            None | Some(-1) | Some(0) => None,
            Some(q) if q < 1000 => bail!("--cpu-quota {q}: the minimum is 1000 (1ms)"),
            Some(q) => Some(q as u64),
        };
        let period = match self.cpu_period {
            None | Some(0) => None,
            Some(p) if !(1000..=1_000_000).contains(&p) => {
                bail!("--cpu-period {p}: it must be from 1000 (1ms) to 1000000 (1s)")
            }
            Some(p) => Some(p as u64),
        };
        let Some(cpus) = self.cpus.as_deref() else {
            return Ok((quota, period));
        };
        if self.cpu_quota.is_some() || self.cpu_period.is_some() {
            bail!("--cpus and --cpu-quota/--cpu-period cannot both be given");
        }
        let available = rustix::thread::sched_getaffinity(None).map_or(1, |set| set.count());
        Ok((Some(cpus_quota(cpus, available)?), Some(DEFAULT_CPU_PERIOD)))
    }
}

/// `--memory`: Docker's units, at least 6 MiB.
fn memory(text: &str) -> anyhow::Result<u64> {
    let value = bytes(text, "--memory")?;
    if value < MIN_MEMORY {
        bail!("--memory {text}: the minimum is 6MiB");
    }
    Ok(value)
}

/// `--shm-size`: Docker's units, more than 0.
fn shm_size(text: &str) -> anyhow::Result<u64> {
    let value = bytes(text, "--shm-size")?;
    if value == 0 {
        bail!("--shm-size must be more than 0");
    }
    Ok(value)
}

fn bytes(text: &str, flag: &str) -> anyhow::Result<u64> {
    ram_in_bytes(text).with_context(|| {
        format!(
            "invalid {flag} {text:?}: expected a size such as 512m or 1g \
             (b, k, m, g: binary units)"
        )
    })
}

/// The CFS quota (per [`DEFAULT_CPU_PERIOD`]) of `--cpus`, from 0.01 to the CPUs
/// available.
fn cpus_quota(text: &str, available: u32) -> anyhow::Result<u64> {
    let cpus: f64 = text
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite())
        .with_context(|| format!("invalid --cpus {text:?}: expected a decimal such as 0.5"))?;
    if !(0.01..=f64::from(available)).contains(&cpus) {
        bail!("--cpus {text}: it must be from 0.01 to {available}.00 (the CPUs available)");
    }
    Ok((cpus * DEFAULT_CPU_PERIOD as f64).round() as u64)
}

/// `--pids-limit`: 0 and -1 mean no limit.
fn pids(value: i64) -> anyhow::Result<Option<u64>> {
    match value {
        -1 | 0 => Ok(None),
        n if n < -1 => {
            bail!("--pids-limit {n}: expected a positive number, or 0 or -1 for no limit")
        }
        n => Ok(Some(n as u64)),
    }
}

/// `--ulimit`s; a name given twice keeps its last value.
fn ulimits(values: &[String]) -> anyhow::Result<Vec<Ulimit>> {
    let mut out: Vec<Ulimit> = Vec::new();
    for value in values {
        let u: Ulimit = value.parse()?;
        out.retain(|old| old.name != u.name);
        out.push(u);
    }
    Ok(out)
}

/// `--cpuset-cpus`: the kernel's list syntax, every CPU available to rbuild.
fn cpuset(text: &str) -> anyhow::Result<String> {
    let cpus = cpu_list(text).with_context(|| {
        format!("invalid --cpuset-cpus {text:?}: expected a list such as 0-3,6")
    })?;
    let set = rustix::thread::sched_getaffinity(None).context("reading the CPUs available")?;
    if let Some(cpu) = cpus
        .iter()
        .find(|&&c| c >= rustix::thread::CpuSet::MAX_CPU || !set.is_set(c))
    {
        let available: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect();
        bail!("--cpuset-cpus {text}: CPU {cpu} is not available (available: {available:?})");
    }
    Ok(text.to_owned())
}

/// The CPUs of a list such as `0-3,6`; `None` if malformed.
fn cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let number = |s: &str| -> Option<usize> {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse().ok())
                .flatten()
        };
        let (lo, hi) = (number(lo)?, number(hi)?);
        if lo > hi || hi > 1 << 16 {
            return None;
        }
        out.extend(lo..=hi);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(args: &[&str]) -> anyhow::Result<Limits> {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            limits: LimitArgs,
        }
        let mut all = vec!["rbuild"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)?.limits.limits()
    }

    fn refused(args: &[&str]) -> String {
        format!("{:#}", limits(args).unwrap_err())
    }

    #[test]
    fn defaults_are_pids_4096_and_shm_64mib() {
        let l = limits(&[]).unwrap();
        assert_eq!(l.pids, Some(4096));
        assert_eq!(l.shm_size, 64 << 20);
        assert_eq!((l.memory, l.cpu_quota, l.cpu_period), (None, None, None));
        assert!(l.ulimits.is_empty());
    }

    #[test]
    fn memory_and_swap_as_docker() {
        let l = limits(&["-m", "512m", "--memory-swap", "1g"]).unwrap();
        assert_eq!(
            (l.memory, l.memory_swap),
            (Some(512 << 20), Some(Swap::Total(1 << 30)))
        );
        let l = limits(&["--memory", "64m", "--memory-swap", "-1"]).unwrap();
        assert_eq!(l.memory_swap, Some(Swap::Unlimited));
        assert!(refused(&["--memory-swap", "1g"]).contains("needs --memory"));
        assert!(refused(&["-m", "1g", "--memory-swap", "512m"]).contains("below --memory"));
        assert!(refused(&["-m", "1m"]).contains("minimum is 6MiB"));
        assert!(refused(&["-m", "lots"]).contains("invalid --memory"));
    }

    #[test]
    fn cpus_become_a_quota_per_100ms() {
        let l = limits(&["--cpus", "0.5"]).unwrap();
        assert_eq!((l.cpu_quota, l.cpu_period), (Some(50_000), Some(100_000)));
        let l = limits(&["--cpu-quota", "20000", "--cpu-period", "50000"]).unwrap();
        assert_eq!((l.cpu_quota, l.cpu_period), (Some(20_000), Some(50_000)));
        assert_eq!(limits(&["--cpu-quota", "-1"]).unwrap().cpu_quota, None);
        assert!(refused(&["--cpus", "0.5", "--cpu-quota", "1000"]).contains("cannot both"));
        assert!(refused(&["--cpus", "0"]).contains("from 0.01"));
        assert!(refused(&["--cpus", "100000"]).contains("CPUs available"));
        assert!(refused(&["--cpus", "x"]).contains("invalid --cpus"));
        assert!(refused(&["--cpu-quota", "999"]).contains("minimum is 1000"));
        assert!(refused(&["--cpu-period", "2000000"]).contains("1000000"));
        assert_eq!(cpus_quota("1.5", 2).unwrap(), 150_000);
    }

    #[test]
    fn pids_ulimits_shm_and_cpusets() {
        assert_eq!(limits(&["--pids-limit", "0"]).unwrap().pids, None);
        assert_eq!(limits(&["--pids-limit", "-1"]).unwrap().pids, None);
        assert_eq!(limits(&["--pids-limit", "50"]).unwrap().pids, Some(50));
        assert!(refused(&["--pids-limit", "-5"]).contains("positive"));
        let l = limits(&["--ulimit", "nofile=10", "--ulimit", "nofile=100:200"]).unwrap();
        assert_eq!((l.ulimits.len(), l.ulimits[0].soft), (1, Some(100)));
        assert!(refused(&["--ulimit", "nofile=3:2"]).contains("soft limit"));
        assert_eq!(limits(&["--shm-size", "1m"]).unwrap().shm_size, 1 << 20);
        assert!(refused(&["--shm-size", "0"]).contains("more than 0"));
        assert_eq!(
            limits(&["--cpuset-cpus", "0"])
                .unwrap()
                .cpuset_cpus
                .as_deref(),
            Some("0")
        );
        assert!(refused(&["--cpuset-cpus", "4096"]).contains("not available"));
        assert!(refused(&["--cpuset-cpus", "1-0"]).contains("invalid"));
        assert_eq!(cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        for bad in ["", "a", "1-", "-1", "1,,2", "+1"] {
            assert_eq!(cpu_list(bad), None, "{bad:?}");
        }
    }
}
