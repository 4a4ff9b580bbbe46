//! `WWW-Authenticate` challenges (RFC 7235) as registries send them, and the token
//! scopes a client asks for.
//!
//! `Bearer realm="https://auth.example/token",service="registry.example",
//! scope="repository:team/app:pull,push"` names the token endpoint, the service and the
//! scope the failing request needed; `Basic realm="..."` asks for a user and password.
//! Parameter values are tokens or quoted strings (which may hold commas and `\"`); one
//! header may carry several challenges.

use std::collections::BTreeMap;

/// One authentication challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic authentication.
    Basic { realm: Option<String> },
    /// A bearer token from `realm` (the token endpoint) for `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// A scheme rbuild does not speak (named, for the error message).
    Other { scheme: String },
}

/// The challenges in a `WWW-Authenticate` header value (malformed parts are skipped).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut lexer = Lexer {
        rest: header.trim(),
    };
    let mut current: Option<(String, BTreeMap<String, String>)> = None;
    while let Some(token) = lexer.token() {
        lexer.skip_spaces();
        if lexer.eat('=') {
            // A parameter of the current challenge.
            lexer.skip_spaces();
            let value = lexer.value();
            if let Some((_, params)) = current.as_mut() {
                params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            // A new scheme.
            if let Some(done) = current.take() {
                out.push(build(done));
            }
            current = Some((token, BTreeMap::new()));
        }
        lexer.skip_spaces();
        lexer.eat(',');
        lexer.skip_spaces();
    }
    if let Some(done) = current {
        out.push(build(done));
    }
    out
}

fn build((scheme, mut params): (String, BTreeMap<String, String>)) -> Challenge {
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Challenge::Basic {
            realm: params.remove("realm"),
        },
        "bearer" => match params.remove("realm") {
            Some(realm) => Challenge::Bearer {
                realm,
                service: params.remove("service"),
                scope: params.remove("scope"),
            },
            None => Challenge::Other { scheme },
        },
        _ => Challenge::Other { scheme },
    }
}

struct Lexer<'a> {
    rest: &'a str,
}

impl Lexer<'_> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    /// An RFC 7230 token (letters, digits and `!#$%&'*+-.^_`|~`).
    fn token(&mut self) -> Option<String> {
        self.skip_spaces();
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)))
            .unwrap_or(self.rest.len());
        if end == 0 {
            // Not a token: skip one character so a malformed header cannot loop.
            let mut chars = self.rest.chars();
            chars.next()?;
            self.rest = chars.as_str();
            return self.token();
        }
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(token.to_owned())
    }

    /// A quoted string (with `\` escapes) or a bare token-ish value up to `,`.
    fn value(&mut self) -> String {
        if let Some(rest) = self.rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = rest.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            out.push(next);
                        }
                    }
                    '"' => {
                        self.rest = &rest[i + 1..];
                        return out;
                    }
                    c => out.push(c),
                }
            }
            self.rest = "";
            return out;
        }
        let end = self.rest.find([',', ' ']).unwrap_or(self.rest.len());
        let (value, rest) = self.rest.split_at(end);
        self.rest = rest;
        value.to_owned()
    }
}

/// The token scope for `actions` (`pull`, `push`) on `repository`.
pub fn repository_scope(repository: &str, actions: &[&str]) -> String {
    format!("repository:{repository}:{}", actions.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_challenges() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            parse_challenges(h),
            [Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="rbuild-peers""#),
            [Challenge::Basic {
                realm: Some("rbuild-peers".into())
            }]
        );
        // Commas inside quotes, escapes, odd spacing and case, several challenges.
        let h = r#"bearer  realm = "http://127.0.0.1:1/t" , scope="repository:a/b:pull,push", service=reg, Basic realm="x \"y\"""#;
        assert_eq!(
            parse_challenges(h),
            [
                Challenge::Bearer {
                    realm: "http://127.0.0.1:1/t".into(),
                    service: Some("reg".into()),
                    scope: Some("repository:a/b:pull,push".into()),
                },
                Challenge::Basic {
                    realm: Some("x \"y\"".into())
                },
            ]
        );
    }

    #[test]
    fn tolerates_malformed_headers() {
        assert_eq!(parse_challenges(""), []);
        assert_eq!(
            parse_challenges("Negotiate"),
            [Challenge::Other {
                scheme: "Negotiate".into()
            }]
        );
        assert_eq!(
            parse_challenges("Bearer service=x"),
            [Challenge::Other {
                scheme: "Bearer".into()
            }],
            "a bearer challenge without a realm cannot be followed"
        );
        // Garbage does not loop or panic.
        let _ = parse_challenges("=,=\"unterminated");
        let _ = parse_challenges("Bearer realm=\"a\\");
    }

    #[test]
    fn scopes() {
        assert_eq!(
            repository_scope("team/app", &["pull", "push"]),
            "repository:team/app:pull,push"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(s in "\\PC{0,200}") {
            let _ = parse_challenges(&s);
        }
    }
}
