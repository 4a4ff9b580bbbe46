//! `build --push` and `build --pull` against the real CNCF registry: every name of a
//! build pushed (blobs mounted across repositories) without printing a secret, and a
//! base tag that moved re-resolved, the cache saying why it missed.

use std::process::Command;

use crate::pushpull::{base, sha256_of, skopeo};
use crate::registry::{available, Registry};
use crate::support::{busybox, rbuild_in, run_ok, TestContext};

#[test]
fn pull_always_re_resolves_the_base_and_the_cache_says_why_it_missed() {
    if !available(&[]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let reg = Registry::plain();
    let tag = format!("{}/base/os:1", reg.host());
    run_ok(&t.root(), &["push", "base:1", &tag], &[]);
    let child = TestContext::new(&format!("FROM {tag}\nRUN echo child > /child.txt\n"), &[]);
    child.build(&["-t", "child:1"]);
    // The tag moves in the registry.
    let Some(t2) = busybox("RUN echo moved > /base.txt\n", &[]) else {
        return;
    };
    t2.build(&["-t", "base:2"]);
    run_ok(&t2.root(), &["push", "base:2", &tag], &[]);
    // Without --pull the local copy is used: everything hits.
    let ctx = child.context();
    let ctx = ctx.to_str().unwrap();
    let out = child.rbuild(&["build", "--progress", "plain", "-t", "child:1", ctx]);
    let plain = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{plain}");
    assert!(
        plain.contains("CACHED") && !plain.contains("pulling"),
        "{plain}"
    );
    // --pull asks the registry, gets the new digest, and the RUN misses for that reason.
    let out = child.rbuild(&[
        "build",
        "--pull",
        "--progress",
        "plain",
        "-t",
        "child:1",
        ctx,
    ]);
    let plain = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{plain}");
    assert!(plain.contains("pulling"), "{plain}");
    assert!(plain.contains("base image digest changed"), "{plain}");
    // And the image is built on the new base.
    let (json, _) = run_ok(&child.root(), &["inspect", "child:1"], &[]);
    let (moved, _) = run_ok(&child.root(), &["inspect", &tag], &[]);
    let layers = |j: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(j).unwrap()["manifest"]["layers"].clone()
    };
    let base_layers = layers(&moved);
    let child_layers = layers(&json);
    assert_eq!(child_layers[0], base_layers[0]);
}

#[test]
fn build_push_sends_every_name_and_never_prints_a_secret() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(t) = busybox("RUN echo pushed > /p.txt\n", &[]) else {
        return;
    };
    let reg = Registry::basic("dave", "very-secret-pw");
    let config = tempfile::tempdir().unwrap();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    let out = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .args([
            "--root",
            t.root().to_str().unwrap(),
            "login",
            "-u",
            "dave",
            "-p",
            "very-secret-pw",
            reg.host(),
        ])
        .env("DOCKER_CONFIG", config.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let one = format!("{}/team/app:1", reg.host());
    let two = format!("{}/team/app:latest", reg.host());
    let three = format!("{}/other/app:1", reg.host());
    let ctx = t.context();
    let out = rbuild_in(
        &t.root(),
        &[
            "build",
            "--progress",
            "json",
            "-t",
            &one,
            "-t",
            &two,
            "--push",
            "-o",
            &format!("type=image,name={three},push=true"),
            ctx.to_str().unwrap(),
        ],
        &env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("very-secret-pw") && !stderr.contains("very-secret-pw"));
    // The last line is the image ID; the registries hold its manifest.
    let id = stdout.lines().last().unwrap_or_default().trim().to_owned();
    let digest = crate::support::manifest_digest(&t.root(), &id);
    for name in [&one, &two, &three] {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "dave:very-secret-pw",
            &format!("docker://{name}"),
        ]);
        assert_eq!(sha256_of(raw.as_bytes()), digest, "{name}");
    }
    // The second name of a repository moves no blob; another repository mounts them.
    assert!(stderr.contains("0 blobs uploaded"), "{stderr}");
    assert!(stderr.contains("mounted"), "{stderr}");
    // --push without a name is refused before anything runs.
    let out = rbuild_in(&t.root(), &["build", "--push", ctx.to_str().unwrap()], &env);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-t"));
}
