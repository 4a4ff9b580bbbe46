//! The image a build writes, read back: its config as BuildKit writes it, its history
//! (`inspect`, `rbuild history`), and Docker schema 2 media types when asked.

use crate::build::multi;
use crate::support::{can_mount, TestContext};

#[test]
fn config_follows_buildkit() {
    if !can_mount() {
        return;
    }
    let t = multi();
    t.build(&["-t", "app:1", "--label", "extra=yes"]);
    let out = t.rbuild(&["inspect", "app:1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cfg = &v["config"]["config"];
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/cat"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["/etc/motd"]));
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["Env"], serde_json::json!(["PATH=/bin"]));
    assert_eq!(
        cfg["Labels"],
        serde_json::json!({"version": "1", "extra": "yes"})
    );
    let history = v["config"]["history"].as_array().unwrap();
    let layers = v["config"]["rootfs"]["diff_ids"].as_array().unwrap();
    let with_layer = history.iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(
        with_layer,
        layers.len(),
        "one non-empty history entry per layer"
    );
}

#[test]
fn copy_history_shows_sources_and_destination_as_written() {
    let t = TestContext::new(
        "FROM scratch\nWORKDIR /w\nARG D=./c\nCOPY a b ./\nCOPY a ${D}\nADD <<EOF /h\nx\nEOF\n",
        &[("a", "a\n"), ("b", "b\n")],
    );
    t.build(&["-t", "h:1"]);
    let out = t.rbuild(&["inspect", "h:1"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let texts: Vec<&str> = v["config"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["created_by"].as_str())
        .filter(|s| s.ends_with("# buildkit"))
        .collect();
    assert_eq!(
        texts,
        [
            "COPY a b ./ # buildkit",
            "COPY a ./c # buildkit",
            "ADD <<EOF /h # buildkit"
        ],
        "BuildKit's text: expanded, destination not made absolute"
    );
    let out = t.rbuild(&["history", "--no-trunc", "h:1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY"),
        "{text}"
    );
    assert!(
        lines[1].contains("ADD <<EOF /h # buildkit"),
        "newest first: {text}"
    );
    assert!(
        lines[1].starts_with("sha256:"),
        "the image ID on top: {text}"
    );
    assert!(lines[2].starts_with("<missing>"), "{text}");
    assert!(text.contains("WORKDIR /w"), "{text}");
    let quiet = t.rbuild(&["history", "-q", "h:1"]);
    assert_eq!(
        String::from_utf8_lossy(&quiet.stdout).lines().count(),
        lines.len() - 1
    );
}

#[test]
fn docker_schema_2_when_asked() {
    if !can_mount() {
        return;
    }
    let t = multi();
    t.build(&["-t", "d:1", "--format", "docker"]);
    let out = t.rbuild(&["inspect", "d:1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = &v["manifest"];
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
}

#[test]
fn a_platform_the_base_does_not_have_is_an_error() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a\n")]);
    t.build(&["-t", "host-only:1"]);
    let host = format!(
        "linux/{}",
        if cfg!(target_arch = "aarch64") {
            "arm64"
        } else {
            "amd64"
        }
    );
    let other = if host.ends_with("arm64") {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    std::fs::write(
        t.context().join("Dockerfile"),
        "FROM host-only:1\nCOPY a /b\n",
    )
    .unwrap();
    // The local image is of another platform: a pull would be tried (as Docker does;
    // here it is forbidden, no network), and the error says what the store has.
    let err = t.build_fails(&["--platform", other, "--pull=never"]);
    assert!(err.contains("Dockerfile:1"), "{err}");
    assert!(
        err.contains(&format!("is {host}, not")) && err.contains(other),
        "{err}"
    );
    std::fs::write(
        t.context().join("Dockerfile"),
        format!("FROM --platform={other} host-only:1\nCOPY a /b\n"),
    )
    .unwrap();
    let err = t.build_fails(&["--pull=never"]);
    assert!(err.contains(&format!("is {host}, not")), "{err}");
    std::fs::write(
        t.context().join("Dockerfile"),
        "FROM host-only:1\nCOPY a /b\n",
    )
    .unwrap();
    t.build(&["--platform", &host]);
}
