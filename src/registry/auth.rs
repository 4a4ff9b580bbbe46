//! Registry authentication state of one client: which scheme each registry asked for,
//! the credentials found for it (looked up once), and bearer tokens cached per registry
//! and scope set until they expire.
//!
//! The flow is the one Docker's clients follow: a request goes out with what is known
//! (a cached token for exactly its scopes, or basic credentials for a registry that
//! asked for them); a `401` carries a challenge, which is answered (a token fetched from
//! its realm for the scopes the operation needs, not only the one the failing request
//! names, so one token covers a cross-repository mount) and the request is retried once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::challenge::{parse_challenges, Challenge};
use super::credentials::{Credential, CredentialFiles};
use super::error::{display_url, error_detail, RegistryError};

/// A token is not used in its last seconds (a slow upload must not start on one).
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Lifetime assumed when the token service gives none (the distribution spec's).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// The longest a token is kept, whatever `expires_in` says (a build is shorter, and
/// `Instant + Duration` must not overflow).
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What a request needs from one registry.
#[derive(Debug, Clone)]
pub struct Target {
    /// The registry as references name it (`docker.io`, `host:5000`).
    pub registry: String,
    /// The repository the request is about (for messages).
    pub repository: String,
    /// `pull` or `push`, for messages.
    pub action: &'static str,
    /// Token scopes, sorted (`repository:team/app:pull,push`, ...).
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
enum Scheme {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

struct Token {
    value: String,
    expires: Instant,
}

#[derive(Default)]
struct State {
    schemes: HashMap<String, Scheme>,
    credentials: HashMap<String, Option<Credential>>,
    tokens: HashMap<(String, String), Token>,
}

/// Credentials and tokens of one client.
pub struct Auth {
    files: CredentialFiles,
    /// `--creds`: used for every registry instead of the files.
    fixed: Option<Credential>,
    state: Mutex<State>,
    /// Held while a challenge is answered, so that threads hitting the same `401` at
    /// once fetch one token, not one each.
    answering: Mutex<()>,
}

/// How the token service is reached (the client that owns the TLS settings does it).
pub trait TokenFetch {
    /// Sends `request` built for `url` and returns (status, body).
    fn token_request(
        &self,
        url: &str,
        request: TokenRequest<'_>,
    ) -> Result<(u16, Vec<u8>), RegistryError>;
}

/// A token request: Docker's GET (basic credentials or anonymous) or the OAuth2 POST a
/// refresh (identity) token needs.
pub enum TokenRequest<'a> {
    Get {
        query: Vec<(&'a str, String)>,
        basic: Option<(&'a str, &'a str)>,
    },
    Post {
        form: Vec<(&'a str, String)>,
    },
}

impl Auth {
    pub fn new(files: CredentialFiles, fixed: Option<Credential>) -> Self {
        Auth {
            files,
            fixed,
            state: Mutex::new(State::default()),
            answering: Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn credential(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        if let Some(fixed) = &self.fixed {
            return Ok(Some(fixed.clone()));
        }
        if let Some(known) = self.lock().credentials.get(registry) {
            return Ok(known.clone());
        }
        let found = self.files.get(registry)?;
        self.lock()
            .credentials
            .insert(registry.to_owned(), found.clone());
        Ok(found)
    }

    /// The `Authorization` header to send up front for `target`, if one is known.
    pub fn header(&self, target: &Target) -> Result<Option<String>, RegistryError> {
        let scheme = self.lock().schemes.get(&target.registry).cloned();
        match scheme {
            Some(Scheme::Basic) => Ok(self.basic_header(&target.registry)?),
            Some(Scheme::Bearer { .. }) => {
                let key = (target.registry.clone(), target.scopes.join(" "));
                let state = self.lock();
                Ok(state
                    .tokens
                    .get(&key)
                    .filter(|t| t.expires > Instant::now() + EXPIRY_MARGIN)
                    .map(|t| format!("Bearer {}", t.value)))
            }
            None => Ok(None),
        }
    }

    fn basic_header(&self, registry: &str) -> Result<Option<String>, RegistryError> {
        Ok(match self.credential(registry)? {
            Some(Credential::Basic { username, password }) => Some(format!(
                "Basic {}",
                BASE64.encode(format!("{username}:{password}"))
            )),
            _ => None,
        })
    }

    /// Answers the `WWW-Authenticate` challenge of a `401` for `target`: the header to
    /// retry with. `stale` is the header the refused request carried (not reused).
    pub fn answer(
        &self,
        target: &Target,
        stale: Option<&str>,
        www_authenticate: &str,
        fetch: &dyn TokenFetch,
    ) -> Result<String, RegistryError> {
        let _answering = self.answering.lock().unwrap_or_else(|p| p.into_inner());
        // Another thread may have answered the same challenge while this one waited.
        if let Some(header) = self.header(target)? {
            if stale.is_none_or(|s| s != header) {
                return Ok(header);
            }
        }
        let challenges = parse_challenges(www_authenticate);
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer { realm, service, .. } => Some(Scheme::Bearer {
                realm: realm.clone(),
                service: service.clone(),
            }),
            _ => None,
        });
        let basic = challenges
            .iter()
            .any(|c| matches!(c, Challenge::Basic { .. }))
            .then_some(Scheme::Basic);
        let Some(scheme) = bearer.or(basic) else {
            return Err(RegistryError::Token {
                registry: target.registry.clone(),
                reason: format!("it asks for an unsupported authentication: {www_authenticate}"),
            });
        };
        self.lock()
            .schemes
            .insert(target.registry.clone(), scheme.clone());
        match scheme {
            Scheme::Basic => {
                self.basic_header(&target.registry)?
                    .ok_or_else(|| RegistryError::AuthRequired {
                        registry: target.registry.clone(),
                        repository: target.repository.clone(),
                        action: target.action,
                    })
            }
            Scheme::Bearer { realm, service } => {
                let token = self.fetch_token(target, &realm, service.as_deref(), fetch)?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    fn fetch_token(
        &self,
        target: &Target,
        realm: &str,
        service: Option<&str>,
        fetch: &dyn TokenFetch,
    ) -> Result<String, RegistryError> {
        let credential = self.credential(&target.registry)?;
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(service) = service {
            params.push(("service", service.to_owned()));
        }
        let request = match &credential {
            Some(Credential::IdentityToken { token }) => {
                params.push(("grant_type", "refresh_token".to_owned()));
                params.push(("refresh_token", token.clone()));
                params.push(("client_id", "rbuild".to_owned()));
                params.push(("scope", target.scopes.join(" ")));
                TokenRequest::Post { form: params }
            }
            other => {
                for scope in &target.scopes {
                    params.push(("scope", scope.clone()));
                }
                let basic = match other {
                    Some(Credential::Basic { username, password }) => {
                        params.push(("account", username.clone()));
                        Some((username.as_str(), password.as_str()))
                    }
                    _ => None,
                };
                TokenRequest::Get {
                    query: params,
                    basic,
                }
            }
        };
        let (status, body) = fetch.token_request(realm, request)?;
        match status {
            200..=299 => {}
            401 | 403 if credential.is_some() => {
                return Err(RegistryError::AuthRejected {
                    registry: target.registry.clone(),
                    repository: target.repository.clone(),
                    detail: format!("token service {}: {status}", display_url(realm)),
                })
            }
            401 | 403 => {
                return Err(RegistryError::AuthRequired {
                    registry: target.registry.clone(),
                    repository: target.repository.clone(),
                    action: target.action,
                })
            }
            _ => {
                return Err(RegistryError::Token {
                    registry: target.registry.clone(),
                    reason: format!(
                        "{} answered {status}: {}",
                        display_url(realm),
                        error_detail(&body)
                    ),
                })
            }
        }
        let parsed = parse_token(&body).ok_or_else(|| RegistryError::Token {
            registry: target.registry.clone(),
            reason: format!("{} sent no token", display_url(realm)),
        })?;
        let key = (target.registry.clone(), target.scopes.join(" "));
        self.lock().tokens.insert(
            key,
            Token {
                value: parsed.0.clone(),
                expires: Instant::now() + parsed.1,
            },
        );
        Ok(parsed.0)
    }
}

/// `(token, lifetime)` from a token response (`token` or OAuth2 `access_token`).
fn parse_token(body: &[u8]) -> Option<(String, Duration)> {
    #[derive(serde::Deserialize)]
    struct Response {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
    }
    let parsed: Response = serde_json::from_slice(body).ok()?;
    let token = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token)?;
    let lifetime = parsed
        .expires_in
        .filter(|&s| s > 0)
        .map_or(DEFAULT_LIFETIME, Duration::from_secs)
        .min(MAX_LIFETIME);
    Some((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Issuer {
        seen: RefCell<Vec<String>>,
        status: u16,
    }

    impl TokenFetch for Issuer {
        fn token_request(
            &self,
            url: &str,
            request: TokenRequest<'_>,
        ) -> Result<(u16, Vec<u8>), RegistryError> {
            let line = match request {
                TokenRequest::Get { query, basic } => format!(
                    "GET {url} {query:?} basic={}",
                    basic.map_or("-".into(), |b| b.0.to_owned())
                ),
                TokenRequest::Post { form } => format!("POST {url} {form:?}"),
            };
            self.seen.borrow_mut().push(line);
            Ok((
                self.status,
                br#"{"token":"tok-1","expires_in":300}"#.to_vec(),
            ))
        }
    }

    fn target(scopes: &[&str]) -> Target {
        Target {
            registry: "reg:5000".into(),
            repository: "team/app".into(),
            action: "push",
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn files() -> CredentialFiles {
        CredentialFiles {
            auth_files: vec![],
            docker_config: "/nonexistent/config.json".into(),
            helper_dir: None,
        }
    }

    #[test]
    fn bearer_challenges_fetch_one_token_for_all_needed_scopes_and_cache_it() {
        let auth = Auth::new(
            files(),
            Some(Credential::Basic {
                username: "u".into(),
                password: "p".into(),
            }),
        );
        let issuer = Issuer {
            seen: RefCell::default(),
            status: 200,
        };
        let t = target(&["repository:base:pull", "repository:team/app:pull,push"]);
        assert!(auth.header(&t).unwrap().is_none());
        let challenge =
            r#"Bearer realm="http://issuer/token",service="reg",scope="repository:team/app:pull""#;
        assert_eq!(
            auth.answer(&t, None, challenge, &issuer).unwrap(),
            "Bearer tok-1"
        );
        let seen = issuer.seen.borrow();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].contains("repository:base:pull"), "{}", seen[0]);
        assert!(seen[0].contains("repository:team/app:pull,push"));
        assert!(seen[0].contains("basic=u"));
        drop(seen);
        // Cached for exactly those scopes.
        assert_eq!(auth.header(&t).unwrap().as_deref(), Some("Bearer tok-1"));
        assert!(auth
            .header(&target(&["repository:other:pull"]))
            .unwrap()
            .is_none());
    }

    #[test]
    fn identity_tokens_use_the_oauth2_post() {
        let auth = Auth::new(
            files(),
            Some(Credential::IdentityToken {
                token: "refresh".into(),
            }),
        );
        let issuer = Issuer {
            seen: RefCell::default(),
            status: 200,
        };
        auth.answer(
            &target(&["repository:team/app:pull"]),
            None,
            r#"Bearer realm="http://issuer/token",service="reg""#,
            &issuer,
        )
        .unwrap();
        let seen = issuer.seen.borrow();
        assert!(seen[0].starts_with("POST"), "{}", seen[0]);
        assert!(seen[0].contains("refresh_token"));
    }

    #[test]
    fn basic_without_credentials_says_how_to_log_in_and_rejections_are_told_apart() {
        let auth = Auth::new(files(), None);
        let issuer = Issuer {
            seen: RefCell::default(),
            status: 401,
        };
        let err = auth
            .answer(&target(&[]), None, r#"Basic realm="r""#, &issuer)
            .unwrap_err()
            .to_string();
        assert!(err.contains("rbuild login reg:5000"), "{err}");
        let with = Auth::new(
            files(),
            Some(Credential::Basic {
                username: "u".into(),
                password: "secret-pass".into(),
            }),
        );
        let err = with
            .answer(
                &target(&["repository:team/app:pull"]),
                None,
                r#"Bearer realm="http://issuer/token""#,
                &issuer,
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("rejected"), "{err}");
        assert!(!err.contains("secret-pass"));
    }

    /// A token lifetime of `u64::MAX` seconds from the token server is a long
    /// lifetime, not an `Instant` overflow (which panicked).
    #[test]
    fn a_huge_token_lifetime_does_not_overflow() {
        struct Forever;
        impl TokenFetch for Forever {
            fn token_request(
                &self,
                _: &str,
                _: TokenRequest<'_>,
            ) -> Result<(u16, Vec<u8>), RegistryError> {
                let body = format!(r#"{{"token":"tok-x","expires_in":{}}}"#, u64::MAX);
                Ok((200, body.into_bytes()))
            }
        }
        let auth = Auth::new(files(), None);
        let t = target(&["repository:team/app:pull"]);
        let challenge = r#"Bearer realm="http://issuer/token",service="reg""#;
        assert_eq!(
            auth.answer(&t, None, challenge, &Forever).unwrap(),
            "Bearer tok-x"
        );
        assert_eq!(auth.header(&t).unwrap().as_deref(), Some("Bearer tok-x"));
    }
}
