//! `ADD <http(s) URL>`: the file is downloaded (streamed to a temporary file and hashed
//! in the same pass), checked against `--checksum` when given, and added with mode 0600
//! and the server's `Last-Modified` time, as BuildKit does.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::digest::{Digest, Hasher};
use crate::executor::error::{ExecError, Result};
use crate::parser::instructions::values::redact_url_credentials;

/// A downloaded file.
#[derive(Debug)]
pub struct Fetched {
    /// The temporary file holding the content.
    pub file: tempfile::NamedTempFile,
    /// The file name the URL gives (its last path segment).
    pub name: String,
    /// `Last-Modified` as Unix seconds, when the server sent it.
    pub mtime: Option<i64>,
}

/// Whether a COPY/ADD source is a URL.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// The file name of a URL: its last non-empty path segment, else `index.html`.
pub fn url_file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("index.html")
        .to_owned()
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed a provider first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// What an ADD of `url` without `--checksum` gets, for its cache key: the content
/// digest, the file name and the modification time the server gives (downloaded into
/// `dir` and removed).
pub fn url_identity(url: &str, dir: &Path) -> Result<String> {
    let fetched = fetch(url, None, dir)?;
    let digest = crate::cache::hash_file(fetched.file.path())
        .map_err(ExecError::fs("cannot read", fetched.file.path()))?;
    Ok(format!("{digest} {} {:?}", fetched.name, fetched.mtime))
}

/// Downloads `url` into a temporary file in `dir`, verifying `checksum`
/// (`sha256:<hex>`) when given.
pub fn fetch(url: &str, checksum: Option<&str>, dir: &Path) -> Result<Fetched> {
    install_crypto();
    // Credentials in the URL (or echoed in a reason) are not shown.
    let failed = |reason: String| ExecError::Download {
        url: redact_url_credentials(url),
        reason: redact_url_credentials(&reason),
    };
    let expected = match checksum {
        Some(c) => Some(
            c.parse::<Digest>()
                .map_err(|e| failed(format!("invalid --checksum: {e}")))?,
        ),
        None => None,
    };
    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("rbuild/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    // The message names the URL already: its causes say why.
    let mut response = client
        .get(url)
        .send()
        .map_err(|e| failed(crate::registry::error_chain(&e.without_url())))?;
    if !response.status().is_success() {
        return Err(failed(format!("the server answered {}", response.status())));
    }
    let mtime = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    let file = tempfile::NamedTempFile::new_in(dir)
        .map_err(ExecError::fs("cannot create a file in", dir))?;
    let mut hasher = Hasher::new(file);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = response.read(&mut buf).map_err(|e| failed(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher
            .write_all(&buf[..n])
            .map_err(ExecError::fs("cannot write download to", dir))?;
    }
    let (digest, _, file) = hasher.finish();
    if let Some(expected) = expected {
        if expected != digest {
            return Err(ExecError::Checksum {
                url: redact_url_credentials(url),
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    Ok(Fetched {
        file,
        name: url_file_name(url),
        mtime,
    })
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into Unix seconds.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // A header from the network: fields out of range would overflow below.
    let fields_ok = (1..=31).contains(&day)
        && (0..=9999).contains(&year)
        && (0..24).contains(h)
        && (0..60).contains(m)
        && (0..=60).contains(s);
    if !fields_ok {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

/// Where a downloaded file goes: into `dest` when it names a directory.
pub fn target_for(dest: &str, name: &str) -> PathBuf {
    if dest.ends_with('/') {
        PathBuf::from(format!("{dest}{name}"))
    } else {
        PathBuf::from(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dates() {
        assert_eq!(
            url_file_name("https://example.com/a/b/file.tar.gz?x=1"),
            "file.tar.gz"
        );
        assert_eq!(url_file_name("http://example.com/"), "index.html");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("garbage"), None);
        // Out-of-range fields (a hostile server) are no date, not an overflow.
        assert_eq!(
            parse_http_date("Sun, 99999999999999999 Nov 1994 08:49:37 GMT"),
            None
        );
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 9999999999999:49:37 GMT"),
            None
        );
    }
}
