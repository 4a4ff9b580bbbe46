//! The URL reading that git references inherit from Go and BuildKit.
//!
//! Owns three syntaxes, each returning the same [`UrlParts`]:
//!
//! * `scheme://[user@]host/path[?query][#fragment]`, read as Go's `net/url.Parse` does
//!   (control characters, bad `%` escapes, bad hosts and ports are errors; the scheme is
//!   lowercased; path and fragment are percent-decoded) and written back without query
//!   and fragment as Go's `URL.String` does;
//! * the scheme-less `github.com/owner/repo[...]` form, which BuildKit reads with
//!   `url.Parse` and treats as `https`;
//! * scp-like `user@host:path[?query][#fragment]` (BuildKit's `sshutil.ParseSCPStyleURL`:
//!   user `[A-Za-z0-9_-]+`, host `[A-Za-z0-9.-]+`, no newline, fragment kept raw).
//!
//! Query strings follow Go's `url.ParseQuery`: `&`-separated, `+` is a space, pairs with a
//! `;` or a bad escape are dropped (and make the scp form fail). Decoded text that is not
//! UTF-8 is kept with replacement characters.

/// A git remote URL split into what `dfgitutil` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    /// Lowercased scheme; `ssh` for the scp-like form, empty for the scheme-less form.
    pub scheme: String,
    /// The decoded path (bytes: a `%FF` escape need not be UTF-8).
    pub path: Vec<u8>,
    /// The URL without query and fragment, as BuildKit passes it to git.
    pub remote: String,
    /// The query pairs in order.
    pub query: Vec<(String, String)>,
    /// The fragment (`ref[:subdir]`).
    pub fragment: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    UserPassword,
    Fragment,
    QueryComponent,
}

/// Reads `scheme://...` (the caller has checked the scheme).
pub(crate) fn parse_with_scheme(raw: &str) -> Option<UrlParts> {
    let (scheme, rest) = raw_checked(raw)?.split_once("://")?;
    let (before_fragment, fragment) = split_fragment(rest)?;
    let (before_query, raw_query, force_query) = split_query(before_fragment);
    let (authority, raw_path) =
        before_query.split_at(before_query.find('/').unwrap_or(before_query.len()));
    let (userinfo, host) = parse_authority(authority)?;
    let path = unescape(raw_path, Mode::Path)?;
    let mut remote = format!("{}:", scheme.to_lowercase());
    if !host.is_empty() || !path.is_empty() || userinfo.is_some() {
        remote.push_str("//");
    }
    if let Some((user, password)) = &userinfo {
        remote.push_str(&escape(user, Mode::UserPassword));
        if let Some(password) = password {
            remote.push(':');
            remote.push_str(&escape(password, Mode::UserPassword));
        }
        remote.push('@');
    }
    remote.push_str(&escape(&host, Mode::Host));
    remote.push_str(&escaped_path(raw_path, &path));
    if force_query {
        remote.push('?');
    }
    Some(UrlParts {
        scheme: scheme.to_lowercase(),
        path,
        remote,
        query: parse_query(raw_query).0,
        fragment,
    })
}

/// Reads the scheme-less `github.com/...` form; `remote` is the escaped path.
pub(crate) fn parse_without_scheme(raw: &str) -> Option<UrlParts> {
    let (before_fragment, fragment) = split_fragment(raw_checked(raw)?)?;
    let (raw_path, raw_query, force_query) = split_query(before_fragment);
    if raw_path
        .split('/')
        .next()
        .is_some_and(|segment| segment.contains(':'))
    {
        return None;
    }
    let path = unescape(raw_path, Mode::Path)?;
    let mut remote = escaped_path(raw_path, &path);
    if force_query {
        remote.push('?');
    }
    Some(UrlParts {
        scheme: String::new(),
        path,
        remote,
        query: parse_query(raw_query).0,
        fragment,
    })
}

/// Reads `user@host:path[?query][#fragment]`.
pub(crate) fn parse_scp_like(raw: &str) -> Option<UrlParts> {
    let (user, rest) = raw.split_once('@')?;
    let (host, rest) = rest.split_once(':')?;
    let user_ok = user
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let host_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if user.is_empty() || host.is_empty() || !user_ok || !host_ok || rest.contains('\n') {
        return None;
    }
    let (before_fragment, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, raw_query) = before_fragment
        .split_once('?')
        .unwrap_or((before_fragment, ""));
    let (query, had_error) = parse_query(raw_query);
    if had_error {
        return None;
    }
    Some(UrlParts {
        scheme: "ssh".to_owned(),
        path: path.as_bytes().to_vec(),
        remote: format!("{user}@{host}:{path}"),
        query,
        fragment: fragment.to_owned(),
    })
}

/// `raw` when it has no ASCII control character (Go rejects those).
fn raw_checked(raw: &str) -> Option<&str> {
    (!raw.bytes().any(|b| b < 0x20 || b == 0x7f)).then_some(raw)
}

/// Splits at the first `#`, decoding the fragment.
fn split_fragment(raw: &str) -> Option<(&str, String)> {
    match raw.split_once('#') {
        Some((before, fragment)) => Some((before, lossy(unescape(fragment, Mode::Fragment)?))),
        None => Some((raw, String::new())),
    }
}

/// Splits at the first `?`; a lone trailing `?` is Go's `ForceQuery` (kept in the remote).
fn split_query(raw: &str) -> (&str, &str, bool) {
    match raw.strip_suffix('?') {
        Some(before) if !before.contains('?') => (before, "", true),
        _ => {
            let (before, query) = raw.split_once('?').unwrap_or((raw, ""));
            (before, query, false)
        }
    }
}

/// Userinfo (user, optional password) and host of an authority, validated as Go does.
type Authority = (Option<(String, Option<String>)>, String);

fn parse_authority(authority: &str) -> Option<Authority> {
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    let host = parse_host(host)?;
    let Some(userinfo) = userinfo else {
        return Some((None, host));
    };
    let valid = userinfo
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&b));
    if !valid {
        return None;
    }
    let decode = |s: &str| unescape(s, Mode::UserPassword).map(lossy);
    let user = match userinfo.split_once(':') {
        Some((user, password)) => (decode(user)?, Some(decode(password)?)),
        None => (decode(userinfo)?, None),
    };
    Some((Some(user), host))
}

/// Go's `parseHost`: a valid optional `:port` (after `]` for IPv6 literals), and only
/// characters a host may hold.
fn parse_host(host: &str) -> Option<String> {
    let port = if host.starts_with('[') {
        let close = host.rfind(']')?;
        host.get(close + 1..)?
    } else {
        host.rfind(':').and_then(|i| host.get(i..)).unwrap_or("")
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return None;
    }
    unescape(host, Mode::Host).map(lossy)
}

/// Go's `url.ParseQuery`: the pairs that decode, and whether any pair was dropped.
fn parse_query(raw: &str) -> (Vec<(String, String)>, bool) {
    let mut pairs = Vec::new();
    let mut had_error = false;
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        if part.contains(';') {
            had_error = true;
            continue;
        }
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        match (
            unescape(key, Mode::QueryComponent),
            unescape(value, Mode::QueryComponent),
        ) {
            (Some(key), Some(value)) => pairs.push((lossy(key), lossy(value))),
            _ => had_error = true,
        }
    }
    (pairs, had_error)
}

/// Go's `unescape`: `%XX` decoding (plus `+` as space in query components); `None` for a
/// malformed escape or, in a host, a character hosts may not contain.
fn unescape(s: &str, mode: Mode) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&c| hex_value(c))?;
                let lo = bytes.get(i + 2).and_then(|&c| hex_value(c))?;
                // Hosts may use %-escapes only for non-ASCII bytes (and %25 in zones).
                if mode == Mode::Host && hi < 8 && (hi, lo) != (2, 5) {
                    return None;
                }
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            b'+' if mode == Mode::QueryComponent => out.push(b' '),
            _ if mode == Mode::Host && b < 0x80 && should_escape(b, mode) => return None,
            _ => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Go's `shouldEscape` for the modes used here.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host && b"!$&'()*+,;=:[]<>\"".contains(&c) {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => c == b'?',
            Mode::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::QueryComponent => true,
            Mode::Fragment => false,
            Mode::Host => true,
        },
        b'!' | b'(' | b')' | b'*' if mode == Mode::Fragment => false,
        _ => true,
    }
}

/// Go's `escape` (never in query mode here, so no `+` for space).
fn escape(s: &str, mode: Mode) -> String {
    escape_bytes(s.as_bytes(), mode)
}

fn escape_bytes(bytes: &[u8], mode: Mode) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if should_escape(b, mode) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Go's `URL.EscapedPath`: the path as written when that is a valid encoding of it,
/// otherwise the decoded path re-escaped.
fn escaped_path(raw: &str, decoded: &[u8]) -> String {
    let valid_encoded = raw
        .bytes()
        .all(|b| b"!$&'()*+,;=:@[]%".contains(&b) || !should_escape(b, Mode::Path));
    if valid_encoded {
        raw.to_owned()
    } else {
        escape_bytes(decoded, Mode::Path)
    }
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> UrlParts {
        match parse_with_scheme(raw) {
            Some(parts) => parts,
            None => panic!("{raw}: rejected"),
        }
    }

    #[test]
    fn splits_standard_urls() {
        let parts = url("HTTPS://u:p@example.com:8443/a/b.git?ref=x&tag=a+b#v1:sub");
        assert_eq!(parts.scheme, "https");
        assert_eq!(parts.remote, "https://u:p@example.com:8443/a/b.git");
        assert_eq!(parts.path, b"/a/b.git");
        assert_eq!(
            parts.query,
            [
                ("ref".to_owned(), "x".to_owned()),
                ("tag".to_owned(), "a b".to_owned())
            ]
        );
        assert_eq!(parts.fragment, "v1:sub");
        assert_eq!(url("git://h/r?").remote, "git://h/r?");
        assert_eq!(url("https://h/a%2Fb.git#x%2Fy").fragment, "x/y");
        assert_eq!(url("https://h/a%2Fb.git").path, b"/a/b.git");
        assert_eq!(url("https://h/a%2Fb.git").remote, "https://h/a%2Fb.git");
        assert_eq!(url("https://h/a b.git").remote, "https://h/a%20b.git");
        assert_eq!(
            url("https://[::1]:80/r.git").remote,
            "https://[::1]:80/r.git"
        );
    }

    #[test]
    fn rejects_what_go_rejects() {
        for raw in [
            "https://h/a\n.git",
            "https://h/%zz.git",
            "https://h:port/r.git",
            "https://[::1/r.git",
            "https://h/r.git#%",
            "https://a b/r.git",
            "https://us\"er@h/r.git",
        ] {
            assert_eq!(parse_with_scheme(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn query_drops_bad_pairs() {
        let (pairs, had_error) = parse_query("a=1&b;c=2&&d&e=%zz&f=%41");
        assert!(had_error);
        assert_eq!(
            pairs,
            [
                ("a".to_owned(), "1".to_owned()),
                ("d".to_owned(), String::new()),
                ("f".to_owned(), "A".to_owned())
            ]
        );
    }

    #[test]
    fn scp_like_form() {
        let parts = parse_scp_like("git@github.com:moby/buildkit.git?subdir=/x#v1");
        let Some(parts) = parts else {
            panic!("rejected")
        };
        assert_eq!(parts.remote, "git@github.com:moby/buildkit.git");
        assert_eq!(parts.query, [("subdir".to_owned(), "/x".to_owned())]);
        assert_eq!(parts.fragment, "v1");
        assert_eq!(
            parse_scp_like("g@h:p#a?b").map(|p| p.fragment),
            Some("a?b".to_owned())
        );
        for raw in [
            "@h:p",
            "u@:p",
            "u@h",
            "u!@h:p",
            "u@h_:p",
            "u@h:p\n",
            "u@h:p?a;b",
        ] {
            assert_eq!(parse_scp_like(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn schemeless_form() {
        let parts = parse_without_scheme("github.com/moby/buildkit?tag=v1#main");
        let Some(parts) = parts else {
            panic!("rejected")
        };
        assert_eq!(parts.remote, "github.com/moby/buildkit");
        assert_eq!(parts.fragment, "main");
        assert_eq!(parts.query, [("tag".to_owned(), "v1".to_owned())]);
    }
}
