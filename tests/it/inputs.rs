//! Where the Dockerfile and the context come from, as `docker build` takes them:
//! `-f -`, `-` (a Dockerfile or a tar archive on standard input), git URLs, http(s)
//! tarballs, `Containerfile`; and the words that are not contexts at all.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::{git_daemon, have, serve_bytes, GitDaemon, TestContext};

/// Runs `rbuild --root <store> build --progress plain ARGS` with `input` on stdin.
fn build_with_stdin(t: &TestContext, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress", "plain"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running rbuild");
    let mut stdin = child.stdin.take().expect("stdin");
    // rbuild may refuse before reading stdin (e.g. `-f -` with `-`): a closed pipe
    // is its answer, not a test failure.
    match stdin.write_all(input) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
        _ => {}
    }
    drop(stdin);
    child.wait_with_output().expect("rbuild output")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The file `rel` of the image exported by `-o type=local,dest=<t>/out`.
fn exported(t: &TestContext, rel: &str) -> String {
    std::fs::read_to_string(t.path("out").join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn local_output(t: &TestContext) -> String {
    format!("type=local,dest={}", t.path("out").display())
}

/// A tar of the context directory of `t` (made by GNU tar, as a user pipes it).
pub(crate) fn tar_of(dir: &Path, compress: bool) -> Vec<u8> {
    let out = Command::new("tar")
        .arg(if compress { "-cz" } else { "-c" })
        .arg("-C")
        .arg(dir)
        .arg(".")
        .output()
        .expect("tar");
    assert!(out.status.success());
    out.stdout
}

#[test]
fn dockerfile_from_stdin_with_a_context_directory() {
    let t = TestContext::new("FROM scratch\nCOPY a /wrong\n", &[("a", "a\n")]);
    let out_arg = local_output(&t);
    let ctx = t.context().to_string_lossy().into_owned();
    let out = build_with_stdin(
        &t,
        &["-f", "-", "-o", &out_arg, &ctx],
        b"FROM scratch\nCOPY a /from-stdin\n",
    );
    ok(&out);
    assert_eq!(exported(&t, "from-stdin"), "a\n");
    assert!(
        !t.path("out/wrong").exists(),
        "the stdin Dockerfile was used"
    );
}

#[test]
fn a_dockerfile_on_stdin_builds_without_a_context() {
    let t = TestContext::new("", &[]);
    let out_arg = local_output(&t);
    let out = build_with_stdin(
        &t,
        &["-o", &out_arg, "-"],
        b"FROM scratch\nCOPY <<EOF /made\nhere\nEOF\n",
    );
    ok(&out);
    assert_eq!(exported(&t, "made"), "here\n");
    let out = build_with_stdin(&t, &["-"], b"FROM scratch\nCOPY a /a\n");
    assert!(!out.status.success(), "no context: nothing to COPY");
}

#[test]
fn a_tar_context_on_stdin_plain_or_gzip() {
    let t = TestContext::new(
        "FROM scratch\nCOPY sub/b /b\n",
        &[
            ("sub/b", "b\n"),
            ("other.Dockerfile", "FROM scratch\nCOPY sub /s\n"),
        ],
    );
    let out_arg = local_output(&t);
    let out = build_with_stdin(&t, &["-o", &out_arg, "-"], &tar_of(&t.context(), false));
    ok(&out);
    assert_eq!(exported(&t, "b"), "b\n");
    // -f names a file inside the archive.
    let out = build_with_stdin(
        &t,
        &["-o", &out_arg, "-f", "other.Dockerfile", "-"],
        &tar_of(&t.context(), true),
    );
    ok(&out);
    assert_eq!(exported(&t, "s/b"), "b\n");
}

#[test]
fn both_from_stdin_is_refused() {
    let t = TestContext::new("FROM scratch\n", &[]);
    // More than a pipe holds: rbuild refuses without reading, so the write always
    // meets a closed pipe (the harness must take that as the answer it is).
    let mut input = b"FROM scratch\n".to_vec();
    input.resize(4 << 20, b'\n');
    let out = build_with_stdin(&t, &["-f", "-", "-"], &input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot both come from standard input"),
        "{err}"
    );
}

#[test]
fn containerfile_is_found_and_a_missing_context_says_so() {
    let t = TestContext::new("", &[("hello", "hi\n")]);
    std::fs::remove_file(t.context().join("Dockerfile")).unwrap();
    std::fs::write(
        t.context().join("Containerfile"),
        "FROM scratch\nCOPY hello /\n",
    )
    .unwrap();
    t.build(&["-o", &local_output(&t)]);
    assert_eq!(exported(&t, "hello"), "hi\n");
    let out = t.rbuild(&["build", "/nonexistent/context"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("build context /nonexistent/context does not exist"),
        "{err}"
    );
}

#[test]
fn unknown_commands_are_named_not_built() {
    let t = TestContext::new("FROM scratch\n", &[]);
    for (word, needle) in [
        ("imags", "did you mean 'images'?"),
        ("run", "unknown command 'run'"),
    ] {
        let out = t.rbuild(&[word, "x"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn an_http_tarball_or_dockerfile_is_a_context() {
    let t = TestContext::new("FROM scratch\nCOPY f /f\n", &[("f", "remote\n")]);
    let port = serve_bytes(tar_of(&t.context(), true));
    ok(&t.rbuild(&[
        "build",
        "-o",
        &local_output(&t),
        &format!("http://127.0.0.1:{port}/ctx.tar.gz"),
    ]));
    assert_eq!(exported(&t, "f"), "remote\n");
    let port = serve_bytes(b"FROM scratch\nLABEL from=url\n".to_vec());
    let out = t.rbuild(&[
        "build",
        "-t",
        "u:1",
        &format!("http://127.0.0.1:{port}/Dockerfile"),
    ]);
    ok(&out);
    let inspect = t.rbuild(&["inspect", "u:1"]);
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v["config"]["config"]["Labels"]["from"], "url");
}

/// A bare `repo.git` in `t`'s directory, served by `git daemon`: tag `v1` has
/// `app/Dockerfile` (`COPY . /app/`) and `app/version` = `v1`; `main` has `v2`.
pub(crate) fn served_repo(t: &TestContext) -> GitDaemon {
    let script = "git init -q -b main work && cd work && mkdir app \
         && printf 'FROM scratch\\nCOPY . /app/\\n' > app/Dockerfile && echo v1 > app/version \
         && git add . && git -c user.name=t -c user.email=t@t commit -qm one && git tag v1 \
         && echo v2 > app/version && git -c user.name=t -c user.email=t@t commit -qam two \
         && cd .. && git clone -q --bare work repo.git";
    let made = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(t.path(""))
        .status()
        .expect("sh");
    assert!(made.success());
    git_daemon(&t.path(""))
}

#[test]
fn a_git_url_with_a_reference_and_subdirectory_is_a_context() {
    if !have("git") {
        return;
    }
    let t = TestContext::new("", &[]);
    let daemon = served_repo(&t);
    let url = format!("git://127.0.0.1:{}/repo.git#v1:app", daemon.port);
    let out = t.rbuild(&["build", "-o", &local_output(&t), &url]);
    ok(&out);
    assert_eq!(exported(&t, "app/version"), "v1\n");
    assert!(!t.path("out/app/.git").exists(), "no .git in the context");
    let url = format!("git://127.0.0.1:{}/repo.git#nope", daemon.port);
    let out = t.rbuild(&["build", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot fetch the git context"), "{err}");
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn build_arg_files_are_read_and_build_args_win() {
    let t = TestContext::new("FROM scratch\nARG A\nARG B\nLABEL a=$A b=$B\n", &[]);
    let file = t.path("args.conf");
    std::fs::write(&file, "# comment\nA=from-file\nB=from-file\n").unwrap();
    let file = file.to_string_lossy().into_owned();
    t.build(&[
        "-t",
        "a:1",
        "--build-arg-file",
        &file,
        "--build-arg",
        "B=flag",
    ]);
    let inspect = t.rbuild(&["inspect", "a:1"]);
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let labels = &v["config"]["config"]["Labels"];
    assert_eq!(
        (&labels["a"], &labels["b"]),
        (&"from-file".into(), &"flag".into())
    );
}

#[test]
fn an_ignorefile_replaces_the_dockerignore() {
    let t = TestContext::new(
        "FROM scratch\nCOPY . /all/\n",
        &[
            ("a", "a\n"),
            ("b", "b\n"),
            (".dockerignore", "a\n"),
            ("../my.ignore", "b\n"),
        ],
    );
    let ignore = t.path("my.ignore").to_string_lossy().into_owned();
    t.build(&["-o", &local_output(&t), "--ignorefile", &ignore]);
    assert_eq!(
        exported(&t, "all/a"),
        "a\n",
        "the .dockerignore was not used"
    );
    assert!(!t.path("out/all/b").exists(), "the --ignorefile was");
    let ctx = t.context().to_string_lossy().into_owned();
    let out = t.rbuild(&["build", "--ignorefile", "/nonexistent.ignore", &ctx]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("/nonexistent.ignore"), "{err}");
}
