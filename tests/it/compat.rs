//! Flags of `docker build`, buildx and `podman build`, as `testdata/cli-compat.tsv`
//! says: each refused one with its reason, each accepted one doing what it says.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine;

use crate::pushpull::base;
use crate::registry::{available, Registry};
use crate::support::{rbuild_in, run_fails, run_ok, TestContext};

/// The table's rows: (command, option, status, note).
fn table() -> Vec<[String; 4]> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cli-compat.tsv");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            [0, 1, 2, 3].map(|i| cells[i].to_owned())
        })
        .collect()
}

fn stderr_of(t: &TestContext, args: &[&str]) -> (i32, String) {
    let out = t.rbuild(args);
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_refused_flag_and_key_is_refused_with_its_reason() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a")]);
    let ctx = t.context().to_string_lossy().into_owned();
    let mut checked = 0;
    let mut seen = std::collections::BTreeSet::new();
    for [command, option, status, note] in table() {
        if status == "supported" {
            continue;
        }
        let note = note.split(" (").next().unwrap_or_default().to_owned();
        if let Some(types) = command.strip_prefix("-o type=") {
            for kind in types.split(',') {
                let target = match kind {
                    "image" | "registry" => "name=x",
                    _ => "dest=out",
                };
                let spec = format!("type={kind},{target},{option}=1");
                let (code, err) = stderr_of(&t, &["build", "-o", &spec, &ctx]);
                assert!(
                    code != 0 && err.contains(&format!("{option}=")),
                    "{spec}: {err}"
                );
                assert!(err.contains(&note), "{spec}: {err} lacks {note:?}");
                checked += 1;
            }
            continue;
        }
        // A flag of docker and podman both is refused with its first row's reason.
        for flag in option.split(", ").filter(|f| seen.insert(f.to_string())) {
            let (code, err) = stderr_of(&t, &["build", flag, &ctx]);
            assert_eq!(code, 2, "{flag}: {err}");
            assert!(
                err.contains(&format!("error: {flag} ({command})")),
                "{flag}: {err}"
            );
            assert!(err.contains(&note), "{flag}: {err} lacks {note:?}");
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} refusals checked");
}

/// The build's plain progress (stderr) for `args`.
fn build_stderr(t: &TestContext, args: &[&str]) -> String {
    let ctx = t.context().to_string_lossy().into_owned();
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    all.push(&ctx);
    run_ok(&t.root(), &all, &[]).1
}

#[test]
fn legacy_flags_that_describe_rbuild_are_accepted() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a")]);
    let flags = [
        "--rm",
        "--force-rm=true",
        "--disable-content-trust",
        "--identity-label=false",
        "--skip-unused-stages",
        "--layers",
        "--compress",
    ];
    let first = build_stderr(&t, &flags);
    assert!(first.contains("note: --compress has no effect"), "{first}");
    assert!(build_stderr(&t, &["--layers"]).contains("CACHED"));
    let uncached = build_stderr(&t, &["--layers=false"]);
    assert!(
        !uncached.contains("CACHED"),
        "--layers=false runs every step: {uncached}"
    );
    for (flag, why) in [
        ("--rm=false", "no container"),
        ("--force-rm=false", "no container"),
        ("--disable-content-trust=false", "Content Trust"),
        ("--identity-label", "io.buildah.version"),
        (
            "--skip-unused-stages=false",
            "only the stages the target needs",
        ),
    ] {
        let err = t.build_fails(&[flag]);
        assert!(err.contains(&format!("{flag} is not supported")), "{err}");
        assert!(err.contains(why), "{flag}: {err}");
    }
}

#[test]
fn attestations_can_be_turned_off_not_on() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a")]);
    t.build(&["--provenance=false", "--sbom=false"]);
    t.build(&["--provenance=0"]);
    for flag in ["--provenance", "--provenance=mode=max", "--sbom=true"] {
        let err = t.build_fails(&[flag]);
        assert!(
            err.contains("rbuild makes no attestations"),
            "{flag}: {err}"
        );
    }
}

#[test]
fn quiet_prints_only_the_image_id() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a")]);
    let iid = t.path("iid");
    let ctx = t.context().to_string_lossy().into_owned();
    let out = t.rbuild(&["build", "-q", "--iidfile", iid.to_str().unwrap(), &ctx]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), std::fs::read_to_string(&iid).unwrap().trim());
    assert_eq!(stdout.lines().count(), 1);
    assert!(
        stdout.starts_with("sha256:") && stdout.trim().len() == 71,
        "{stdout}"
    );
}

/// `rbuild inspect --format TEMPLATE NAME`.
fn inspect(t: &TestContext, template: &str, name: &str) -> String {
    run_ok(&t.root(), &["inspect", "--format", template, name], &[]).0
}

#[test]
fn podman_platform_parts_make_the_platform() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a")]);
    t.build(&["--arch", "arm", "--variant", "v7", "-t", "arm:1"]);
    let platform = inspect(&t, "{{.Os}}/{{.Architecture}}/{{.Variant}}", "arm:1");
    assert_eq!(platform, "linux/arm/v7");
    t.build(&["--os", "linux", "--arch", "arm64", "-t", "arm64:1"]);
    assert_eq!(inspect(&t, "{{.Architecture}}", "arm64:1"), "arm64");
    let err = t.build_fails(&["--arch", "arm64", "--platform", "linux/amd64"]);
    assert!(err.contains("cannot be used with"), "{err}");
}

/// The media type of the first layer of the image exported to OCI directory `dir`.
fn first_layer_media_type(dir: &Path) -> String {
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let index = read(&dir.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest = read(&blob(&digest));
    manifest["layers"][0]["mediaType"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn podman_compression_and_timestamps() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a")]);
    let out = t.path("oci");
    let spec = format!("type=oci,tar=false,dest={}", out.display());
    t.build(&["-D", "-o", &spec]);
    assert_eq!(
        first_layer_media_type(&out),
        "application/vnd.oci.image.layer.v1.tar"
    );
    let err = t.build_fails(&["-D", "--compression", "zstd"]);
    assert!(err.contains("cannot be used with"), "{err}");
    let by_arg = t.build(&["--build-arg", "SOURCE_DATE_EPOCH=1700000000"]);
    let by_timestamp = t.build(&["--timestamp", "1700000000", "--rewrite-timestamp"]);
    let by_epoch = t.build(&["--source-date-epoch=1700000000", "-t", "e:1"]);
    assert_eq!(by_arg, by_timestamp);
    assert_eq!(by_arg, by_epoch);
    assert_eq!(inspect(&t, "{{.Created}}", "e:1"), "2023-11-14T22:13:20Z");
    let err = t.build_fails(&["--timestamp", "5", "--build-arg", "SOURCE_DATE_EPOCH=6"]);
    assert!(err.contains("disagrees with SOURCE_DATE_EPOCH=6"), "{err}");
    let err = t.build_fails(&["--rewrite-timestamp=false"]);
    assert!(
        err.contains("--rewrite-timestamp=false is not supported"),
        "{err}"
    );
}

/// A `docker` that keeps what `docker load` reads in `$FAKE_DOCKER_OUT` and exits
/// with `$FAKE_DOCKER_EXIT`.
pub(crate) fn fake_docker(dir: &Path) {
    let script = "#!/bin/sh\n[ \"$1\" = load ] || exit 3\ncat > \"$FAKE_DOCKER_OUT\"\n\
                  echo 'Loaded image: app:1'\nexit \"${FAKE_DOCKER_EXIT:-0}\"\n";
    let path = dir.join("docker");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn load_hands_a_docker_archive_to_docker_load() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a")]);
    let bin = t.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    fake_docker(&bin);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let received = t.path("received.tar");
    let ctx = t.context().to_string_lossy().into_owned();
    let args = [
        "build",
        "--progress",
        "plain",
        "--load",
        "-t",
        "app:1",
        &ctx,
    ];
    let env = [
        ("PATH", path.as_str()),
        ("FAKE_DOCKER_OUT", received.to_str().unwrap()),
    ];
    let (stdout, stderr) = run_ok(&t.root(), &args, &env);
    assert!(stderr.contains("Loaded image: app:1"), "{stderr}");
    assert_eq!(
        stdout.lines().count(),
        1,
        "docker's output is not on stdout: {stdout}"
    );
    let listing = std::process::Command::new("tar")
        .args(["-xOf", received.to_str().unwrap(), "manifest.json"])
        .output()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    assert_eq!(manifest[0]["RepoTags"][0], "app:1");
    let failing = [
        ("PATH", path.as_str()),
        ("FAKE_DOCKER_OUT", received.to_str().unwrap()),
        ("FAKE_DOCKER_EXIT", "1"),
    ];
    let err = run_fails(&t.root(), &args, &failing);
    assert!(err.contains("docker load failed"), "{err}");
    let no_docker = [("PATH", "/nonexistent")];
    let out = rbuild_in(&t.root(), &args, &no_docker);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot run `docker load`"),
        "{err}"
    );
}

#[test]
fn authfile_gives_the_registry_credentials() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let reg = Registry::basic("alice", "s3cret-pass");
    let empty = tempfile::tempdir().unwrap();
    let env = [("DOCKER_CONFIG", empty.path().to_str().unwrap())];
    let dest = format!("{}/team/app:1", reg.host());
    let err = run_fails(&t.root(), &["push", "base:1", &dest], &env);
    assert!(err.contains("rbuild login"), "{err}");
    let authfile = t.path("auth.json");
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret-pass");
    let json = serde_json::json!({"auths": {reg.host(): {"auth": auth}}});
    std::fs::write(&authfile, json.to_string()).unwrap();
    let authfile = authfile.to_str().unwrap();
    run_ok(
        &t.root(),
        &["push", "--authfile", authfile, "base:1", &dest],
        &env,
    );
    let written = t.path("login.json");
    let login = [
        "login",
        "--authfile",
        written.to_str().unwrap(),
        "-u",
        "alice",
        "-p",
        "s3cret-pass",
        reg.host(),
    ];
    run_ok(&t.root(), &login, &env);
    let saved = std::fs::read_to_string(&written).unwrap();
    assert!(
        saved.contains(reg.host()),
        "login --authfile writes there: {saved}"
    );
    assert!(!empty.path().join("config.json").exists());
}
