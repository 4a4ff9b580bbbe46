//! Registry authentication and TLS against the real CNCF registry: basic auth with
//! `rbuild login`, TLS through a certs.d directory, and bearer tokens from a token
//! issuer that enforces scopes (cross-repository mounts, caching, identity tokens).

use std::process::Command;

use crate::pushpull::{base, sha256_of, skopeo};
use crate::registry::{available, Policy, Registry, TokenIssuer};
use crate::support::{run_fails, run_ok, TestContext};

#[test]
fn basic_auth_needs_login_and_login_writes_docker_config() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let reg = Registry::basic("alice", "s3cret-pass");
    let config = tempfile::tempdir().unwrap();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    let dest = format!("{}/team/app:1", reg.host());
    let err = run_fails(&t.root(), &["push", "base:1", &dest], &env);
    assert!(
        err.contains(&format!("rbuild login {}", reg.host())),
        "{err}"
    );
    let err = run_fails(
        &t.root(),
        &["login", "-u", "alice", "-p", "wrong", reg.host()],
        &env,
    );
    assert!(err.contains("rejected"), "{err}");
    assert!(!config.path().join("config.json").exists());
    let out = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .args([
            "--root",
            t.root().to_str().unwrap(),
            "login",
            "-u",
            "alice",
            "--password-stdin",
            reg.host(),
        ])
        .env("DOCKER_CONFIG", config.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"s3cret-pass\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = std::fs::read_to_string(config.path().join("config.json")).unwrap();
    assert!(saved.contains(reg.host()), "{saved}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("stored unencrypted in"),
        "as docker warns: {said}"
    );
    let (digest, stderr) = run_ok(&t.root(), &["push", "base:1", &dest], &env);
    assert!(!stderr.contains("s3cret-pass"));
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret-pass",
        &format!("docker://{dest}"),
    ]);
    assert_eq!(sha256_of(raw.as_bytes()), digest);
    // --creds overrides the stored credentials (and a wrong one is rejected).
    let err = run_fails(&t.root(), &["pull", "--creds", "alice:bad", &dest], &env);
    assert!(
        err.contains("rejected") && !err.contains("alice:bad"),
        "{err}"
    );
    let (said, _) = run_ok(&t.root(), &["logout", reg.host()], &env);
    assert!(said.contains("Removing login credentials"), "{said}");
    let err = run_fails(&t.root(), &["pull", &dest], &env);
    assert!(err.contains("rbuild login"), "{err}");
}

#[test]
fn tls_registries_use_the_ca_from_a_certs_dir() {
    if !available(&[]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let reg = Registry::tls_basic("bob", "pw");
    let dest = format!("{}/team/app:1", reg.host());
    let certs = tempfile::tempdir().unwrap();
    let cert_dir = certs.path().to_str().unwrap();
    let push = [
        "push",
        "--creds",
        "bob:pw",
        "--cert-dir",
        cert_dir,
        "base:1",
        &dest,
    ];
    let err = run_fails(&t.root(), &push, &[]);
    assert!(err.contains("TLS") && err.contains("ca.crt"), "{err}");
    std::fs::create_dir_all(certs.path().join(reg.host())).unwrap();
    std::fs::copy(
        reg.ca_cert().expect("TLS registry has a CA"),
        certs.path().join(reg.host()).join("ca.crt"),
    )
    .unwrap();
    let (digest, _) = run_ok(&t.root(), &push, &[]);
    let other = TestContext::new("FROM scratch\n", &[]);
    let (pulled, _) = run_ok(
        &other.root(),
        &["pull", "--creds", "bob:pw", "--cert-dir", cert_dir, &dest],
        &[],
    );
    assert_eq!(pulled, digest);
}

#[test]
fn bearer_tokens_ask_for_exactly_the_scopes_a_cross_repository_mount_needs() {
    if !available(&[]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let issuer = TokenIssuer::start(
        Policy::new()
            .user("admin", "adminpw", &[("*", "pull,push")])
            .user(
                "alice",
                "alicepw",
                &[("team/*", "pull,push"), ("base/*", "pull")],
            ),
    );
    let reg = Registry::token(&issuer);
    let base_ref = format!("{}/base/os:1", reg.host());
    run_ok(
        &t.root(),
        &["push", "--creds", "admin:adminpw", "base:1", &base_ref],
        &[],
    );
    // alice builds on it and pushes to her team's repository: the base layer is mounted.
    let child = TestContext::new(
        &format!("FROM {base_ref}\nRUN echo child > /child.txt\n"),
        &[],
    );
    run_ok(
        &child.root(),
        &["pull", "--creds", "alice:alicepw", &base_ref],
        &[],
    );
    child.build(&["-t", "child:1"]);
    issuer.clear_requests();
    let dest = format!("{}/team/app:1", reg.host());
    let (_, stderr) = run_ok(
        &child.root(),
        &["push", "--creds", "alice:alicepw", "child:1", &dest],
        &[],
    );
    assert!(stderr.contains("mounted"), "{stderr}");
    assert!(!stderr.contains("0 mounted"), "{stderr}");
    let requests = issuer.requests();
    assert!(!requests.is_empty());
    let first = &requests[0];
    let mut scopes = first.scopes.clone();
    scopes.sort();
    assert_eq!(
        scopes,
        ["repository:base/os:pull", "repository:team/app:pull,push"],
        "{requests:?}"
    );
    // One token for the whole push (cached per scope set).
    assert_eq!(requests.len(), 1, "{requests:?}");
    // alice may not push to base/: the registry's refusal is reported as such.
    let err = run_fails(
        &child.root(),
        &[
            "push",
            "--creds",
            "alice:alicepw",
            "child:1",
            &format!("{}/base/evil:1", reg.host()),
        ],
        &[],
    );
    assert!(err.contains("base/evil"), "{err}");
}

/// A refresh token for `user` from the issuer (the OAuth2 password grant, offline).
fn refresh_token(issuer: &TokenIssuer, user: &str, password: &str) -> String {
    let out = Command::new("curl")
        .args(["-fsS", "-X", "POST", "--data"])
        .arg(format!(
            "grant_type=password&username={user}&password={password}&service={}&client_id=test&access_type=offline",
            issuer.service()
        ))
        .arg(issuer.realm())
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    answer["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

#[test]
fn tokens_are_cached_until_they_expire_and_identity_tokens_are_used() {
    if !available(&["curl"]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let issuer = TokenIssuer::start(Policy::new().user("carol", "carolpw", &[("*", "pull,push")]));
    let reg = Registry::token(&issuer);
    let dest = format!("{}/team/app:1", reg.host());
    run_ok(
        &t.root(),
        &["push", "--creds", "carol:carolpw", "base:1", &dest],
        &[],
    );
    let cached = issuer.requests().len();
    assert_eq!(cached, 1, "{:?}", issuer.requests());
    // Tokens that live 5 s are never reused (a request must not start on one about to
    // expire): every authenticated request fetches a fresh one.
    issuer.clear_requests();
    issuer.set_expires_in(std::time::Duration::from_secs(5));
    let other = TestContext::new("FROM scratch\n", &[]);
    run_ok(
        &other.root(),
        &["pull", "--creds", "carol:carolpw", &dest],
        &[],
    );
    assert!(issuer.requests().len() > 1, "{:?}", issuer.requests());
    issuer.set_expires_in(std::time::Duration::from_secs(300));
    // A token the registry refuses: the request is retried once with it, then a clear
    // error (no loop of token fetches).
    issuer.clear_requests();
    issuer.set_clock_offset(-3600);
    let fresh = TestContext::new("FROM scratch\n", &[]);
    let err = run_fails(
        &fresh.root(),
        &["pull", "--creds", "carol:carolpw", &dest],
        &[],
    );
    assert!(err.contains("rejected"), "{err}");
    assert_eq!(issuer.requests().len(), 1, "{:?}", issuer.requests());
    issuer.set_clock_offset(0);
    // An identity token in config.json: the OAuth2 refresh grant, no password anywhere.
    let refresh = refresh_token(&issuer, "carol", "carolpw");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        serde_json::json!({"auths": {reg.host(): {"identitytoken": refresh}}}).to_string(),
    )
    .unwrap();
    issuer.clear_requests();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    let again = TestContext::new("FROM scratch\n", &[]);
    let (_, stderr) = run_ok(&again.root(), &["pull", &dest], &env);
    assert!(!stderr.contains(&refresh));
    let requests = issuer.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].grant_type.as_deref(), Some("refresh_token"));
}
