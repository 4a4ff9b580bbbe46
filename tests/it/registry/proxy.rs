//! `FaultProxy`: an HTTP/1.1 reverse proxy on `127.0.0.1:<ephemeral>` in front of a
//! plain-HTTP registry, injecting the faults of its [`Rule`]s (5xx, 429, dropped
//! connections, cut, corrupted or stalled bodies) and recording every request.
//!
//! One request per client connection: every answer says `Connection: close`. Bodies are
//! streamed in both directions with their framing (`Content-Length` or chunked), so
//! uploads of any size pass without being held in memory; only a response that a body
//! fault applies to and that has no `Content-Length` is buffered. `Location` headers
//! that name the registry are rewritten to name the proxy, so upload sessions keep
//! going through it. `Expect: 100-continue` is answered by the proxy itself.

use std::io::{self, BufReader, BufWriter, Cursor, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::fault::{Fault, Rule, RuleCounts, RuleId, Rules};
use super::http::{self, Framing, Head};
use super::listener::Server;
use super::server::Registry;

/// Largest body buffered to apply a body fault to a response without a length.
const MAX_BUFFERED: u64 = 256 * 1024 * 1024;
/// How long a stalled body waits for [`FaultProxy::resume_stalled`] at most (a test
/// that failed before resuming must not leave its client hanging forever).
const MAX_STALL: Duration = Duration::from_secs(300);

/// One request the proxy received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The fault applied to it, if any.
    pub fault: Option<Fault>,
    /// Status sent to the client; `None` when the connection was dropped or failed.
    pub status: Option<u16>,
}

/// A fault-injecting proxy; stops accepting when dropped.
pub struct FaultProxy {
    shared: Arc<Shared>,
    server: Server,
}

struct Shared {
    upstream: String,
    /// Own address, known once the listener is bound (before any client can connect).
    own: OnceLock<SocketAddr>,
    state: Mutex<State>,
    /// Opened by [`FaultProxy::resume_stalled`]: stalled bodies go on.
    resumed: (Mutex<bool>, Condvar),
}

#[derive(Default)]
struct State {
    rules: Rules,
    requests: Vec<ProxiedRequest>,
}

impl FaultProxy {
    /// A proxy forwarding to the plain-HTTP registry at `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            own: OnceLock::new(),
            state: Mutex::new(State::default()),
            resumed: (Mutex::new(false), Condvar::new()),
        });
        let serving = Arc::clone(&shared);
        let server = Server::start("fault proxy", move |conn| serving.serve(conn));
        let _ = shared.own.set(server.addr());
        FaultProxy { shared, server }
    }

    /// A proxy in front of `registry`, which must be plain HTTP.
    pub fn to(registry: &Registry) -> FaultProxy {
        assert!(
            registry.ca_cert().is_none(),
            "FaultProxy forwards to plain-HTTP registries only"
        );
        FaultProxy::start(registry.host())
    }

    /// Adds a rule after the existing ones (see [`super::fault`] for the order).
    pub fn add(&self, rule: Rule) -> RuleId {
        self.shared.state().rules.add(rule)
    }

    /// Counters of rule `id`.
    pub fn counts(&self, id: RuleId) -> RuleCounts {
        self.shared.state().rules.counts(id)
    }

    /// Every request handled so far, in the order they finished.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.shared.state().requests.clone()
    }

    /// Lets what [`Fault::StallBody`] and [`Fault::Hold`] hold (now and later) go on.
    pub fn resume_stalled(&self) {
        let (open, changed) = &self.shared.resumed;
        *open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        changed.notify_all();
    }

    /// `127.0.0.1:PORT` of the proxy: use it as the registry host.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Handles one client connection and closes it.
    fn serve(&self, client: TcpStream) {
        let mut record = None;
        if let Err(e) = self.handle(&client, &mut record) {
            // Clients see a closed connection; the test sees the record without status.
            if let Some(r) = &record {
                eprintln!("fault proxy: {} {}: {e}", r.method, r.target);
            }
        }
        // The reader holds a dup of the socket: shut down explicitly so the peer sees EOF.
        let _ = client.shutdown(Shutdown::Both);
        if let Some(r) = record {
            self.state().requests.push(r);
        }
    }

    fn handle(&self, client: &TcpStream, record: &mut Option<ProxiedRequest>) -> io::Result<()> {
        let mut from_client = BufReader::new(client.try_clone()?);
        let mut to_client = BufWriter::new(client.try_clone()?);
        let Some(mut head) = Head::read(&mut from_client)? else {
            return Ok(());
        };
        let (method, target) = head
            .request_parts()
            .map(|(m, t)| (m.to_owned(), t.to_owned()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad request line"))?;
        let request = record.insert(ProxiedRequest {
            method: method.clone(),
            target: target.clone(),
            fault: None,
            status: None,
        });
        let framing = head.request_framing()?;
        if head
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            head.remove_header("expect");
            to_client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            to_client.flush()?;
        }
        let decision = self.state().rules.decide(&method, &target);
        if let Some((_, Fault::Hold)) = decision {
            request.fault = Some(Fault::Hold);
            wait_until_resumed(&self.resumed);
        } else if let Some((_, fault)) = decision.filter(|(_, f)| !f.on_response()) {
            request.fault = Some(fault);
            // Read the whole request first, as a server would, so the client is not
            // reset in the middle of sending it.
            http::drain_body(&mut from_client, framing)?;
            request.status = answer_instead(fault, &mut to_client)?;
            return Ok(());
        }

        let upstream = TcpStream::connect(&self.upstream)?;
        let mut to_upstream = BufWriter::new(upstream.try_clone()?);
        head.set_header("Host", &self.upstream);
        head.set_header("Connection", "close");
        head.remove_header("keep-alive");
        head.remove_header("proxy-connection");
        head.write_to(&mut to_upstream)?;
        // A registry may answer early and stop reading (401 on an upload): read its
        // answer anyway.
        let sent = http::copy_body(&mut from_client, &mut to_upstream, framing)
            .and_then(|_| to_upstream.flush());
        let mut from_upstream = BufReader::new(upstream);
        let mut response = loop {
            match Head::read(&mut from_upstream) {
                Ok(Some(h)) if h.status().is_some_and(|s| (100..200).contains(&s)) => continue,
                Ok(Some(h)) => break h,
                Ok(None) => return sent.and(Err(closed("registry closed without answering"))),
                Err(e) => return sent.and(Err(e)),
            }
        };
        self.rewrite_location(&mut response);
        response.set_header("Connection", "close");
        response.remove_header("keep-alive");
        let body = response.response_framing(&method)?;
        let status = response.status();
        request.status = status;

        let body_fault = decision.filter(|(_, f)| f.on_response());
        let applicable = status.is_some_and(|s| s == 200 || s == 206)
            && !matches!(body, Framing::Empty | Framing::Length(0));
        match body_fault {
            Some((_, fault)) if applicable => {
                request.fault = Some(fault);
                let faulty = Faulty {
                    fault,
                    resumed: &self.resumed,
                };
                faulty.send(response, body, &mut from_upstream, &mut to_client)
            }
            other => {
                if let Some((id, _)) = other {
                    self.state().rules.release(id);
                }
                response.write_to(&mut to_client)?;
                http::copy_body(&mut from_upstream, &mut to_client, body)?;
                to_client.flush()
            }
        }
    }

    /// `http://REGISTRY/...` -> `http://PROXY/...`; relative locations stay as they are.
    fn rewrite_location(&self, response: &mut Head) {
        let (Some(location), Some(own)) = (response.header("location"), self.own.get()) else {
            return;
        };
        let upstream = format!("http://{}", self.upstream);
        if let Some(rest) = location.strip_prefix(&upstream) {
            let rewritten = format!("http://{own}{rest}");
            response.set_header("Location", &rewritten);
        }
    }
}

/// Answers a request with `fault` instead of the registry; returns the status sent.
fn answer_instead(fault: Fault, to_client: &mut impl Write) -> io::Result<Option<u16>> {
    let (status, reason, code) = match fault {
        Fault::Drop => return Ok(None),
        Fault::TooManyRequests => (429, "Too Many Requests", "TOOMANYREQUESTS"),
        Fault::Status(s) => (s, "Injected Fault", "UNKNOWN"),
        // invariant: response faults are never answered instead of the registry.
        Fault::CutBody | Fault::CorruptBody | Fault::StallBody | Fault::Hold => {
            (500, "Internal Server Error", "UNKNOWN")
        }
    };
    let body = serde_json::json!({
        "errors": [{ "code": code, "message": format!("fault injected by the test proxy ({status})") }]
    })
    .to_string();
    let mut head = Head::response(status, reason);
    head.set_header("Content-Type", "application/json");
    head.set_header("Content-Length", &body.len().to_string());
    head.set_header("Connection", "close");
    if fault == Fault::TooManyRequests {
        head.set_header("Retry-After", "1");
    }
    head.write_to(to_client)?;
    to_client.write_all(body.as_bytes())?;
    to_client.flush()?;
    Ok(Some(status))
}

/// A body fault, and the gate a stalled body waits at.
struct Faulty<'a> {
    fault: Fault,
    resumed: &'a (Mutex<bool>, Condvar),
}

impl Faulty<'_> {
    /// Sends `response` with its body cut in half, with its middle byte inverted, or
    /// held after its first half until the proxy resumes stalled bodies.
    fn send(
        &self,
        mut response: Head,
        body: Framing,
        from_upstream: &mut BufReader<TcpStream>,
        to_client: &mut BufWriter<TcpStream>,
    ) -> io::Result<()> {
        let (len, mut source): (u64, Box<dyn Read + '_>) = match body {
            Framing::Length(n) => (n, Box::new(from_upstream)),
            other => {
                // No length to cut or flip against: take the whole body first.
                let whole = http::read_body(from_upstream, other, MAX_BUFFERED)?;
                response.remove_header("transfer-encoding");
                response.set_header("Content-Length", &whole.len().to_string());
                (whole.len() as u64, Box::new(Cursor::new(whole)))
            }
        };
        response.write_to(to_client)?;
        match self.fault {
            Fault::CutBody => http::copy_exact(&mut source, to_client, len / 2, None)?,
            Fault::StallBody => {
                http::copy_exact(&mut source, to_client, len / 2, None)?;
                to_client.flush()?;
                wait_until_resumed(self.resumed);
                http::copy_exact(&mut source, to_client, len - len / 2, None)?
            }
            _ => http::copy_exact(&mut source, to_client, len, Some(len / 2))?,
        };
        // A cut body ends with the connection: the client sees fewer bytes than promised.
        to_client.flush()
    }
}

/// Blocks until the proxy resumes what it holds (or [`MAX_STALL`] passed).
fn wait_until_resumed(resumed: &(Mutex<bool>, Condvar)) {
    let (open, changed) = resumed;
    let guard = open.lock().unwrap_or_else(|p| p.into_inner());
    let _ = changed.wait_timeout_while(guard, MAX_STALL, |open| !*open);
}

fn closed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what.to_owned())
}
