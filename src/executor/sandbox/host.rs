//! The caller's side: [`Sandbox`] spawns the helper, sends the spec, streams the
//! output, enforces the timeout and turns the helper's reports into the result.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;

use super::error::{Error, Result, SetupOp};
use super::wire::{self, Report};
use super::{Executor, ExitStatus, SandboxSpec, HELPER_ARGV0};

/// How long the helper gets to tear the sandbox down after a timeout before it is
/// killed outright (its init then dies of `PDEATHSIG`, taking the namespace along).
const TEARDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often a run with a cancel flag checks it.
pub const CANCEL_POLL: Duration = Duration::from_millis(50);

/// The namespace sandbox; see the module documentation.
#[derive(Debug, Clone)]
pub struct Sandbox {
    helper: PathBuf,
    /// When set, a running command is stopped (as on timeout) and the run fails with
    /// [`Error::Cancelled`].
    cancel: Option<Arc<AtomicBool>>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    /// A sandbox whose helper is this very binary (`/proc/self/exe`), which must
    /// call [`crate::reexec::dispatch`] first thing in `main`.
    pub fn new() -> Sandbox {
        Sandbox {
            helper: PathBuf::from("/proc/self/exe"),
            cancel: None,
        }
    }

    /// Stops running commands when `flag` becomes true (checked every
    /// `CANCEL_POLL`, 50 ms).
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Sandbox {
        self.cancel = Some(flag);
        self
    }

    /// A sandbox whose helper is another binary that dispatches the same way.
    pub fn with_helper(helper: impl Into<PathBuf>) -> Sandbox {
        Sandbox {
            helper: helper.into(),
            cancel: None,
        }
    }

    fn spawn(&self, theirs: UnixStream, out_w: OwnedFd) -> Result<Child> {
        let spawn_err = |source| Error::Spawn {
            helper: self.helper.clone(),
            source,
        };
        let out_w2 = out_w.try_clone().map_err(spawn_err)?;
        // The Command owns the child's ends; it is dropped at the end of this
        // function so that the caller keeps none of them open.
        Command::new(&self.helper)
            .arg0(HELPER_ARGV0)
            .env_clear()
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::from(out_w2))
            .spawn()
            .map_err(spawn_err)
    }
}

impl Executor for Sandbox {
    fn run(&self, spec: &SandboxSpec, output: &mut dyn FnMut(&[u8])) -> Result<ExitStatus> {
        spec.validate()?;
        let frame = wire::encode_spec(spec).map_err(|source| Error::Encode { source })?;
        let io_err = |what| move |source| Error::Io { what, source };
        let (mut ours, theirs) = UnixStream::pair().map_err(io_err("create a socket for"))?;
        let (out_r, out_w) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::Io {
                what: "create a pipe for",
                source: e.into(),
            })?;
        let mut child = self.spawn(theirs, out_w)?;
        let result = ours
            .write_all(&frame)
            .map_err(io_err("write the spec to"))
            .and_then(|()| Session::new(&mut child, &out_r, spec.timeout, self.cancel.as_deref()))
            .and_then(|mut session| session.pump(output, &ours));
        // Whatever happened, the helper must be gone before returning.
        let _ = ours.shutdown(std::net::Shutdown::Both);
        let status = child.wait().map_err(io_err("wait for"));
        let outcome = result?;
        let status = status?;
        finish(outcome, status, spec)
    }
}

/// What the session saw.
struct Outcome {
    reports: Vec<Report>,
    timed_out: Option<Duration>,
    cancelled: bool,
}

/// How far stopping a run has come.
#[derive(Default)]
struct Stop {
    /// The timeout that passed, if one did.
    timed_out: Option<Duration>,
    /// Whether the cancel flag was seen set.
    cancelled: bool,
    /// When the helper is killed if it has not exited by then.
    grace_end: Option<Instant>,
}

/// One run's descriptors and deadlines.
struct Session<'a> {
    child: &'a mut Child,
    out: &'a OwnedFd,
    pidfd: OwnedFd,
    deadline: Option<(Instant, Duration)>,
    cancel: Option<&'a AtomicBool>,
    reports: Vec<u8>,
}

impl<'a> Session<'a> {
    fn new(
        child: &'a mut Child,
        out: &'a OwnedFd,
        timeout: Option<Duration>,
        cancel: Option<&'a AtomicBool>,
    ) -> Result<Self> {
        let err = |source| Error::Io {
            what: "watch",
            source,
        };
        let pid = rustix::process::Pid::from_raw(child.id() as i32)
            .ok_or_else(|| err(io::Error::from_raw_os_error(libc::ESRCH)))?;
        // The helper is our unreaped child, so its pid cannot have been reused.
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .map_err(|e| err(e.into()))?;
        Ok(Session {
            child,
            out,
            pidfd,
            deadline: timeout.map(|t| (Instant::now() + t, t)),
            cancel,
            reports: Vec::new(),
        })
    }

    /// Streams output and collects reports until the helper exits.
    fn pump(&mut self, output: &mut dyn FnMut(&[u8]), sock: &UnixStream) -> Result<Outcome> {
        sock.set_nonblocking(true).map_err(|source| Error::Io {
            what: "watch",
            source,
        })?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut out_open = true;
        let mut stop = Stop::default();
        loop {
            let now = Instant::now();
            self.check_stop(&mut stop, now, sock);
            let timeout = self.wake(&stop, now);
            let mut fds = Vec::with_capacity(3);
            fds.push(PollFd::new(sock, PollFlags::IN));
            fds.push(PollFd::new(&self.pidfd, PollFlags::IN));
            if out_open {
                fds.push(PollFd::new(self.out, PollFlags::IN));
            }
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => {
                    return Err(Error::Io {
                        what: "poll",
                        source: e.into(),
                    })
                }
            }
            let exited = !fds[1].revents().is_empty();
            let out_ready = out_open && !fds[2].revents().is_empty();
            let sock_ready = !fds[0].revents().is_empty();
            drop(fds);
            if out_ready {
                out_open = read_some(self.out, &mut buf, output)?;
            }
            if sock_ready {
                read_reports(sock, &mut self.reports)?;
            }
            if exited {
                self.drain(&mut buf, out_open, output, sock)?;
                return self.outcome(stop.timed_out, stop.cancelled);
            }
        }
    }

    /// Starts stopping the step at its deadline or when cancelled (closing our end of
    /// the socket tells the helper to kill it), and kills the helper once the grace
    /// period is over.
    fn check_stop(&mut self, stop: &mut Stop, now: Instant, sock: &UnixStream) {
        let stopping = stop.timed_out.is_some() || stop.cancelled;
        if let Some((at, t)) = self.deadline {
            if !stopping && now >= at {
                let _ = sock.shutdown(std::net::Shutdown::Write);
                stop.timed_out = Some(t);
                stop.grace_end = Some(now + TEARDOWN_GRACE);
            }
        }
        if !stopping && self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            let _ = sock.shutdown(std::net::Shutdown::Write);
            stop.cancelled = true;
            stop.grace_end = Some(now + TEARDOWN_GRACE);
        }
        if let Some(end) = stop.grace_end {
            if now >= end {
                let _ = self.child.kill();
                stop.grace_end = None;
            }
        }
    }

    /// How long the next poll may wait: until the deadline, the end of the grace
    /// period or the next look at the cancel flag, whichever comes first.
    fn wake(&self, stop: &Stop, now: Instant) -> Option<rustix::fs::Timespec> {
        let watch_cancel = self
            .cancel
            .filter(|_| !stop.cancelled)
            .map(|_| now + CANCEL_POLL);
        let wake = [
            self.deadline
                .filter(|_| stop.timed_out.is_none())
                .map(|d| d.0),
            stop.grace_end,
            watch_cancel,
        ]
        .into_iter()
        .flatten()
        .min();
        wake.map(|w| {
            let d = w.saturating_duration_since(now) + Duration::from_millis(1);
            rustix::fs::Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: i64::from(d.subsec_nanos()),
            }
        })
    }

    /// Once the helper exited: reads what is buffered without waiting for writers
    /// that might have escaped (every process of the step is dead by now).
    fn drain(
        &mut self,
        buf: &mut [u8],
        mut out_open: bool,
        output: &mut dyn FnMut(&[u8]),
        sock: &UnixStream,
    ) -> Result<()> {
        rustix::io::ioctl_fionbio(self.out, true).map_err(|e| Error::Io {
            what: "drain",
            source: e.into(),
        })?;
        while out_open {
            out_open = read_some(self.out, buf, output)?;
        }
        let _ = read_reports(sock, &mut self.reports);
        Ok(())
    }

    fn outcome(&mut self, timed_out: Option<Duration>, cancelled: bool) -> Result<Outcome> {
        let mut reports = Vec::new();
        for r in wire::take_reports(&mut self.reports) {
            reports.push(r.map_err(|line| Error::Protocol { line })?);
        }
        Ok(Outcome {
            reports,
            timed_out,
            cancelled,
        })
    }
}

/// Reads once from the output pipe; `false` at end of file (or nothing more to read
/// on a non-blocking drain).
fn read_some(fd: &OwnedFd, buf: &mut [u8], output: &mut dyn FnMut(&[u8])) -> Result<bool> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                output(&buf[..n]);
                return Ok(true);
            }
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Ok(false),
            Err(e) => {
                return Err(Error::Io {
                    what: "read the output of",
                    source: e.into(),
                })
            }
        }
    }
}

/// Appends whatever the (non-blocking) socket has to `into`.
fn read_reports(mut sock: &UnixStream, into: &mut Vec<u8>) -> Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionReset
                ) =>
            {
                return Ok(())
            }
            Err(source) => {
                return Err(Error::Io {
                    what: "read the reports of",
                    source,
                })
            }
        }
    }
}

/// The run's result from the reports, the timeout and the helper's status.
fn finish(
    outcome: Outcome,
    status: std::process::ExitStatus,
    spec: &SandboxSpec,
) -> Result<ExitStatus> {
    for report in &outcome.reports {
        if let Report::Failed { op, path, errno } = report {
            let source = io::Error::from_raw_os_error(*errno);
            return Err(match op {
                SetupOp::Exec => Error::Exec {
                    argv: spec.argv.clone(),
                    source,
                },
                _ => Error::Setup {
                    op: *op,
                    path: path.clone(),
                    source,
                },
            });
        }
    }
    if let Some(timeout) = outcome.timed_out {
        return Err(Error::Timeout { timeout });
    }
    let stopped = outcome.reports.iter().any(|r| matches!(r, Report::Stopped));
    if outcome.cancelled || stopped {
        return Err(Error::Cancelled);
    }
    let usage = outcome.reports.iter().find_map(|r| match r {
        Report::Usage(usage) => Some(*usage),
        _ => None,
    });
    outcome
        .reports
        .iter()
        .find_map(|r| match r {
            Report::Exited { code, signal } => Some(ExitStatus {
                code: *code,
                signal: *signal,
                usage,
            }),
            _ => None,
        })
        .ok_or(Error::HelperDied { status })
}
