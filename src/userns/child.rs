//! The child's side: leave the user's namespace for a new one and wait to be mapped.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use super::hints::{hint, Missing};
use super::{sys, Error, MARK};

/// The byte the child sends once it has unshared, and the one the parent answers with
/// once the maps are written.
pub(super) const UNSHARED: u8 = b'u';
pub(super) const MAPPED: u8 = b'm';

/// When this process is the child of a rootless rbuild (`_RBUILD_USERNS=fd:N`), moves it
/// into a new user namespace and returns once the parent has mapped it: from then on
/// it is uid 0 there. Returns `false` (doing nothing) in any other process. Must run
/// while the process is single-threaded (`unshare(CLONE_NEWUSER)` refuses otherwise).
pub fn enter_if_child() -> Result<bool, Error> {
    let Some(fd) = std::env::var(MARK)
        .ok()
        .and_then(|v| v.strip_prefix("fd:")?.parse::<RawFd>().ok())
    else {
        return Ok(false);
    };
    let fcntl = rustix::io::fcntl_getfd(
        // SAFETY: only a probe of the descriptor number; nothing is closed or kept.
        unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) },
    );
    if fcntl.is_err() {
        return Err(Error::Handshake(format!("{MARK} names no open descriptor")));
    }
    // SAFETY: the parent passed this descriptor (its socket end) open for this
    // process alone, and it was just checked to be open; nothing else owns it.
    let mut socket = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: CLONE_NEWUSER shares no descriptor table, and the process is still
    // single-threaded (main calls this first), as the kernel requires.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER) }.map_err(
        |e| Error::Refused {
            op: "create a user namespace: unshare(CLONE_NEWUSER) was refused",
            source: e.into(),
            hint: hint(Missing::UserNamespace),
        },
    )?;
    socket
        .write_all(&[UNSHARED])
        .map_err(sys("tell rbuild's parent process the namespace exists"))?;
    let mut answer = [0u8];
    socket
        .read_exact(&mut answer)
        .map_err(sys("wait for rbuild's parent process to map the namespace"))?;
    if answer[0] != MAPPED {
        return Err(Error::Handshake(
            "the parent could not map the namespace".into(),
        ));
    }
    std::env::set_var(MARK, "1");
    Ok(true)
}
