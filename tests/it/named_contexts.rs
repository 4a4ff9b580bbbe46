//! `--build-context NAME=VALUE`: named contexts of each kind (a directory, a git
//! repository, an http(s) download, `docker-image://` from a registry, `oci-layout://`
//! by tag and by digest) used by `FROM NAME`, `COPY --from=NAME` and `RUN --mount
//! from=NAME`; a stage replaced by the context of its name; keys by content; and the
//! flags refused.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::inputs::{served_repo, tar_of};
use crate::pushpull::skopeo;
use crate::registry::{available, tiny_oci_layout, Registry};
use crate::support::{busybox, have, rbuild_in, read, run_ok, serve_bytes, TestContext};

/// `-o type=local` into `<t>/out`.
fn local(t: &TestContext) -> String {
    format!("type=local,dest={}", t.path("out").display())
}

/// Writes `files` (path, content) below `dir`.
fn tree(dir: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(path, content).expect("file");
    }
}

/// `NAME=<t>/rel`.
fn dir_flag(t: &TestContext, name: &str, rel: &str) -> String {
    format!("{name}={}", t.path(rel).display())
}

/// The image `name`'s config as `rbuild inspect` prints it.
fn config(t: &TestContext, name: &str) -> serde_json::Value {
    let (json, _) = run_ok(&t.root(), &["inspect", name], &[]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("inspect JSON");
    v["config"].clone()
}

#[test]
fn a_directory_serves_copy_from_and_from_filtered_by_its_own_dockerignore() {
    // The main context's .dockerignore hides a.txt from the main context only.
    let t = TestContext::new(
        "FROM scratch AS copied\nCOPY --from=extra:latest a.txt /from-copy.txt\n\
         FROM docker.io/library/extra\nCOPY --from=copied /from-copy.txt /again.txt\n",
        &[(".dockerignore", "a.txt\n")],
    );
    let files = [
        ("a.txt", "A\n"),
        ("skip/b.txt", "B\n"),
        (".dockerignore", "skip\n"),
    ];
    tree(&t.path("extra"), &files);
    let flag = dir_flag(&t, "extra", "extra");
    let first = t.build(&["--build-context", &flag, "-o", &local(&t), "-t", "named:1"]);
    let out = t.path("out");
    assert_eq!(read(&out, "a.txt"), "A\n", "FROM extra is the tree");
    assert_eq!(read(&out, "again.txt"), "A\n", "COPY --from=extra:latest");
    assert!(!out.join("skip").exists(), "its own .dockerignore applies");
    let history = &config(&t, "named:1")["history"];
    assert_eq!(history[0]["created_by"], "local source for extra");
    assert_eq!(
        history[1]["created_by"],
        "COPY /from-copy.txt /again.txt # buildkit"
    );
    // Keyed by content, never by where the tree is: a copy elsewhere is the same image
    // from the cache; a changed file is a new one.
    tree(&t.path("moved"), &files);
    let moved = dir_flag(&t, "extra", "moved");
    assert_eq!(t.build(&["--build-context", &moved]), first);
    tree(&t.path("moved"), &[("a.txt", "changed\n")]);
    assert_ne!(t.build(&["--build-context", &moved]), first);
}

#[test]
fn a_directory_is_bound_by_run_mount_from() {
    let rest = "FROM base\nRUN --mount=type=bind,from=extra,target=/m \
                test ! -e /m/skip && cat /m/a.txt > /seen.txt\n";
    let Some(t) = busybox(rest, &[]) else { return };
    tree(
        &t.path("extra"),
        &[
            ("a.txt", "mounted\n"),
            ("skip/x", "x"),
            (".dockerignore", "skip\n"),
        ],
    );
    let flag = dir_flag(&t, "extra", "extra");
    t.build(&["--build-context", &flag, "-o", &local(&t)]);
    assert_eq!(read(&t.path("out"), "seen.txt"), "mounted\n");
}

#[test]
fn a_named_context_replaces_the_stage_of_its_name() {
    // Stage `build` cannot run (its source is missing): replaced, it never does.
    let t = TestContext::new(
        "FROM scratch AS build\nCOPY not-in-the-context /x\n\
         FROM scratch\nCOPY --from=build a.txt /built.txt\n",
        &[],
    );
    tree(&t.path("prebuilt"), &[("a.txt", "prebuilt\n")]);
    let err = t.build_fails(&[]);
    assert!(err.contains("not-in-the-context"), "{err}");
    let flag = dir_flag(&t, "build", "prebuilt");
    t.build(&["--build-context", &flag, "-o", &local(&t)]);
    assert_eq!(read(&t.path("out"), "built.txt"), "prebuilt\n");
}

#[test]
fn an_image_from_a_registry_or_its_oci_layout_replaces_from_alpine() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(base) = busybox("ENV MARK=named\nRUN echo base > /base.txt\n", &[]) else {
        return;
    };
    base.build(&["-t", "base:1"]);
    let reg = Registry::plain();
    let remote = format!("{}/busybox:1", reg.host());
    run_ok(&base.root(), &["push", "base:1", &remote], &[]);
    // A fresh store: `FROM alpine` is the registry's image, with its configuration.
    let t = TestContext::new("FROM alpine\nRUN cat /base.txt > /seen.txt\n", &[]);
    let flag = format!("alpine=docker-image://{remote}");
    t.build(&["--build-context", &flag, "-o", &local(&t), "-t", "img:1"]);
    assert_eq!(read(&t.path("out"), "seen.txt"), "base\n");
    let env = config(&t, "img:1")["config"]["Env"].to_string();
    assert!(env.contains("MARK=named"), "{env}");
    // The same image as an OCI layout skopeo wrote: no registry, no pull.
    let layout = t.path("layout");
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{remote}"),
        &format!("oci:{}:v1", layout.display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_str(&read(&layout, "index.json")).expect("index.json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    let by_tag = format!("img=oci-layout://{}:v1", layout.display());
    let by_digest = format!("img=oci-layout://{}@{digest}", layout.display());
    for flag in [by_tag, by_digest] {
        let fresh = TestContext::new("FROM scratch\nCOPY --from=img /base.txt /copied.txt\n", &[]);
        fresh.build(&[
            "--pull=never",
            "--build-context",
            &flag,
            "-o",
            &local(&fresh),
        ]);
        assert_eq!(read(&fresh.path("out"), "copied.txt"), "base\n", "{flag}");
    }
}

#[test]
fn an_oci_layout_image_is_picked_by_tag_or_digest() {
    let t = TestContext::new("FROM scratch\nCOPY --from=img hello.txt /picked.txt\n", &[]);
    let dir = t.path("layout");
    let one = tiny_oci_layout(&dir, "one", b"first\n");
    tiny_oci_layout(&dir, "two", b"second\n");
    for (reference, expected) in [
        (":two".to_owned(), "second\n"),
        (format!("@{}", one.manifest), "first\n"),
    ] {
        let flag = format!("img=oci-layout://{}{reference}", dir.display());
        t.build(&["--build-context", &flag, "-o", &local(&t)]);
        assert_eq!(read(&t.path("out"), "picked.txt"), expected, "{flag}");
    }
    // No tag: `latest`, which no image of the two has.
    let flag = format!("img=oci-layout://{}", dir.display());
    let err = t.build_fails(&["--build-context", &flag]);
    assert!(err.contains("cannot load build context img"), "{err}");
    assert!(err.contains("no image is tagged \"latest\""), "{err}");
}

#[test]
fn an_http_context_is_the_download_as_one_file_named_context() {
    let t = TestContext::new("FROM scratch\nCOPY --from=dl context /dl/archive\n", &[]);
    tree(&t.path("src"), &[("inside.txt", "packed\n")]);
    let tarball = tar_of(&t.path("src"), true);
    let port = serve_bytes(tarball.clone());
    let flag = format!("dl=http://127.0.0.1:{port}/files.tar.gz");
    t.build(&["--build-context", &flag, "-o", &local(&t)]);
    // Not unpacked, as BuildKit's `llb.HTTP(url, Filename("context"))`.
    let archive = t.path("out/dl/archive");
    assert_eq!(std::fs::read(&archive).expect("archive"), tarball);
    let mode = std::fs::metadata(&archive)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_git_context_is_checked_out_at_its_reference() {
    if !have("git") {
        return;
    }
    let t = TestContext::new("FROM src\nCOPY --from=src version /copied\n", &[]);
    let daemon = served_repo(&t);
    let flag = format!("src=git://127.0.0.1:{}/repo.git#v1:app", daemon.port);
    t.build(&["--build-context", &flag, "-o", &local(&t)]);
    let out = t.path("out");
    assert_eq!(read(&out, "version"), "v1\n", "FROM src");
    assert_eq!(read(&out, "copied"), "v1\n", "COPY --from=src");
    assert!(!out.join(".git").exists());
}

#[test]
fn unused_contexts_are_never_loaded_and_bad_flags_are_refused() {
    let t = TestContext::new("FROM scratch\nCOPY f /f\n", &[("f", "x\n")]);
    // Nothing listens there: these would fail if they were fetched.
    t.build(&[
        "--build-context",
        "unused=docker-image://127.0.0.1:1/none:1",
        "--build-context",
        "gone=http://127.0.0.1:1/x.tar.gz",
    ]);
    for (flag, needle) in [
        ("alpine", "expected NAME=VALUE"),
        ("=docker-image://a", "NAME before `=` is empty"),
        ("Bad=.", "invalid --build-context name \"Bad\""),
        ("x=foo://y", "foo:// is not a kind of build context"),
        (
            "x=/nonexistent/named/dir",
            "directory /nonexistent/named/dir does not exist",
        ),
        ("context=.", "reserved"),
    ] {
        let err = t.build_fails(&["--build-context", flag]);
        assert!(err.contains(needle), "{flag}: {err}");
    }
    let err = t.build_fails(&[
        "--build-context",
        "a=.",
        "--build-context",
        "a:latest=docker-image://busybox",
    ]);
    assert!(err.contains("--build-context a is given twice"), "{err}");
    // A context a step uses and that cannot be loaded is named with the line.
    let t = TestContext::new("FROM scratch\nCOPY --from=img /x /x\n", &[]);
    let out = rbuild_in(
        &t.root(),
        &[
            "build",
            "--pull=never",
            "--build-context",
            "img=docker-image://127.0.0.1:1/none:1",
            t.context().to_str().expect("utf-8 path"),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("cannot load build context img"), "{err}");
}
