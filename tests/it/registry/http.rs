//! Just enough HTTP/1.1 for the in-process test servers (token issuer, fault proxy):
//! message heads, body framing (`Content-Length`, chunked, until close), bodies streamed
//! with their framing kept, and `application/x-www-form-urlencoded` decoding.
//!
//! Not a general HTTP implementation: no pipelining, no header folding, no trailers
//! beyond passing them through. Bodies are never buffered here unless a caller asks for
//! [`read_body`] with a size cap.

use std::io::{self, BufRead, Read, Write};

/// Longest head line accepted; registries and clients send far shorter ones.
const MAX_LINE: usize = 64 * 1024;

/// A request or status line with its header fields, as read from the wire.
#[derive(Clone, Debug)]
pub struct Head {
    /// `GET /v2/ HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub line: String,
    /// Header fields in wire order, names as sent.
    pub headers: Vec<(String, String)>,
}

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the sender closes the connection (responses only).
    UntilClose,
}

impl Head {
    /// Reads a head; `None` when the peer closed before sending anything.
    pub fn read(r: &mut impl BufRead) -> io::Result<Option<Head>> {
        let line = read_line(r)?;
        let Some(line) = line else { return Ok(None) };
        let mut headers = Vec::new();
        loop {
            let field =
                read_line(r)?.ok_or_else(|| invalid("connection closed inside a message head"))?;
            if field.is_empty() {
                break;
            }
            let (name, value) = field
                .split_once(':')
                .ok_or_else(|| invalid(format!("malformed header field `{field}`")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(Some(Head { line, headers }))
    }

    /// A response head with a status line and no fields yet.
    pub fn response(status: u16, reason: &str) -> Head {
        Head {
            line: format!("HTTP/1.1 {status} {reason}"),
            headers: Vec::new(),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces every field `name` with one field `name: value`.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.remove_header(name);
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    /// Removes every field `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Method and target of a request line.
    pub fn request_parts(&self) -> Option<(&str, &str)> {
        let mut words = self.line.split(' ');
        Some((words.next()?, words.next()?))
    }

    /// Status code of a status line.
    pub fn status(&self) -> Option<u16> {
        self.line.split(' ').nth(1)?.parse().ok()
    }

    /// Body framing of a request (RFC 9112 section 6.3: no length means no body).
    pub fn request_framing(&self) -> io::Result<Framing> {
        Ok(self.declared_framing()?.unwrap_or(Framing::Empty))
    }

    /// Body framing of a response to a `method` request (RFC 9112 section 6.3).
    pub fn response_framing(&self, method: &str) -> io::Result<Framing> {
        let status = self.status().unwrap_or(0);
        if method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(Framing::Empty);
        }
        Ok(self.declared_framing()?.unwrap_or(Framing::UntilClose))
    }

    fn declared_framing(&self) -> io::Result<Option<Framing>> {
        let chunked = self
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return Ok(Some(Framing::Chunked));
        }
        match self.header("content-length") {
            Some(len) => len
                .parse()
                .map(|n| Some(Framing::Length(n)))
                .map_err(|_| invalid(format!("bad Content-Length `{len}`"))),
            None => Ok(None),
        }
    }

    /// Writes the head and the blank line that ends it.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut text = format!("{}\r\n", self.line);
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        w.write_all(text.as_bytes())
    }
}

/// Copies a body from `r` to `w`, keeping its framing (a chunked body stays chunked);
/// returns the number of payload bytes.
pub fn copy_body(r: &mut impl BufRead, w: &mut impl Write, framing: Framing) -> io::Result<u64> {
    match framing {
        Framing::Empty => Ok(0),
        Framing::Length(n) => copy_exact(r, w, n, None),
        Framing::UntilClose => io::copy(r, w),
        Framing::Chunked => {
            let mut total = 0;
            loop {
                let size = read_chunk_size(r)?;
                write!(w, "{size:x}\r\n")?;
                if size == 0 {
                    // Trailer fields, then the blank line that ends the message.
                    loop {
                        let line = read_line(r)?.unwrap_or_default();
                        w.write_all(format!("{line}\r\n").as_bytes())?;
                        if line.is_empty() {
                            return Ok(total);
                        }
                    }
                }
                total += copy_exact(r, w, size, None)?;
                expect_crlf(r)?;
                w.write_all(b"\r\n")?;
            }
        }
    }
}

/// Reads and discards a body; returns its payload size.
pub fn drain_body(r: &mut impl BufRead, framing: Framing) -> io::Result<u64> {
    copy_body(r, &mut io::sink(), framing)
}

/// Reads a whole body, de-chunked, failing when it exceeds `max` bytes.
pub fn read_body(r: &mut impl BufRead, framing: Framing, max: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match framing {
        Framing::Empty => {}
        Framing::Length(n) if n > max => return Err(invalid("body too large")),
        Framing::Length(n) => {
            copy_exact(r, &mut out, n, None)?;
        }
        Framing::UntilClose => {
            r.take(max + 1).read_to_end(&mut out)?;
        }
        Framing::Chunked => loop {
            let size = read_chunk_size(r)?;
            if size == 0 {
                while !read_line(r)?.unwrap_or_default().is_empty() {}
                break;
            }
            if out.len() as u64 + size > max {
                return Err(invalid("body too large"));
            }
            copy_exact(r, &mut out, size, None)?;
            expect_crlf(r)?;
        },
    }
    if out.len() as u64 > max {
        return Err(invalid("body too large"));
    }
    Ok(out)
}

/// Copies exactly `n` bytes, inverting the byte at offset `flip` (if any) on the way.
pub fn copy_exact(
    r: &mut impl Read,
    w: &mut impl Write,
    n: u64,
    flip: Option<u64>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    while done < n {
        let want = usize::try_from(n - done).map_or(buf.len(), |left| left.min(buf.len()));
        let got = r.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("body ended after {done} of {n} bytes"),
            ));
        }
        if let Some(at) = flip.filter(|at| (done..done + got as u64).contains(at)) {
            // invariant: `at - done < got`, checked by the range test above.
            let i = (at - done) as usize;
            buf[i] = !buf[i];
        }
        w.write_all(&buf[..got])?;
        done += got as u64;
    }
    Ok(done)
}

/// Decodes `a=b&c=d` (a query string or a form body), `+` as space, `%XX` escapes.
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|h| bytes[i] == b'%' && h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_chunk_size(r: &mut impl BufRead) -> io::Result<u64> {
    let line = read_line(r)?.ok_or_else(|| invalid("connection closed before a chunk"))?;
    let size = line.split(';').next().unwrap_or("").trim();
    u64::from_str_radix(size, 16).map_err(|_| invalid(format!("bad chunk size `{line}`")))
}

fn expect_crlf(r: &mut impl BufRead) -> io::Result<()> {
    match read_line(r)? {
        Some(l) if l.is_empty() => Ok(()),
        _ => Err(invalid("missing CRLF after a chunk")),
    }
}

/// One line without its CRLF (or bare LF); `None` at end of stream.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = r.take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(invalid("line too long or cut off"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| invalid("non-UTF-8 bytes in a message head"))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}
