//! `rbuild build` without RUN: file steps, stages, reproducible digests, errors,
//! interruption, ADD of URLs and archives. The config and history a build writes are
//! in `config.rs`, its outputs in `outputs.rs`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use crate::support::{can_mount, have, leaked_mounts, rbuild_in, umoci_unpack, TestContext};

const MULTI: &str = "\
FROM scratch AS base
COPY src/ /data/
COPY <<EOT /etc/motd
hello ${NAME:-world}
EOT

FROM scratch AS unused
COPY nothing-here /x

FROM base
ARG V=1
LABEL version=$V
WORKDIR /app
COPY --chmod=0600 --chown=1000:1000 b.txt ./
COPY --from=base /data/a.txt /copied.txt
ENV PATH=/bin
ENTRYPOINT [\"/bin/cat\"]
CMD [\"/etc/motd\"]
";

pub(crate) fn multi() -> TestContext {
    TestContext::new(
        MULTI,
        &[
            ("src/a.txt", "a\n"),
            ("src/sub/c.txt", "c\n"),
            ("b.txt", "b\n"),
            ("secret.txt", "s\n"),
            (".dockerignore", "secret.txt\n"),
        ],
    )
}

#[test]
fn builds_a_multi_stage_image_that_umoci_unpacks() {
    if !can_mount() || !have("umoci") {
        return;
    }
    let t = multi();
    let out = t.build(&["-t", "app:1"]);
    assert!(out.starts_with("sha256:"), "prints the image ID: {out}");
    let rootfs = umoci_unpack(&t, "app:1");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("data/a.txt")).unwrap(),
        "a\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("data/sub/c.txt")).unwrap(),
        "c\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
        "hello world\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("copied.txt")).unwrap(),
        "a\n"
    );
    let meta = std::fs::metadata(rootfs.join("app/b.txt")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o777),
        (1000, 1000, 0o600)
    );
    assert!(!rootfs.join("secret.txt").exists());
    assert!(leaked_mounts(&t.root()).is_empty(), "no mounts left behind");
}

#[test]
fn same_inputs_give_the_same_digest() {
    if !can_mount() {
        return;
    }
    let t = multi();
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    let ctx = t.context().to_string_lossy().into_owned();
    let a = rbuild_in(
        &t.path("store-a"),
        &["build", "--progress", "quiet", &ctx],
        &env,
    );
    let b = rbuild_in(
        &t.path("store-b"),
        &["build", "--progress", "quiet", &ctx],
        &env,
    );
    assert!(a.status.success() && b.status.success());
    assert_eq!(a.stdout, b.stdout, "reproducible image ID");
    let manifest = |store: &str, out: &std::process::Output| {
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        crate::support::manifest_digest(&t.path(store), &id)
    };
    assert_eq!(
        manifest("store-a", &a),
        manifest("store-b", &b),
        "reproducible manifest digest"
    );
}

#[test]
fn target_builds_only_what_it_needs() {
    if !can_mount() {
        return;
    }
    let t = multi();
    let ctx = t.context().to_string_lossy().into_owned();
    let out = rbuild_in(
        &t.root(),
        &["build", "--progress", "plain", "--target", "base", &ctx],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains("nothing-here"),
        "the unused stage is not built:\n{log}"
    );
    assert!(
        !log.contains("LABEL"),
        "stages after the target are not built:\n{log}"
    );
}

fn fails_with(dockerfile: &str, files: &[(&str, &str)], needles: &[&str]) {
    let t = TestContext::new(dockerfile, files);
    let err = t.build_fails(&[]);
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    assert!(leaked_mounts(&t.root()).is_empty(), "no mounts left behind");
    let tmp = t.root().join("tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert!(
        leftovers.iter().all(|e| e
            .path()
            .read_dir()
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)),
        "temporary directories removed: {leftovers:?}"
    );
}

#[test]
fn bad_input_is_a_clear_error_with_its_line() {
    if !can_mount() {
        return;
    }
    fails_with(
        "FROM scratch\nCOPY ../x /x\n",
        &[],
        &["Dockerfile:2", "outside the build context"],
    );
    fails_with(
        "FROM scratch\nCOPY missing.txt /x\n",
        &[],
        &["Dockerfile:2", "missing.txt", "not found"],
    );
    fails_with(
        "FROM scratch\nCOPY --chown=nobody a /a\n",
        &[("a", "a")],
        &["Dockerfile:2", "unable to find user nobody"],
    );
    fails_with("FROM nosuch:1\n", &[], &["Dockerfile:1", "nosuch:1"]);
    fails_with(
        "FROM scratch\nCOPY --from=nosuchstage /a /a\n",
        &[],
        &["Dockerfile:2", "nosuchstage"],
    );
    fails_with(
        "FROM scratch AS build\nFROM scratch\nCOPY --from=bulid /a /a\n",
        &[],
        &[
            "Dockerfile:3",
            "no stage named 'bulid' (did you mean 'build'?)",
            "as an image",
        ],
    );
    fails_with(
        "FROM scratch\nCOPY a b /dest\n",
        &[("a", ""), ("b", "")],
        &["Dockerfile:2", "must be a directory and end with a /"],
    );
    fails_with(
        "FROM scratch\nCOPY --chwon=1 a /a\n",
        &[("a", "")],
        &["Dockerfile:2:6", "did you mean --chown"],
    );
}

#[test]
fn a_symlink_out_of_the_context_is_refused() {
    if !can_mount() {
        return;
    }
    let t = TestContext::new("FROM scratch\nCOPY link /x\n", &[]);
    std::os::unix::fs::symlink("../../../../etc/passwd", t.context().join("link")).unwrap();
    let err = t.build_fails(&[]);
    assert!(err.contains("outside the build context"), "{err}");
}

#[test]
fn ctrl_c_leaves_no_mounts_or_temp_dirs() {
    if !can_mount() {
        return;
    }
    let t = TestContext::new("FROM scratch\nCOPY . /data/\nCOPY . /again/\n", &[]);
    t.fill(40, 500);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress", "quiet"])
        .arg(t.context())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        matches!(status.code(), Some(130) | Some(0)),
        "interrupted or finished: {status:?}"
    );
    assert!(leaked_mounts(&t.root()).is_empty(), "no mounts left behind");
    let tmp = t.root().join("tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .flat_map(|e| e.path().read_dir().ok())
                .flatten()
                .collect()
        })
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "work directories emptied: {leftovers:?}"
    );
}

/// Serves `body` with a fixed `Last-Modified` on 127.0.0.1 until the test ends.
fn serve(body: &'static str) -> u16 {
    let body = std::sync::Arc::new(std::sync::Mutex::new(body.to_owned()));
    crate::support::serve(body, Some("Sun, 06 Nov 1994 08:49:37 GMT"))
}

#[test]
fn add_downloads_urls_and_extracts_archives() {
    if !can_mount() {
        return;
    }
    let port = serve("downloaded\n");
    let sum = rbuild::digest::Digest::of(b"downloaded\n");
    let dockerfile = format!(
        "FROM scratch\nADD http://127.0.0.1:{port}/files/file.txt /dl/\nADD --checksum={sum} http://127.0.0.1:{port}/x /checked\nADD files.tar.gz /unpacked/\nADD --unpack=false files.tar.gz /kept/\n"
    );
    let t = TestContext::new(&dockerfile, &[("src/inner.txt", "inner\n")]);
    let ok = Command::new("tar")
        .arg("-czf")
        .arg(t.context().join("files.tar.gz"))
        .arg("-C")
        .arg(t.context().join("src"))
        .arg("inner.txt")
        .status()
        .unwrap();
    assert!(ok.success());
    let out_dir = t.path("out");
    let local = format!("type=local,dest={}", out_dir.display());
    t.build(&["-o", &local]);
    let dl = out_dir.join("dl/file.txt");
    assert_eq!(std::fs::read_to_string(&dl).unwrap(), "downloaded\n");
    let meta = std::fs::metadata(&dl).unwrap();
    assert_eq!(
        (meta.permissions().mode() & 0o777, meta.mtime()),
        (0o600, 784_111_777)
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("checked")).unwrap(),
        "downloaded\n"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("unpacked/inner.txt")).unwrap(),
        "inner\n"
    );
    assert!(out_dir.join("kept/files.tar.gz").is_file());

    let bad = format!(
        "FROM scratch\nADD --checksum=sha256:{} http://127.0.0.1:{port}/x /y\n",
        "0".repeat(64)
    );
    let t = TestContext::new(&bad, &[]);
    let err = t.build_fails(&[]);
    assert!(
        err.contains("Dockerfile:2") && err.contains("checksum mismatch"),
        "{err}"
    );
}

/// A download that fails is reported once, with the cause its HTTP client gives
/// (before: "error sending request for url (...)", the URL twice and no reason).
#[test]
fn a_failed_add_download_is_reported_once_with_its_cause() {
    if !can_mount() {
        return;
    }
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/file");
    let t = TestContext::new(&format!("FROM scratch\nADD {url} /file\n"), &[]);
    let err = t.build_fails(&[]);
    let report: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("error:") || l.starts_with("caused by:"))
        .collect();
    assert_eq!(report.len(), 1, "{err}");
    assert_eq!(
        err.matches(&url).count(),
        2,
        "the ADD and what failed:\n{err}"
    );
    assert_eq!(err.matches("cannot download").count(), 1, "{err}");
    assert!(
        err.to_ascii_lowercase().contains("connection refused"),
        "the cause is named:\n{err}"
    );
}
