//! The HTTP side of the distribution client: one connection pool per registry host
//! (with that host's TLS settings), plain HTTP for loopback and `--insecure-registry`
//! hosts, authentication through [`Auth`], and retries with backoff on `5xx`, `429`
//! and dropped connections.
//!
//! Requests are built by a closure per attempt, so a retried upload re-opens its file
//! instead of holding the body in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};

use super::auth::{Auth, Target, TokenFetch, TokenRequest};
use super::credentials::{Credential, CredentialFiles};
use super::error::{display_url, error_detail, RegistryError};
use super::reference::{host_of, is_loopback_host};
use super::tls::{client_config, TlsOptions};

/// How a client talks to registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Hosts (`host` or `host:port`) reached over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// TLS settings (`--tls-verify`, certs.d).
    pub tls: TlsOptions,
    /// `--creds USER:PASS` for every registry, instead of the credential files.
    pub creds: Option<(String, String)>,
    /// Where stored credentials are read.
    pub credential_files: CredentialFiles,
    /// Retries of a failed request (so at most `retries + 1` attempts).
    pub retries: u32,
    /// The first backoff; it doubles per retry, up to 8 s.
    pub backoff: Duration,
    /// Set to stop (Ctrl-C): no new request starts.
    pub cancel: Arc<AtomicBool>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            tls: TlsOptions::default(),
            creds: None,
            credential_files: CredentialFiles::from_env(),
            retries: 5,
            backoff: Duration::from_millis(200),
            cancel: Arc::default(),
        }
    }
}

/// A registry client, shared by the threads of one pull or push.
pub struct Client {
    options: RegistryOptions,
    auth: Auth,
    pools: Mutex<HashMap<String, Http>>,
    /// `http` or `https` per API host that may use either (see `base_url`).
    schemes: Mutex<HashMap<String, &'static str>>,
}

/// Whether a request may be sent again after a failure or a retryable status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// GET, HEAD, PUT of a whole body, ... : safe to repeat.
    Yes,
    /// Repeating would be wrong (the caller recovers another way).
    No,
}

impl Client {
    pub fn new(options: RegistryOptions) -> Self {
        let fixed = options
            .creds
            .as_ref()
            .map(|(username, password)| Credential::Basic {
                username: username.clone(),
                password: password.clone(),
            });
        Client {
            auth: Auth::new(options.credential_files.clone(), fixed),
            options,
            pools: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
        }
    }

    /// The options this client was made with.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// Whether `api_host` may be reached over plain HTTP: loopback, or listed insecure.
    fn plain_allowed(&self, api_host: &str) -> bool {
        let host = host_of(api_host);
        is_loopback_host(api_host)
            || self
                .options
                .insecure
                .iter()
                .any(|h| h == api_host || h == host)
    }

    /// `http://host` or `https://host` for a registry's API host. A host that may use
    /// plain HTTP is asked once which it speaks (as Docker does): HTTPS when it answers
    /// TLS, or when plain HTTP gets "this is an HTTPS server" (the TLS error then tells
    /// the user about certificates); else HTTP.
    pub fn base_url(&self, api_host: &str) -> String {
        if !self.plain_allowed(api_host) {
            return format!("https://{api_host}");
        }
        let known = self
            .schemes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(api_host)
            .copied();
        let scheme = known.unwrap_or_else(|| {
            let scheme = self.probe(api_host);
            self.schemes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(api_host.to_owned(), scheme);
            scheme
        });
        format!("{scheme}://{api_host}")
    }

    fn probe(&self, api_host: &str) -> &'static str {
        let Ok(http) = self.http(api_host) else {
            return "http";
        };
        let wait = Duration::from_secs(10);
        if http
            .get(format!("https://{api_host}/v2/"))
            .timeout(wait)
            .send()
            .is_ok()
        {
            return "https";
        }
        match http
            .get(format!("http://{api_host}/v2/"))
            .timeout(wait)
            .send()
        {
            Ok(r) if r.status().as_u16() == 400 => {
                let body = r.text().unwrap_or_default();
                if body.contains("HTTPS") {
                    "https"
                } else {
                    "http"
                }
            }
            _ => "http",
        }
    }

    /// The connection pool for `host` (`host[:port]`).
    fn http(&self, host: &str) -> Result<Http, RegistryError> {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(http) = pools.get(host) {
            return Ok(http.clone());
        }
        let tls = client_config(host, &self.options.tls)?;
        let http = Http::builder()
            .user_agent(concat!("rbuild/", env!("CARGO_PKG_VERSION")))
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(30))
            // Blobs can take long: no overall deadline, but a stalled connection fails.
            .timeout(None)
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| RegistryError::Option(format!("HTTP client: {e}")))?;
        pools.insert(host.to_owned(), http.clone());
        Ok(http)
    }

    /// Sends the request `build` makes (from the pool and the base URL of `api_host`),
    /// authenticating and retrying as needed. Any final status is returned (the caller
    /// judges it) except `401`, which becomes an authentication error.
    pub fn send(
        &self,
        target: &Target,
        api_host: &str,
        retry: Retry,
        build: &dyn Fn(&Http, &str) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let http = self.http(api_host)?;
        let base = self.base_url(api_host);
        let mut header = self.auth.header(target)?;
        let mut answered = false;
        let mut attempt = 0u32;
        loop {
            if self.options.cancel.load(Ordering::Relaxed) {
                return Err(RegistryError::Cancelled);
            }
            let mut request = build(&http, &base);
            if let Some(h) = &header {
                request = request.header(AUTHORIZATION, h);
            }
            let outcome = request.send();
            let can_retry = retry == Retry::Yes && attempt < self.options.retries;
            match outcome {
                Err(e) => {
                    let error = transport_error(&target.registry, &base, &e);
                    if !can_retry || matches!(error, RegistryError::Tls { .. }) {
                        return Err(error);
                    }
                }
                Ok(response) if response.status().as_u16() == 401 => {
                    let challenge = response
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let detail = error_detail(&response.bytes().unwrap_or_default());
                    match challenge {
                        Some(c) if !answered => {
                            header = Some(self.auth.answer(target, header.as_deref(), &c, self)?);
                            answered = true;
                            continue; // not counted as an attempt
                        }
                        _ if header.is_some() => {
                            return Err(RegistryError::AuthRejected {
                                registry: target.registry.clone(),
                                repository: target.repository.clone(),
                                detail,
                            })
                        }
                        _ => {
                            return Err(RegistryError::AuthRequired {
                                registry: target.registry.clone(),
                                repository: target.repository.clone(),
                                action: target.action,
                            })
                        }
                    }
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let transient = status == 429 || matches!(status, 500 | 502 | 503 | 504);
                    if !(transient && can_retry) {
                        return Ok(response);
                    }
                    if let Some(wait) = retry_after(&response) {
                        attempt += 1;
                        std::thread::sleep(wait);
                        continue;
                    }
                }
            }
            std::thread::sleep(self.backoff(attempt));
            attempt += 1;
        }
    }

    /// `GET url` without registry credentials (a foreign layer's `urls`): through the
    /// pool of its host, so that host's TLS settings apply.
    pub fn get_url(&self, url: &str) -> Result<Response, reqwest::Error> {
        let host = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        match self.http(host) {
            Ok(http) => http.get(url).send(),
            // The pool cannot be made (bad certs.d): a plain client says why.
            Err(_) => Http::new().get(url).send(),
        }
    }

    /// `GET /v2/` on `registry` with the client's credentials (what `login` checks):
    /// succeeds when the registry accepts them (or needs none).
    pub fn ping(&self, registry: &str) -> Result<(), RegistryError> {
        let reference = super::Reference::parse(&format!("{registry}/ping"))?;
        let target = Target {
            registry: reference.registry.clone(),
            repository: "its API".to_owned(),
            action: "use",
            scopes: Vec::new(),
        };
        let response = self.send(&target, reference.api_host(), Retry::Yes, &|http, base| {
            http.get(format!("{base}/v2/"))
        })?;
        check(response, &target, "GET", || {
            "the registry API (/v2/)".to_owned()
        })
        .map(|_| ())
    }

    /// The wait before retry `attempt`: the first backoff, doubled per retry, at most 8 s.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let wait = self.options.backoff.saturating_mul(1 << attempt.min(6));
        wait.min(Duration::from_secs(8))
    }
}

impl TokenFetch for Client {
    fn token_request(
        &self,
        url: &str,
        request: TokenRequest<'_>,
    ) -> Result<(u16, Vec<u8>), RegistryError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| RegistryError::Token {
            registry: url.to_owned(),
            reason: format!("invalid realm {url:?}: {e}"),
        })?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        };
        let http = self.http(&host)?;
        let mut attempt = 0;
        loop {
            let builder = match &request {
                TokenRequest::Get { query, basic } => {
                    let b = http.get(url).query(query);
                    match basic {
                        Some((user, pass)) => b.basic_auth(user, Some(pass)),
                        None => b,
                    }
                }
                TokenRequest::Post { form } => http.post(url).form(form),
            };
            match builder.send() {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status >= 500 && attempt < self.options.retries.min(3) {
                        attempt += 1;
                        std::thread::sleep(self.backoff(attempt));
                        continue;
                    }
                    let body = response.bytes().map_err(|e| RegistryError::Token {
                        registry: host.clone(),
                        reason: e.to_string(),
                    })?;
                    return Ok((status, body.to_vec()));
                }
                Err(_) if attempt < self.options.retries.min(3) => {
                    attempt += 1;
                    std::thread::sleep(self.backoff(attempt));
                }
                Err(e) => return Err(transport_error(&host, url, &e)),
            }
        }
    }
}

/// `Retry-After` in seconds (capped at 30 s).
fn retry_after(response: &Response) -> Option<Duration> {
    let seconds: u64 = response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(30)))
}

/// An error and its causes on one line, `what: why: why`: an HTTP client's own
/// message ("error sending request") says little without them. A cause whose text
/// is already there is left out.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let cause = e.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        source = e.source();
    }
    text
}

/// A failed send as an error a user can act on: TLS problems are told apart.
pub fn transport_error(registry: &str, url: &str, error: &reqwest::Error) -> RegistryError {
    let reason = error_chain(error);
    let lower = reason.to_ascii_lowercase();
    let tls = lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("invalid peer");
    if tls {
        RegistryError::Tls {
            registry: registry.to_owned(),
            reason,
        }
    } else {
        RegistryError::Connect {
            registry: registry.to_owned(),
            url: display_url(url),
            reason,
        }
    }
}

/// Reads a response's status into an error when it is not a success.
pub fn check(
    response: Response,
    target: &Target,
    method: &str,
    what: impl FnOnce() -> String,
) -> Result<Response, RegistryError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let path = response.url().path().to_owned();
    let detail = error_detail(&response.bytes().unwrap_or_default());
    Err(match status {
        404 => RegistryError::NotFound {
            registry: target.registry.clone(),
            what: what(),
            detail,
        },
        403 => RegistryError::Denied {
            registry: target.registry.clone(),
            repository: target.repository.clone(),
            action: target.action,
            detail,
        },
        _ => RegistryError::Status {
            registry: target.registry.clone(),
            method: method.to_owned(),
            path,
            status,
            detail,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_insecure_registries_may_use_plain_http() {
        let client = Client::new(RegistryOptions {
            insecure: vec!["registry.lan:5000".into(), "other.lan".into()],
            ..RegistryOptions::default()
        });
        assert!(client.plain_allowed("127.0.0.1:5000"));
        assert!(client.plain_allowed("127.3.0.1"));
        assert!(client.plain_allowed("localhost:5000"));
        assert!(client.plain_allowed("registry.lan:5000"));
        assert!(client.plain_allowed("other.lan:443"));
        assert!(!client.plain_allowed("registry.lan:5001"));
        assert_eq!(
            client.base_url("registry-1.docker.io"),
            "https://registry-1.docker.io"
        );
    }
}
