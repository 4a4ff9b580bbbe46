//! Commands around the build: shell completions and manual pages.

use std::process::Command;

use crate::support::{have, TestContext};

#[test]
fn completion_scripts_load_in_their_shell_and_man_pages_render() {
    let t = TestContext::new("FROM scratch\n", &[]);
    let out = t.rbuild(&["completion", "bash"]);
    assert!(out.status.success());
    let script = t.path("rbuild.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // Sourced by bash: the completion function exists and completes subcommands.
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". {} && COMP_WORDS=(rbuild hist) COMP_CWORD=1 && _rbuild rbuild hist rbuild \
             && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(words.lines().any(|w| w == "history"), "{words}");
    let dir = t.path("man");
    let out = t.rbuild(&["man", "--dir", &dir.to_string_lossy()]);
    assert!(out.status.success());
    assert!(dir.join("rbuild.1").is_file() && dir.join("rbuild-build.1").is_file());
    if have("man") {
        let page = Command::new("man")
            .arg("-l")
            .arg(dir.join("rbuild-build.1"))
            .env("MANPAGER", "cat")
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&page.stdout);
        assert!(text.contains("--build-arg-file"), "{text}");
    }
}

#[test]
fn output_keys_are_honoured_or_refused() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a\n")]);
    let dest = t.path("img.tar");
    let spec = format!(
        "type=oci,dest={},compression=zstd,oci-mediatypes=true",
        dest.display()
    );
    t.build(&["-t", "z:1", "-o", &spec]);
    let out = t.rbuild(&["inspect", "z:1"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["manifest"]["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert!(dest.is_file());
    for (spec, needle) in [
        ("type=local,destt=x", "unknown key \"destt\" for type=local"),
        (
            "type=docker,dest=x.tar,push-by-digest=true",
            "not supported by rbuild",
        ),
        (
            "type=oci,dest=x.tar,compression=gzip",
            "differs from another output or flag",
        ),
    ] {
        let err = t.build_fails(&["--compression", "zstd", "-o", spec]);
        assert!(err.contains(needle), "{spec}: {err}");
    }
}

#[test]
fn unpacking_a_base_layer_is_shown() {
    if !crate::support::can_mount() {
        return;
    }
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a\n")]);
    t.build(&["-t", "base:1"]);
    let out = t.rbuild(&["prune", "--all", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(t.context().join("Dockerfile"), "FROM base:1\nCOPY a /b\n").unwrap();
    let ctx = t.context().to_string_lossy().into_owned();
    let out = t.rbuild(&["build", "--progress", "plain", &ctx]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let unpacking = err.lines().find(|l| l.starts_with("unpacking sha256:"));
    assert!(unpacking.is_some_and(|l| l.ends_with("B)")), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("unpacked sha256:")),
        "{err}"
    );
}

#[test]
fn inspect_format_runs_go_templates_on_the_docker_view() {
    let t = TestContext::new(
        "FROM scratch\nENV A=1 B=2\nLABEL team=x\nCOPY a /a\n",
        &[("a", "a\n")],
    );
    t.build(&["-t", "f:1"]);
    let json = t.rbuild(&["inspect", "f:1"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let text = |template: &str| {
        let out = t.rbuild(&["inspect", "--format", template, "f:1"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    };
    let config_digest = format!("sha256:{}", sha256_hex(&config_bytes(&t, &v)));
    assert_eq!(
        text("{{.Id}}"),
        config_digest,
        "the image ID is the config digest"
    );
    assert_eq!(
        text("{{.Config.Env}}"),
        "[PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin A=1 B=2]"
    );
    assert_eq!(
        text(r#"{{index .Config.Labels "team"}} {{.RepoTags}}"#),
        "x [f:1]"
    );
    assert_eq!(text("{{json .RootFS.Type}}"), "\"layers\"");
    let bad = t.rbuild(&["inspect", "--format", "{{.Id", "f:1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unclosed action"));
}

/// The config blob of the image `inspect` printed as JSON, read from the store.
fn config_bytes(t: &TestContext, inspected: &serde_json::Value) -> Vec<u8> {
    let digest = inspected["manifest"]["config"]["digest"].as_str().unwrap();
    let hex = digest.trim_start_matches("sha256:");
    std::fs::read(t.root().join("blobs/sha256").join(hex)).unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_docker_archive_streams_to_stdout_with_its_names() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a\n")]);
    let ctx = t.context().to_string_lossy().into_owned();
    let out = t.rbuild(&[
        "build",
        "--progress",
        "plain",
        "-o",
        "type=docker,dest=-,name=streamed:9",
        &ctx,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = t.path("streamed.tar");
    std::fs::write(&archive, &out.stdout).unwrap();
    let manifest = Command::new("tar")
        .arg("-xOf")
        .arg(&archive)
        .arg("manifest.json")
        .output()
        .unwrap();
    assert!(
        manifest.status.success(),
        "stdout is the archive, nothing else"
    );
    let v: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let tags = v[0]["RepoTags"].to_string();
    assert!(tags.contains("streamed:9"), "{tags}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().any(|l| l.starts_with("sha256:")),
        "the digest went to stderr: {err}"
    );
    let two = t.rbuild(&[
        "build",
        "-o",
        "type=docker,dest=-",
        "-o",
        "type=tar,dest=-",
        &ctx,
    ]);
    assert!(String::from_utf8_lossy(&two.stderr).contains("only one --output"));
}
