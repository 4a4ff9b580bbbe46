//! Tests of `credentials.rs`.

use super::*;

fn files(dir: &Path) -> CredentialFiles {
    CredentialFiles {
        auth_files: vec![dir.join("auth.json")],
        docker_config: dir.join("docker/config.json"),
        helper_dir: None,
    }
}

fn basic(u: &str, p: &str) -> Credential {
    Credential::Basic {
        username: u.into(),
        password: p.into(),
    }
}

#[test]
fn login_writes_what_docker_reads_and_logout_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = files(dir.path());
    assert_eq!(f.get("registry.corp:5000").unwrap(), None);
    let stored = f.login("registry.corp:5000", "me", "s3cret").unwrap();
    assert_eq!(stored, Stored::File(f.docker_config.clone()));
    f.login("docker.io", "hub", "pw").unwrap();
    let text = std::fs::read_to_string(&f.docker_config).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["auths"]["registry.corp:5000"]["auth"],
        BASE64.encode("me:s3cret")
    );
    assert!(v["auths"][DOCKER_HUB_AUTH_KEY]["auth"].is_string());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&f.docker_config)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        f.get("registry.corp:5000").unwrap(),
        Some(basic("me", "s3cret"))
    );
    assert_eq!(f.get("docker.io").unwrap(), Some(basic("hub", "pw")));
    assert!(f.logout("registry.corp:5000").unwrap());
    assert!(!f.logout("registry.corp:5000").unwrap());
    assert_eq!(f.get("registry.corp:5000").unwrap(), None);
    assert_eq!(f.get("docker.io").unwrap(), Some(basic("hub", "pw")));
}

#[test]
fn auth_files_come_first_and_keys_match_by_host() {
    let dir = tempfile::tempdir().unwrap();
    let f = files(dir.path());
    std::fs::create_dir_all(f.docker_config.parent().unwrap()).unwrap();
    std::fs::write(
        &f.docker_config,
        json!({"auths": {
            "https://registry.corp:5000/v2/": {"auth": BASE64.encode("docker:pw")},
            "tokens.example": {"identitytoken": "refresh-me"},
            "plain.example": {"username": "u", "password": "p"}
        }})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("auth.json"),
        json!({"auths": {"podman.example": {"auth": BASE64.encode("pod:pw")}}}).to_string(),
    )
    .unwrap();
    assert_eq!(
        f.get("registry.corp:5000").unwrap(),
        Some(basic("docker", "pw"))
    );
    assert_eq!(f.get("podman.example").unwrap(), Some(basic("pod", "pw")));
    assert_eq!(f.get("plain.example").unwrap(), Some(basic("u", "p")));
    assert_eq!(
        f.get("tokens.example").unwrap(),
        Some(Credential::IdentityToken {
            token: "refresh-me".into()
        })
    );
    let shown = format!("{:?}", f.get("registry.corp:5000").unwrap());
    assert!(!shown.contains("pw"), "{shown}");
}

#[test]
fn credential_helpers_are_asked() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let script = bin.join("docker-credential-rbuildtest");
    std::fs::write(
        &script,
        "#!/bin/sh
if [ \"$1\" = store ]; then cat > \"$(dirname \"$0\")/stored.json\"; exit 0; fi
read server
case \"$1:$server\" in
  get:helped.example) echo '{\"ServerURL\":\"helped.example\",\"Username\":\"h\",\"Secret\":\"hs\"}' ;;
  get:*) echo 'credentials not found in native keychain'; exit 1 ;;
esac
",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Only this test changes PATH, and only by prepending a directory.
    std::env::set_var("PATH", path);
    let f = files(dir.path());
    std::fs::create_dir_all(f.docker_config.parent().unwrap()).unwrap();
    std::fs::write(
        &f.docker_config,
        json!({"credHelpers": {"helped.example": "rbuildtest"}, "credsStore": "rbuildtest"})
            .to_string(),
    )
    .unwrap();
    assert_eq!(f.get("helped.example").unwrap(), Some(basic("h", "hs")));
    assert_eq!(f.get("other.example").unwrap(), None, "not found = none");
    // login stores through the helper, never in the file.
    let stored = f.login("helped.example", "u", "p2").unwrap();
    assert_eq!(stored, Stored::Helper("rbuildtest".into()));
    let sent = std::fs::read_to_string(bin.join("stored.json")).unwrap();
    assert!(
        sent.contains("\"Secret\":\"p2\"") && sent.contains("helped.example"),
        "{sent}"
    );
    let text = std::fs::read_to_string(&f.docker_config).unwrap();
    assert!(!text.contains("auths"), "{text}");
}
