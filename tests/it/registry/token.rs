//! `TokenIssuer`: a Docker token server (the `realm` of a `Bearer` challenge) inside the
//! test process, enforcing a [`Policy`] and recording every request.
//!
//! Protocol (distribution's `docs/spec/auth/token.md` and `oauth.md`):
//! - `GET /token?service=S&scope=repository:N:pull,push&scope=...`, optional Basic
//!   credentials, `offline_token=true` for a refresh token;
//! - `POST /token` with a form: `grant_type=password` (`username`, `password`) or
//!   `grant_type=refresh_token` (`refresh_token`), `service`, `client_id`, `scope`
//!   (space-separated), `access_type=offline` for a refresh token.
//!
//! Bad credentials get 401; an unknown grant type 400. Tokens are ES256 JWTs (see
//! [`super::jwt`]) the registry configured by [`super::Registry::token`] accepts.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::certs;
use super::http::{self, Head};
use super::jwt::{self, Signer};
use super::listener::Server;
use super::policy::{Access, Policy};

/// The `service` the issuer and its registries agree on (the token's `aud`).
pub const SERVICE: &str = "rbuild-test-registry";
/// The `iss` of every token.
pub const ISSUER: &str = "rbuild-test-issuer";

/// Largest form body read from a `POST /token`.
const MAX_FORM: u64 = 64 * 1024;

/// One request the issuer answered.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The authenticated account; `None` for anonymous requests and failed logins.
    pub user: Option<String>,
    /// `grant_type` of a POST.
    pub grant_type: Option<String>,
    /// `client_id`, when sent.
    pub client_id: Option<String>,
    /// Requested scopes as sent, one per entry.
    pub scopes: Vec<String>,
    /// What the token grants (empty when refused).
    pub granted: Vec<Access>,
    /// HTTP status of the answer.
    pub status: u16,
    /// Whether the answer carried a refresh token.
    pub refresh_token: bool,
}

impl TokenRequest {
    /// Granted access as scope strings, e.g. `repository:team/app:pull,push`.
    pub fn granted_scopes(&self) -> Vec<String> {
        self.granted.iter().map(Access::scope).collect()
    }
}

/// A token server on `127.0.0.1:<ephemeral>`; stops when dropped.
pub struct TokenIssuer {
    shared: Arc<Shared>,
    root_cert: PathBuf,
    server: Server,
    // Holds the key and certificate files; dropped last.
    _dir: tempfile::TempDir,
}

struct Shared {
    policy: Policy,
    signer: Signer,
    state: Mutex<State>,
}

struct State {
    expires_in: u64,
    /// Seconds added to the clock when issuing (negative: tokens born in the past).
    clock_offset: i64,
    requests: Vec<TokenRequest>,
    /// Refresh token -> account.
    refresh: BTreeMap<String, String>,
}

impl TokenIssuer {
    /// Starts an issuer for `policy`, with tokens valid for 5 minutes.
    pub fn start(policy: Policy) -> TokenIssuer {
        let dir = tempfile::tempdir().expect("token issuer temp dir");
        let key = certs::signing_key(dir.path());
        let shared = Arc::new(Shared {
            policy,
            signer: Signer::new(&key),
            state: Mutex::new(State {
                expires_in: 300,
                clock_offset: 0,
                requests: Vec::new(),
                refresh: BTreeMap::new(),
            }),
        });
        let serving = Arc::clone(&shared);
        let server = Server::start("token issuer", move |conn| serving.serve(conn));
        TokenIssuer {
            shared,
            root_cert: key.cert_pem,
            server,
            _dir: dir,
        }
    }

    /// The token endpoint, `http://127.0.0.1:PORT/token` (the challenge's `realm`).
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr())
    }

    /// The service name tokens are issued for.
    pub fn service(&self) -> &'static str {
        SERVICE
    }

    /// The issuer name in every token.
    pub fn issuer(&self) -> &'static str {
        ISSUER
    }

    /// The signing certificate (PEM): the registry's `rootcertbundle`.
    pub fn root_cert(&self) -> &Path {
        &self.root_cert
    }

    /// Lifetime of tokens issued from now on (whole seconds, at least 1).
    pub fn set_expires_in(&self, lifetime: Duration) {
        self.shared.state().expires_in = lifetime.as_secs().max(1);
    }

    /// Issues tokens as if the clock were `seconds` off. distribution 2.8 allows 60 s of
    /// leeway on `exp` and `nbf`, so a short lifetime alone cannot make the registry
    /// refuse a token quickly; an offset of -3600 makes tokens it refuses at once
    /// (while `expires_in` still looks fine to the client).
    pub fn set_clock_offset(&self, seconds: i64) {
        self.shared.state().clock_offset = seconds;
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.state().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
    }

    /// A token for `user` (`None`: anonymous) and `scopes`, without HTTP: the policy
    /// still decides what it grants.
    pub fn mint(&self, user: Option<&str>, scopes: &[&str]) -> String {
        let requested: Vec<Access> = scopes.iter().filter_map(|s| Access::parse(s)).collect();
        let granted = self.shared.policy.grant(user, &requested);
        self.shared.token(user, &granted)
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in another handler thread must not hide this test's requests.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lifetime of new tokens and the (offset) time they are issued at.
    fn clock(&self) -> (u64, u64) {
        let state = self.state();
        let now = jwt::unix_now().saturating_add_signed(state.clock_offset);
        (state.expires_in, now)
    }

    fn token(&self, user: Option<&str>, granted: &[Access]) -> String {
        let (expires_in, now) = self.clock();
        let access: Vec<serde_json::Value> = granted.iter().map(Access::to_json).collect();
        let claims = jwt::claims(
            ISSUER,
            user.unwrap_or(""),
            SERVICE,
            &serde_json::Value::Array(access),
            now,
            expires_in,
            &self.signer.random_hex(16),
        );
        self.signer.sign(&claims)
    }

    /// Serves one request on `conn` and closes it.
    fn serve(&self, conn: TcpStream) {
        let Ok(read_half) = conn.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(read_half);
        let mut writer = conn;
        let Ok(Some(head)) = Head::read(&mut reader) else {
            return;
        };
        let (status, body) = match self.answer(&head, &mut reader) {
            Ok(json) => (200, json),
            Err((status, message)) => (status, serde_json::json!({ "details": message })),
        };
        let body = body.to_string();
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            405 => "Method Not Allowed",
            _ => "Not Found",
        };
        let mut reply = Head::response(status, reason);
        reply.set_header("Content-Type", "application/json");
        reply.set_header("Content-Length", &body.len().to_string());
        reply.set_header("Connection", "close");
        if status == 401 {
            reply.set_header("WWW-Authenticate", "Basic realm=\"rbuild-test-issuer\"");
        }
        let _ = reply
            .write_to(&mut writer)
            .and_then(|()| writer.write_all(body.as_bytes()));
    }

    /// The JSON answer to a request, or a status and message; records the request.
    fn answer(
        &self,
        head: &Head,
        reader: &mut BufReader<TcpStream>,
    ) -> Result<serde_json::Value, (u16, String)> {
        let (method, target) = head
            .request_parts()
            .ok_or((400, "bad request line".into()))?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path != "/token" {
            return Err((404, format!("no such endpoint {path}")));
        }
        let mut record = TokenRequest {
            method: method.to_owned(),
            user: None,
            grant_type: None,
            client_id: None,
            scopes: Vec::new(),
            granted: Vec::new(),
            status: 200,
            refresh_token: false,
        };
        let result = match method {
            "GET" => self.get(head, &http::parse_form(query), &mut record),
            "POST" => match head
                .request_framing()
                .and_then(|f| http::read_body(reader, f, MAX_FORM))
            {
                Ok(form) => {
                    let form = http::parse_form(&String::from_utf8_lossy(&form));
                    self.post(&form, &mut record)
                }
                Err(e) => Err((400, format!("unreadable form: {e}"))),
            },
            _ => Err((405, format!("method {method} not served"))),
        };
        if let Err((status, _)) = &result {
            record.status = *status;
            record.granted.clear();
        }
        self.state().requests.push(record);
        result
    }

    /// `GET /token`: Basic credentials or anonymous.
    fn get(
        &self,
        head: &Head,
        query: &[(String, String)],
        record: &mut TokenRequest,
    ) -> Result<serde_json::Value, (u16, String)> {
        record.client_id = first(query, "client_id");
        record.scopes = all(query, "scope");
        check_service(query)?;
        let user = match head.header("authorization") {
            None => None,
            Some(auth) => {
                let (user, password) =
                    basic_credentials(auth).ok_or((400, "unsupported Authorization".into()))?;
                if !self.policy.authenticate(&user, &password) {
                    return Err((401, format!("bad credentials for {user}")));
                }
                Some(user)
            }
        };
        let offline = user.is_some() && first(query, "offline_token").as_deref() == Some("true");
        self.issue(user, offline, record)
    }

    /// `POST /token`: the OAuth2 password or refresh-token grant.
    fn post(
        &self,
        form: &[(String, String)],
        record: &mut TokenRequest,
    ) -> Result<serde_json::Value, (u16, String)> {
        record.grant_type = first(form, "grant_type");
        record.client_id = first(form, "client_id");
        record.scopes = all(form, "scope");
        check_service(form)?;
        let user = match record.grant_type.as_deref() {
            Some("password") => {
                let user = first(form, "username").unwrap_or_default();
                let password = first(form, "password").unwrap_or_default();
                if !self.policy.authenticate(&user, &password) {
                    return Err((401, format!("bad credentials for {user}")));
                }
                user
            }
            Some("refresh_token") => {
                let token = first(form, "refresh_token").unwrap_or_default();
                self.state()
                    .refresh
                    .get(&token)
                    .cloned()
                    .ok_or((401, "unknown refresh token".into()))?
            }
            other => return Err((400, format!("unsupported grant_type {other:?}"))),
        };
        let offline = first(form, "access_type").as_deref() == Some("offline");
        self.issue(Some(user), offline, record)
    }

    /// Grants the recorded scopes to `user` and builds the JSON answer.
    fn issue(
        &self,
        user: Option<String>,
        offline: bool,
        record: &mut TokenRequest,
    ) -> Result<serde_json::Value, (u16, String)> {
        let requested: Vec<Access> = record
            .scopes
            .iter()
            .filter_map(|s| Access::parse(s))
            .collect();
        record.granted = self.policy.grant(user.as_deref(), &requested);
        record.user.clone_from(&user);
        let (expires_in, now) = self.clock();
        let token = self.token(user.as_deref(), &record.granted);
        let mut answer = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": jwt::rfc3339(now),
        });
        if let (true, Some(user)) = (offline, user) {
            let refresh = self.signer.random_hex(24);
            self.state().refresh.insert(refresh.clone(), user);
            answer["refresh_token"] = serde_json::Value::String(refresh);
            record.refresh_token = true;
        }
        Ok(answer)
    }
}

/// Rejects a request for another service; a missing `service` is accepted.
fn check_service(params: &[(String, String)]) -> Result<(), (u16, String)> {
    match first(params, "service") {
        Some(s) if s != SERVICE => Err((400, format!("unknown service {s}"))),
        _ => Ok(()),
    }
}

fn first(params: &[(String, String)], key: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// Every value of `key`, each split on spaces (OAuth2 joins scopes with spaces).
fn all(params: &[(String, String)], key: &str) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned))
        .collect()
}

/// `Basic base64(user:password)` -> (user, password).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
