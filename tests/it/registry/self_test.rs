//! Self-tests of the registry infrastructure against the real registry, with curl and
//! skopeo as independent clients. Run them with `cargo test --test it registry_infra`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::layout::digest;
use super::*;

/// One curl exchange: status of the last response, its header block, the body, and
/// curl's exit code (0, or e.g. 18 for a cut body, 52 for an empty reply).
pub(super) struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
    pub exit: i32,
}

impl Reply {
    /// Header `name` of the last response (curl dumps 100-continue blocks too).
    pub fn header(&self, name: &str) -> Option<String> {
        let last = self.headers.rsplit("HTTP/").next().unwrap_or("");
        last.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// String field `key` of a JSON body.
    pub fn field(&self, key: &str) -> String {
        let json = self.json();
        json[key].as_str().expect(key).to_owned()
    }
}

/// Runs `curl -s ARGS`, capturing the headers and body separately.
pub(super) fn curl(args: &[&str]) -> Reply {
    let dir = tempfile::tempdir().expect("temp dir for curl");
    let (headers, body) = (dir.path().join("headers"), dir.path().join("body"));
    let out = Command::new("curl")
        .args(["-s", "--max-time", "60", "-w", "%{http_code}", "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(args)
        .output()
        .expect("run curl");
    Reply {
        status: String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0),
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read(&body).unwrap_or_default(),
        exit: out.status.code().unwrap_or(-1),
    }
}

/// Raw upload bodies must not look like forms: curl's `--data-binary` default type is
/// `application/x-www-form-urlencoded`, and the registry's `FormValue("digest")` then
/// reads the body as a form (the blob arrives empty).
const OCTETS: &str = "Content-Type: application/octet-stream";

/// `curl -X METHOD -H HEADER... --data-binary BODY URL`, the body sent as raw bytes
/// (`BODY` is `@FILE`, see [`data_file`]).
pub(super) fn send(method: &str, url: &str, headers: &[&str], body: &str) -> Reply {
    let mut args = vec!["-X", method];
    for header in headers {
        args.extend(["-H", header]);
    }
    args.extend(["-H", OCTETS, "--data-binary", body, url]);
    curl(&args)
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// Writes `bytes` to a file in `dir` and returns `@PATH` for `curl --data-binary`.
pub(super) fn data_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a request body");
    format!("@{}", path.display())
}

#[test]
fn registry_infra_plain_answers_and_dies_on_drop() {
    if !available(&["curl"]) {
        return;
    }
    let registry = Registry::plain();
    let reply = curl(&[&format!("{}/v2/", registry.url())]);
    assert_eq!(reply.status, 200, "log:\n{}", registry.log());
    assert!(registry.host().starts_with("127.0.0.1:"));
    assert!(registry.ca_cert().is_none());
    assert!(registry.log().contains("listening on"));
    let (pid, data) = (registry.pid(), registry.data_dir());
    drop(registry);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "registry {pid} still runs"
    );
    assert!(!data.exists(), "the temp dir is removed");
}

#[test]
fn registry_infra_retries_on_a_taken_port() {
    if !available(&["curl"]) {
        return;
    }
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = squatter.local_addr().expect("address").port();
    let registry = Registry::plain_trying([taken]);
    assert_ne!(registry.host(), format!("127.0.0.1:{taken}"));
    assert_eq!(curl(&[&format!("{}/v2/", registry.url())]).status, 200);
}

#[test]
fn registry_infra_basic_auth_wants_credentials() {
    if !available(&["curl"]) {
        return;
    }
    let registry = Registry::basic("bob", "builder");
    let url = format!("{}/v2/", registry.url());
    let anonymous = curl(&[&url]);
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Basic "), "{challenge}");
    assert_eq!(curl(&["-u", "bob:wrong", &url]).status, 401);
    assert_eq!(curl(&["-u", "bob:builder", &url]).status, 200);
}

#[test]
fn registry_infra_tls_with_its_ca() {
    if !available(&["curl"]) {
        return;
    }
    let registry = Registry::tls_basic("bob", "builder");
    let ca = registry.ca_cert().expect("a TLS registry has a CA");
    let ca = ca.to_str().expect("UTF-8 temp path");
    assert!(registry.url().starts_with("https://127.0.0.1:"));
    let url = format!("{}/v2/", registry.url());
    assert_eq!(
        curl(&["--cacert", ca, "-u", "bob:builder", &url]).status,
        200
    );
    let port = registry.host().rsplit(':').next().unwrap_or_default();
    let by_name = format!("https://localhost:{port}/v2/");
    assert_eq!(
        curl(&["--cacert", ca, "-u", "bob:builder", &by_name]).status,
        200
    );
    // Without the CA, verification fails (curl exit 60) before any HTTP.
    assert_eq!(curl(&["-u", "bob:builder", &url]).exit, 60);
}

#[test]
fn registry_infra_token_flow() {
    if !available(&["curl"]) {
        return;
    }
    let issuer = TokenIssuer::start(
        Policy::new()
            .user("alice", "wonderland", &[("team/*", "pull,push")])
            .anonymous(&[("public/*", "pull")]),
    );
    let registry = Registry::token(&issuer);
    let work = tempfile::tempdir().expect("temp dir");

    // The registry challenges with the issuer's realm and service.
    let challenge = curl(&[&format!("{}/v2/", registry.url())]);
    assert_eq!(challenge.status, 401);
    let header = challenge.header("www-authenticate").unwrap_or_default();
    assert!(header.starts_with("Bearer "), "{header}");
    assert!(
        header.contains(&format!("realm=\"{}\"", issuer.realm())),
        "{header}"
    );
    assert!(
        header.contains(&format!("service=\"{}\"", issuer.service())),
        "{header}"
    );

    // A token with push access, fetched with Basic credentials.
    let scope = "repository:team/app:pull,push";
    let token_url = format!(
        "{}?service={}&scope={scope}",
        issuer.realm(),
        issuer.service()
    );
    let reply = curl(&["-u", "alice:wonderland", &token_url]);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let (answer, token) = (reply.json(), reply.field("token"));
    assert_eq!(answer["access_token"], answer["token"]);
    assert!(answer["expires_in"].as_u64().is_some() && answer["issued_at"].is_string());

    // distribution 2.8 ignores a monolithic `POST ?digest=` (202, an empty session); the
    // body goes in the `PUT ?digest=` that closes the session.
    let blob = b"a small blob for the token test";
    let body = data_file(work.path(), "blob", blob);
    let push = |token: &str| -> Reply {
        let header = bearer(token);
        let auth = [header.as_str()];
        let url = format!(
            "{}/v2/team/app/blobs/uploads/?digest={}",
            registry.url(),
            digest(blob)
        );
        let started = send("POST", &url, &auth, &body);
        let Some(location) = started.header("location").filter(|_| started.status == 202) else {
            return started;
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", digest(blob));
        send("PUT", &url, &auth, &body)
    };
    let pushed = push(&token);
    assert_eq!(
        pushed.status,
        201,
        "{}{}\n{}",
        pushed.headers,
        String::from_utf8_lossy(&pushed.body),
        registry.log()
    );
    let blob_url = format!("{}/v2/team/app/blobs/{}", registry.url(), digest(blob));
    assert_eq!(curl(&["-I", "-H", &bearer(&token), &blob_url]).status, 200);

    // A cross-repository mount: one token for both repositories (two `access` entries).
    let both = format!("{token_url}&scope=repository:team/copy:pull,push");
    let mount_token = curl(&["-u", "alice:wonderland", &both]).field("token");
    let mount = format!(
        "{}/v2/team/copy/blobs/uploads/?mount={}&from=team/app",
        registry.url(),
        digest(blob)
    );
    let mounted = curl(&["-X", "POST", "-H", &bearer(&mount_token), &mount]);
    assert_eq!(mounted.status, 201, "{}", mounted.headers);

    // Anonymous clients get a token without push (or pull) on team/app: denied.
    let anonymous = curl(&[&token_url]);
    assert_eq!(anonymous.status, 200);
    let anonymous_token = anonymous.field("token");
    let denied = push(&anonymous_token);
    assert!([401, 403].contains(&denied.status), "{}", denied.headers);
    assert!(denied
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("insufficient_scope"));
    assert_eq!(curl(&["-u", "alice:nope", &token_url]).status, 401);

    // OAuth2: password grant with a refresh token, then the refresh grant.
    let form = format!(
        "grant_type=password&username=alice&password=wonderland&service={}&client_id=rbuild-test\
         &access_type=offline&scope=repository%3Ateam%2Fapp%3Apull",
        issuer.service()
    );
    let refresh = curl(&["--data", &form, &issuer.realm()]).field("refresh_token");
    let form = format!(
        "grant_type=refresh_token&refresh_token={refresh}&scope=repository:team/app:pull\
         &client_id=rbuild-test"
    );
    let pull_token = curl(&["--data", &form, &issuer.realm()]).field("access_token");
    assert_eq!(
        curl(&["-I", "-H", &bearer(&pull_token), &blob_url]).status,
        200
    );
    let bad = curl(&[
        "--data",
        "grant_type=refresh_token&refresh_token=nope",
        &issuer.realm(),
    ]);
    assert_eq!(bad.status, 401);

    // What the issuer saw.
    let seen = issuer.requests();
    let first = &seen[0];
    assert_eq!(
        (first.method.as_str(), first.user.as_deref()),
        ("GET", Some("alice"))
    );
    assert_eq!(first.scopes, [scope]);
    assert_eq!(first.granted_scopes(), [scope]);
    let both = [scope, "repository:team/copy:pull,push"];
    assert_eq!(seen[1].scopes, both);
    assert_eq!(seen[1].granted_scopes(), both);
    assert_eq!((seen[2].user.as_deref(), seen[2].granted.len()), (None, 0));
    assert_eq!((seen[3].status, seen[3].user.as_deref()), (401, None));
    assert_eq!(seen[4].grant_type.as_deref(), Some("password"));
    assert!(seen[4].refresh_token && seen[4].client_id.as_deref() == Some("rbuild-test"));
    assert_eq!(seen[5].user.as_deref(), Some("alice"));
    assert_eq!(seen[5].granted_scopes(), ["repository:team/app:pull"]);
    assert_eq!(seen[6].status, 401);
}

#[test]
fn registry_infra_expired_tokens_are_refused() {
    if !available(&["curl"]) {
        return;
    }
    let issuer = TokenIssuer::start(Policy::new().user("alice", "pw", &[("*", "*")]));
    let registry = Registry::token(&issuer);
    let tags = format!("{}/v2/team/app/tags/list", registry.url());
    let scopes = ["repository:team/app:pull"];
    // 404 (no such repository) means the token was accepted.
    let token = issuer.mint(Some("alice"), &scopes);
    assert_eq!(curl(&["-H", &bearer(&token), &tags]).status, 404);
    issuer.set_clock_offset(-3600);
    let stale = issuer.mint(Some("alice"), &scopes);
    let refused = curl(&["-H", &bearer(&stale), &tags]);
    assert_eq!(refused.status, 401);
    assert!(refused
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("invalid_token"));
    issuer.set_clock_offset(0);
    issuer.set_expires_in(Duration::from_secs(1));
    let reply = curl(&[
        "-u",
        "alice:pw",
        &format!("{}?scope={}", issuer.realm(), scopes[0]),
    ]);
    assert_eq!(reply.json()["expires_in"], 1);
}
