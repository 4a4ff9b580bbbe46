//! The parent's side: start the child, map its namespace, relay signals, and end with
//! its exit code.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command};

use super::child::{MAPPED, UNSHARED};
use super::hints::{hint, Missing};
use super::subids::Range;
use super::{map_tool, sys, Error, Mapping, Plan, MARK};

/// The signals relayed to the child (when a process sent them) and `SIGCHLD`.
const SIGNALS: [libc::c_int; 5] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGCHLD,
];

/// Runs this same command line again in a child that enters a user namespace mapped
/// by `plan`, and returns the child's exit code (128 + the signal that killed it).
/// Must run while the process is single-threaded (the signal mask is the process's).
pub fn run_child(plan: &Plan) -> Result<u8, Error> {
    let (mut socket, theirs) = UnixStream::pair().map_err(sys("create a socket pair"))?;
    rustix::io::fcntl_setfd(&theirs, rustix::io::FdFlags::empty())
        .map_err(|e| sys("pass a socket to the child")(e.into()))?;
    let blocked = block_signals()?;
    let mut child = spawn(theirs.as_raw_fd(), blocked)?;
    drop(theirs);
    if let Err(e) = map_child(plan, &child, &mut socket) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    relay_until_exit(&mut child)
}

/// Starts `/proc/self/exe` with this process's arguments, [`MARK`] naming `fd`, the
/// parent-death signal set and the signal mask `mask` restored.
fn spawn(fd: i32, mask: libc::sigset_t) -> Result<Child, Error> {
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "rbuild".into());
    let mut command = Command::new("/proc/self/exe");
    command.arg0(arg0).args(args).env(MARK, format!("fd:{fd}"));
    // SAFETY: the closure only makes async-signal-safe system calls (prctl,
    // sigprocmask) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0
                || libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    command
        .spawn()
        .map_err(sys("start rbuild again in a user namespace"))
}

/// Blocks [`SIGNALS`] (they are taken with `sigwaitinfo`); returns the previous mask.
fn block_signals() -> Result<libc::sigset_t, Error> {
    let set = signal_set();
    // SAFETY: sigset_t is plain data the kernel fills in; the process is
    // single-threaded, so the mask set is the only one.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        if libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
            return Err(sys("block signals")(std::io::Error::last_os_error()));
        }
        Ok(old)
    }
}

/// The set of [`SIGNALS`].
fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data that sigemptyset initialises and sigaddset
    // fills with valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Waits for the child to unshare, writes its maps, and lets it go on.
fn map_child(plan: &Plan, child: &Child, socket: &mut UnixStream) -> Result<(), Error> {
    let mut byte = [0u8];
    match socket.read(&mut byte) {
        Ok(1) if byte[0] == UNSHARED => {}
        // The child ended before (it reported why); its code is the result.
        Ok(_) => return Ok(()),
        Err(e) => return Err(sys("wait for the child's user namespace")(e)),
    }
    let pid = child.id();
    match &plan.mapping {
        Mapping::Full { uids, gids } => {
            run_map_tool("newuidmap", pid, plan.uid, uids)?;
            run_map_tool("newgidmap", pid, plan.gid, gids)?;
        }
        Mapping::Single { .. } => write_single_maps(pid, plan.uid, plan.gid)?,
    }
    socket
        .write_all(&[MAPPED])
        .map_err(sys("tell the child its namespace is mapped"))
}

/// `newuidmap PID 0 ID 1 1 START COUNT ...` (or `newgidmap`).
fn run_map_tool(tool: &str, pid: u32, id: u32, ranges: &[Range]) -> Result<(), Error> {
    let path = map_tool(tool).unwrap_or_else(|| tool.into());
    let args = map_args(pid, id, ranges);
    let out = Command::new(&path)
        .args(&args)
        .output()
        .map_err(sys(format!("run {}", path.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    // The tools print strerror: EPERM is a privilege the process lacks, not a
    // mistake in /etc/subuid (which they report in words of their own).
    let hint = if stderr.contains("Operation not permitted") {
        format!(": {}", hint(Missing::IdMap))
    } else {
        String::new()
    };
    Err(Error::MapTool {
        command: format!("{} {}", path.display(), args.join(" ")),
        status: out.status.to_string(),
        stderr,
        hint,
    })
}

/// The map tool's arguments: `PID 0 ID 1`, then each range from the next inside id
/// on (`1 START COUNT`, `COUNT+1 START2 COUNT2`, ...) until the ids run out.
fn map_args(pid: u32, id: u32, ranges: &[Range]) -> Vec<String> {
    let mut args = vec![pid.to_string(), "0".into(), id.to_string(), "1".into()];
    let mut next: u32 = 1;
    for range in ranges {
        args.extend([next, range.start, range.count].map(|n| n.to_string()));
        match next.checked_add(range.count) {
            Some(n) => next = n,
            None => break,
        }
    }
    args
}

/// Maps 0 to `uid`/`gid` only, which an unprivileged process may do itself
/// (`setgroups` denied first, as the kernel requires for the gid map).
fn write_single_maps(pid: u32, uid: u32, gid: u32) -> Result<(), Error> {
    let files = [
        ("setgroups", "deny".to_owned()),
        ("uid_map", format!("0 {uid} 1\n")),
        ("gid_map", format!("0 {gid} 1\n")),
    ];
    for (name, text) in files {
        let path = format!("/proc/{pid}/{name}");
        std::fs::write(&path, text).map_err(sys(format!("write {path}")))?;
    }
    Ok(())
}

/// Relays the blocked signals a process sent (those of the terminal reach the child
/// too: sending them again would count twice) until the child exits.
fn relay_until_exit(child: &mut Child) -> Result<u8, Error> {
    loop {
        if let Some(status) = child.try_wait().map_err(sys("wait for the child"))? {
            let code = status
                .code()
                .or(status.signal().map(|s| 128 + s))
                .unwrap_or(1);
            return Ok(u8::try_from(code).unwrap_or(1));
        }
        let (signal, sent_by_process) = wait_signal()?;
        if signal != libc::SIGCHLD && sent_by_process {
            let pid = rustix::process::Pid::from_raw(child.id() as i32);
            let sig = rustix::process::Signal::from_named_raw(signal);
            if let (Some(pid), Some(sig)) = (pid, sig) {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    }
}

/// The next blocked signal, and whether a process sent it (`si_code` <= 0) rather
/// than the kernel (a terminal's Ctrl-C).
fn wait_signal() -> Result<(libc::c_int, bool), Error> {
    let set = signal_set();
    // SAFETY: siginfo_t is plain data filled in by the kernel.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        loop {
            let signal = libc::sigwaitinfo(&set, &mut info);
            if signal >= 0 {
                return Ok((signal, info.si_code <= 0));
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(sys("wait for signals")(err));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_one_another_inside() {
        let r = |start, count| Range { start, count };
        let args = map_args(7, 1000, &[r(1, 999), r(1001, 64535)]);
        let want = "7 0 1000 1 1 1 999 1000 1001 64535";
        assert_eq!(args.join(" "), want);
        let one = map_args(7, 2345, &[r(200000, 65536)]);
        assert_eq!(one.join(" "), "7 0 2345 1 1 200000 65536");
    }
}
