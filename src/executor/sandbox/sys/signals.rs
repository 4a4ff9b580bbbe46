//! Signal dispositions: every signal back to its default for the command, and the
//! helper's stop-signal handler with the flag it sets.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Resets every signal to its default disposition and unblocks all signals, so the
/// command does not inherit the helper's (Rust ignores `SIGPIPE` at start-up).
pub(in crate::executor::sandbox) fn reset_signals() -> io::Result<()> {
    for sig in 1..65 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a zeroed `sigaction` with `SIG_DFL` is a valid argument; a null old
        // action pointer is allowed. Invalid signal numbers only yield EINVAL.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
    // SAFETY: an empty set built by `sigemptyset` and a null old-set pointer are valid.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The signals after which the helper stops the step and cleans up: its parent-death
/// signal (`SIGTERM`), Ctrl-C's `SIGINT` (sent to rbuild's whole process group) and
/// `SIGHUP`.
pub(in crate::executor::sandbox) const STOP_SIGNALS: [i32; 3] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Set by [`on_stop_signal`].
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs a handler for [`STOP_SIGNALS`] that only sets a flag (read by
/// [`stop_requested`]); without `SA_RESTART`, so a blocking `poll` or `wait` returns
/// `EINTR` and the flag is looked at.
pub(in crate::executor::sandbox) fn catch_stop_signals() -> io::Result<()> {
    let handler: extern "C" fn(libc::c_int) = on_stop_signal;
    set_stop_disposition(handler as libc::sighandler_t)
}

/// Puts [`STOP_SIGNALS`] back to their default disposition (for init: as pid 1 of the
/// namespace it then ignores them from inside, as before).
pub(in crate::executor::sandbox) fn default_stop_signals() -> io::Result<()> {
    set_stop_disposition(libc::SIG_DFL)
}

fn set_stop_disposition(handler: libc::sighandler_t) -> io::Result<()> {
    for sig in STOP_SIGNALS {
        // SAFETY: a zeroed `sigaction` is valid; the handler is either SIG_DFL or
        // `on_stop_signal`, which only stores to an atomic (async-signal-safe); a null
        // old-action pointer is allowed.
        let rc = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether one of [`STOP_SIGNALS`] arrived since [`catch_stop_signals`].
pub(in crate::executor::sandbox) fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
