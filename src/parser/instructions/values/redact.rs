//! Credentials in URLs kept out of what rbuild shows and keeps: progress lines, image
//! history, cache-key inputs (which the explanation logs store) and error messages.
//!
//! A password (`scheme://user:password@host`) becomes `xxxxx`, as Go's
//! `url.URL.Redacted` (BuildKit's `urlutil.RedactCredentials`) writes it. A user name
//! alone is kept, except in `http(s)://` URLs: there it is usually an access token
//! (`https://<token>@github.com/...`), so it goes too. The scp-like `git@host:path` form
//! has no password and is left as it is.

/// What replaces a secret.
const MASK: &str = "xxxxx";

/// `text` with the credentials of every `scheme://userinfo@` URL in it masked; text
/// without such a URL comes back unchanged.
pub fn redact_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let scheme = scheme_before(&before[..at]);
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(i) => {
                out.push_str(&masked_userinfo(&authority[..i], &scheme));
                out.push_str(&authority[i..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The scheme ending `before` (`[A-Za-z0-9+.-]*`), lowercased.
fn scheme_before(before: &str) -> String {
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
        .map_or(0, |i| i + 1);
    before[start..].to_ascii_lowercase()
}

fn masked_userinfo(userinfo: &str, scheme: &str) -> String {
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{MASK}"),
        None if matches!(scheme, "http" | "https") => MASK.to_owned(),
        None => userinfo.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url_credentials as redact;

    #[test]
    fn passwords_and_http_tokens_are_masked() {
        assert_eq!(
            redact("https://user:s3cret@h/r.git#main"),
            "https://user:xxxxx@h/r.git#main"
        );
        assert_eq!(redact("https://ghp_tok@h/r.git"), "https://xxxxx@h/r.git");
        assert_eq!(redact("HTTP://tok@h/r.git"), "HTTP://xxxxx@h/r.git");
        assert_eq!(redact("ssh://git:pw@h/r"), "ssh://git:xxxxx@h/r");
        assert_eq!(
            redact("ADD https://a:b@h/x.git ssh://git@h/y /d"),
            "ADD https://a:xxxxx@h/x.git ssh://git@h/y /d"
        );
        assert_eq!(redact("https://a:b@c@h/"), "https://a:xxxxx@h/");
    }

    #[test]
    fn text_without_credentials_is_unchanged() {
        for text in [
            "ssh://git@h/r",
            "git@h:org/r.git",
            "https://h/r.git?ref=a@b",
            "https://h/p@x",
            "COPY a b /c/",
            "x://",
            "",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
