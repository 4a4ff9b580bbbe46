//! The caller ↔ helper protocol over one `SOCK_STREAM` socket pair.
//!
//! Down (caller → helper), once: a little-endian `u32` length and the JSON of the
//! [`SandboxSpec`]. After that the caller never writes again; when its end closes
//! (timeout, or the caller died) the helper kills the sandbox.
//!
//! Up (helper, init and the command's last steps → caller): [`Report`]s, one JSON
//! object per line. At most one `Failed`, one `Exited` and one `Usage` (after init is
//! gone, from a step with a cgroup) are sent per run.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use super::error::SetupOp;
use super::SandboxSpec;

/// Largest spec the helper accepts (a sanity bound, far above any real spec).
const MAX_SPEC: u32 = 64 << 20;

/// A message from the helper side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Report {
    /// A setup step (or the `execve` itself) failed.
    Failed {
        op: SetupOp,
        path: String,
        errno: i32,
    },
    /// The command ended: exit code (`128 + N` for signal `N`) and signal.
    Exited { code: i32, signal: Option<i32> },
    /// What the step's cgroup counted.
    Usage(super::cgroup::Usage),
    /// A stop signal reached the helper (Ctrl-C reaches rbuild's whole process group):
    /// it killed the step instead of waiting for it. The run is a cancel.
    Stopped,
}

impl Report {
    /// The report as one line.
    pub(super) fn to_line(&self) -> Vec<u8> {
        // invariant: serializing this enum of plain fields cannot fail.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// The framed spec, as the caller sends it.
pub(super) fn encode_spec(spec: &SandboxSpec) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(spec)?;
    let mut out = Vec::with_capacity(json.len() + 4);
    out.extend((json.len() as u32).to_le_bytes());
    out.extend(json);
    Ok(out)
}

/// Reads one framed spec.
pub(super) fn read_spec(mut from: impl Read) -> io::Result<SandboxSpec> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_SPEC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "spec too large"));
    }
    let mut json = vec![0u8; len as usize];
    from.read_exact(&mut json)?;
    serde_json::from_slice(&json).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Splits complete lines off `buf` and decodes them; an undecodable line is returned
/// as `Err(line)`.
pub(super) fn take_reports(buf: &mut Vec<u8>) -> Vec<Result<Report, String>> {
    let mut out = Vec::new();
    while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = buf.drain(..=pos).collect();
        let line = &line[..line.len() - 1];
        out.push(
            serde_json::from_slice(line).map_err(|_| String::from_utf8_lossy(line).into_owned()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::sandbox::Network;

    #[test]
    fn spec_round_trips_through_the_frame() {
        let spec = SandboxSpec {
            rootfs: "/r".into(),
            argv: vec!["sh".into(), "-c".into(), "echo é".into()],
            env: vec!["A=1".into()],
            cwd: "/".into(),
            uid: 1,
            gid: 2,
            additional_gids: vec![3],
            hostname: "h".into(),
            network: Network::None,
            mounts: vec![],
            hosts: "127.0.0.1 localhost\n".into(),
            resolv_conf: String::new(),
            timeout: Some(std::time::Duration::from_millis(1500)),
            limits: crate::executor::sandbox::Limits {
                memory: Some(64 << 20),
                ulimits: vec!["nofile=10:20".parse().unwrap()],
                ..Default::default()
            },
            cgroup: None,
            binfmt: None,
        };
        let frame = encode_spec(&spec).unwrap();
        assert_eq!(read_spec(&frame[..]).unwrap(), spec);
        assert!(read_spec(&frame[..frame.len() - 1]).is_err());
    }

    #[test]
    fn reports_are_split_by_line() {
        let a = Report::Failed {
            op: SetupOp::Mount,
            path: "/proc".into(),
            errno: 1,
        };
        let b = Report::Exited {
            code: 137,
            signal: Some(9),
        };
        let mut buf = a.to_line();
        buf.extend(b.to_line());
        buf.extend(b"{\"Exi");
        let got = take_reports(&mut buf);
        assert_eq!(got, vec![Ok(a), Ok(b)]);
        assert_eq!(buf, b"{\"Exi");
        buf.extend(b"\n");
        assert!(take_reports(&mut buf)[0].is_err());
    }
}
