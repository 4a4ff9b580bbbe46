//! `--ssh` on the command line and `RUN --mount=type=ssh` in a step.
//!
//! The host's agent socket is never exposed as is: for each ssh mount the step gets a
//! socket of its own (owner and mode from the mount, `0600` root by default, as in
//! BuildKit) served by a small forwarding thread that connects each client to the
//! agent. The proxy stops, and its socket disappears, when the step ends.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::super::error::ExecError;
use super::secret::FlagError;
use crate::parser::instructions::values::Mount as MountSpec;

/// One `--ssh ID[=SOCKET]`: an agent socket to forward under an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec {
    pub id: String,
    /// The agent socket.
    pub socket: PathBuf,
}

impl SshSpec {
    /// Parses `default`, `default=PATH` or `ID=PATH` (`docker build --ssh`). Without a
    /// path the agent is `$SSH_AUTH_SOCK`. Only agent sockets are accepted: rbuild
    /// does not load key files into an agent of its own.
    pub fn parse(value: &str) -> Result<SshSpec, FlagError> {
        let bad = |reason: String| FlagError {
            flag: "--ssh",
            value: value.to_owned(),
            reason,
        };
        let (id, path) = match value.split_once('=') {
            Some((id, path)) => (id, Some(path)),
            None => (value, None),
        };
        if id.is_empty() {
            return Err(bad("the id is empty".into()));
        }
        let socket = match path.filter(|p| !p.is_empty()) {
            Some(p) if p.contains(',') => {
                return Err(bad("only one agent socket per id is supported".into()))
            }
            Some(p) => PathBuf::from(p),
            None => std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .ok_or_else(
                    || bad("SSH_AUTH_SOCK is not set; give the socket as ID=PATH".into()),
                )?,
        };
        match std::fs::metadata(&socket) {
            Ok(m) if m.file_type().is_socket() => {}
            Ok(_) => {
                return Err(bad(format!(
                    "{} is not a socket (rbuild forwards ssh-agent sockets, not key files: \
                     load keys with ssh-add)",
                    socket.display()
                )))
            }
            Err(e) => return Err(bad(format!("cannot use {}: {e}", socket.display()))),
        }
        Ok(SshSpec {
            id: id.to_owned(),
            socket,
        })
    }
}

/// The agent of `spec`'s id among `agents`: `None` when not given and not required.
pub(super) fn resolve<'a>(
    spec: &MountSpec,
    agents: &'a [SshSpec],
) -> Result<Option<&'a SshSpec>, ExecError> {
    let id = spec.ssh_id();
    match agents.iter().rev().find(|a| a.id == id) {
        Some(agent) => Ok(Some(agent)),
        None if spec.required => Err(ExecError::Ssh {
            id: id.to_owned(),
            reason: format!("it is required but no agent was given (pass --ssh {id}[=SOCKET])"),
        }),
        None => Ok(None),
    }
}

/// A listening socket that forwards every connection to an agent.
pub(super) struct AgentProxy {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AgentProxy {
    /// Listens at `path` (owned by `uid:gid`, `mode`) and forwards to `agent`.
    pub(super) fn start(
        path: &Path,
        agent: &Path,
        owner: (u32, u32),
        mode: u32,
    ) -> Result<AgentProxy, ExecError> {
        let listener = UnixListener::bind(path).map_err(ExecError::fs("cannot listen on", path))?;
        std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1))
            .map_err(ExecError::fs("cannot change owner of", path))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(ExecError::fs("cannot set mode of", path))?;
        let stop = Arc::new(AtomicBool::new(false));
        let agent = agent.to_path_buf();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ssh-agent-proxy".into())
            .spawn(move || serve(&listener, &agent, &flag))
            .map_err(ExecError::fs("cannot start the ssh agent proxy for", path))?;
        Ok(AgentProxy {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for AgentProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: &UnixListener, agent: &Path, stop: &AtomicBool) {
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(upstream) = UnixStream::connect(agent) else {
            continue; // the client sees the connection close, as with a dead agent
        };
        let _ = std::thread::Builder::new()
            .name("ssh-agent-conn".into())
            .spawn(move || forward(client, upstream));
    }
}

/// Copies both ways until either side closes.
fn forward(client: UnixStream, upstream: UnixStream) {
    let (Ok(client_rx), Ok(upstream_tx)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || pump(client_rx, upstream_tx));
    pump(upstream, client);
    let _ = up.join();
}

fn pump(mut from: UnixStream, mut to: UnixStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
    let _ = from.shutdown(std::net::Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn parses_ssh_flags() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let _listener = UnixListener::bind(&sock).unwrap();
        let spec = SshSpec::parse(&format!("default={}", sock.display())).unwrap();
        assert_eq!(spec.id, "default");
        assert_eq!(spec.socket, sock);
        let file = dir.path().join("id_ed25519");
        std::fs::write(&file, "key").unwrap();
        let err = SshSpec::parse(&format!("default={}", file.display())).unwrap_err();
        assert!(err.reason.contains("not a socket"), "{err}");
        assert!(SshSpec::parse("=x").is_err());
        assert!(SshSpec::parse("a=/nonexistent/sock").is_err());
    }

    #[test]
    fn proxy_forwards_both_ways_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let agent_path = dir.path().join("agent.sock");
        let agent = UnixListener::bind(&agent_path).unwrap();
        let echo = std::thread::spawn(move || {
            let (mut conn, _) = agent.accept().unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&buf.map(|b| b.to_ascii_uppercase()))
                .unwrap();
        });
        let proxy_path = dir.path().join("proxy.sock");
        let proxy = AgentProxy::start(&proxy_path, &agent_path, (0, 0), 0o600).unwrap();
        let mode = std::fs::metadata(&proxy_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut conn = UnixStream::connect(&proxy_path).unwrap();
        conn.write_all(b"hello").unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "HELLO");
        echo.join().unwrap();
        drop(proxy);
        assert!(!proxy_path.exists());
    }
}
