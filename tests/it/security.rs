//! Hostile input that must not reach the host (issue 12): the store is private to its
//! owner, a context file swapped during a build is never followed, a Dockerfile that
//! is a symlink out of the context is refused.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::support::{assert_nowhere_in, busybox, have, rbuild_in, TestContext};

#[test]
fn the_store_is_private_to_its_owner() {
    let Some(t) = busybox(
        "FROM base\nRUN cp /bin/busybox /bin/suidbox && chmod 4755 /bin/suidbox\n",
        &[],
    ) else {
        return;
    };
    // An older store made 0755 is tightened too.
    std::fs::create_dir_all(t.root()).unwrap();
    std::fs::set_permissions(t.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    t.build(&["-t", "suid:1"]);
    let mode = std::fs::metadata(t.root()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    if !have("setpriv") {
        return;
    }
    // An ordinary user can neither list the store nor run the setuid binary in it.
    let root = t.root();
    let suid = std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("bin/suidbox"))
        .find(|p| p.is_file())
        .expect("the setuid copy in a snapshot");
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = as_nobody(&[suid.to_str().unwrap(), "id", "-u"]);
    assert!(!out.status.success(), "nobody ran {}", suid.display());
    let out = as_nobody(&["ls", root.join("snapshots").to_str().unwrap()]);
    assert!(!out.status.success(), "nobody listed the snapshots");
}

#[test]
fn a_context_file_swapped_for_a_symlink_during_the_build_is_not_followed() {
    let Some(t) = busybox(
        "FROM base\nCOPY a /a\nRUN sleep 2\nCOPY b /b\n",
        &[("a", "a\n"), ("b", "b\n")],
    ) else {
        return;
    };
    let host_file = t.path("host-secret");
    std::fs::write(&host_file, "host secret\n").unwrap();
    let ctx = t.context();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress", "plain", "-t", "swap:1"])
        .arg(&ctx)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut swapped = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if !swapped && line.contains("RUN sleep 2") {
            std::fs::remove_file(ctx.join("b")).unwrap();
            std::os::unix::fs::symlink(&host_file, ctx.join("b")).unwrap();
            swapped = true;
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(swapped, "{log}");
    assert!(!status.success(), "the build used the swapped file:\n{log}");
    assert!(log.contains("changed during the build"), "{log}");
    assert!(log.contains("ctx/b"), "{log}");
    // The host file's bytes are nowhere in the store.
    assert_nowhere_in(&t.root(), "host secret");
}

#[test]
fn a_dockerfile_that_is_a_symlink_out_of_the_context_is_refused() {
    let t = TestContext::new("", &[]);
    let outside = t.path("outside.Dockerfile");
    std::fs::write(&outside, "FROM secret-first-line-of-a-host-file\n").unwrap();
    let df = t.context().join("Dockerfile");
    std::fs::remove_file(&df).unwrap();
    std::os::unix::fs::symlink(&outside, &df).unwrap();
    let out = rbuild_in(&t.root(), &["build", t.context().to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("symlink out of the context"), "{err}");
    assert!(!err.contains("secret-first-line"), "{err}");
    // Named explicitly with -f, the file is the user's choice and is read.
    let out = rbuild_in(
        &t.root(),
        &[
            "build",
            "-f",
            df.to_str().unwrap(),
            t.context().to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("secret-first-line"), "{err}");
    // A symlink inside the context is fine.
    std::fs::remove_file(&df).unwrap();
    std::fs::write(t.context().join("real.Dockerfile"), "FROM scratch\n").unwrap();
    std::os::unix::fs::symlink("real.Dockerfile", &df).unwrap();
    let out = rbuild_in(&t.root(), &["build", t.context().to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bind_mount_source_linking_out_of_the_context_is_refused_and_named() {
    let Some(t) = busybox(
        "FROM base\nRUN --mount=type=bind,source=link,target=/m cat /m/x\n",
        &[],
    ) else {
        return;
    };
    let outside = t.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("x"), "host file\n").unwrap();
    std::os::unix::fs::symlink(&outside, t.context().join("link")).unwrap();
    let err = t.build_fails(&[]);
    assert!(
        err.contains("mount source \"link\" leads out of the build context"),
        "{err}"
    );
    assert!(
        !err.contains("COPY source") && !err.contains("host file"),
        "{err}"
    );
}
