//! `--snapshotter`: the native fallback writes the same layers as overlayfs, shares its
//! store, adds no layer for a step that changes nothing, is what `auto` falls back to
//! where overlayfs cannot be mounted, and cleans up after Ctrl-C.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::{
    busybox, can_mount, have, leaked_mounts, manifest_digest, rbuild_in, umoci_unpack, TestContext,
};

const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "1700000000");

/// Every kind of change a step can make, across stages, as RUN, COPY and WORKDIR.
const STEPS: &str = "FROM base AS other\n\
    RUN mkdir -p /out/sub && echo from-other > /out/sub/file && ln -s file /out/sub/link && chown -R app:app /out\n\
    FROM base\n\
    RUN mkdir -p /d/sub /gone /replaced /keep && echo x > /d/sub/f && echo y > /file && touch /replaced/inner && echo l > /keep/lower\n\
    RUN rm /file && rm -rf /gone && rm -rf /replaced && echo now-a-file > /replaced && rm -rf /d && mkdir /d && echo z > /d/new \
        && chmod 600 /keep/lower && echo a > /keep/a && ln /keep/a /keep/hard && ln -s /keep/a /keep/sym\n\
    COPY ctx-file /copied/\n\
    COPY --chown=app:app ctx-file /owned/\n\
    COPY --from=other /out /from-other\n\
    USER app\n\
    RUN echo mine > /tmp/app-file && mkdir /tmp/app-dir\n\
    RUN true\n\
    WORKDIR /work\n";

/// Builds the context into `store` with `args`; panics with stderr on failure.
fn build_into(t: &TestContext, store: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let ctx = t.context().to_string_lossy().into_owned();
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    all.push(&ctx);
    let out = rbuild_in(store, &all, env);
    assert!(
        out.status.success(),
        "build {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The image `name`'s config from `store`.
fn config(store: &Path, name: &str) -> serde_json::Value {
    let out = rbuild_in(store, &["inspect", name], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    v["config"].clone()
}

fn diff_ids(store: &Path, name: &str) -> Vec<String> {
    config(store, name)["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|d| d.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Builds the context as `TAG:overlay` with overlayfs in a store of its own and as
/// `TAG:native` with the native snapshotter in the test's store; (overlay store, both
/// outputs).
fn build_both(t: &TestContext, tag: &str) -> (std::path::PathBuf, Output, Output) {
    let overlay_store = t.path("store-overlay");
    let (overlay, native) = (format!("{tag}:overlay"), format!("{tag}:native"));
    let a = build_into(
        t,
        &overlay_store,
        &["-t", &overlay, "--snapshotter", "overlayfs"],
        &[EPOCH],
    );
    let b = build_into(
        t,
        &t.root(),
        &["-t", &native, "--snapshotter", "native"],
        &[EPOCH],
    );
    (overlay_store, a, b)
}

#[test]
fn native_writes_the_same_layers_as_overlayfs_and_shares_its_store() {
    let Some(t) = busybox(STEPS, &[("ctx-file", "from the context\n")]) else {
        return;
    };
    if !have("umoci") {
        return;
    }
    let (overlay_store, a, b) = build_both(&t, "s");
    let overlay_ids = diff_ids(&overlay_store, "s:overlay");
    assert_eq!(overlay_ids.len(), 11, "{overlay_ids:?}");
    assert_eq!(diff_ids(&t.root(), "s:native"), overlay_ids);
    assert_eq!(a.stdout, b.stdout, "the same image ID");
    assert_eq!(
        manifest_digest(&overlay_store, "s:overlay"),
        manifest_digest(&t.root(), "s:native"),
        "the same manifest digest"
    );

    // Native on top of snapshots overlayfs made (the env variable selects it).
    let c = build_into(
        &t,
        &overlay_store,
        &["-t", "s:shared"],
        &[EPOCH, ("RBUILD_SNAPSHOTTER", "native")],
    );
    assert_eq!(diff_ids(&overlay_store, "s:shared"), overlay_ids);
    assert_eq!(a.stdout, c.stdout, "the same image ID");
    assert_eq!(
        manifest_digest(&overlay_store, "s:overlay"),
        manifest_digest(&overlay_store, "s:shared")
    );

    let rootfs = umoci_unpack(&t, "s:native");
    assert!(!rootfs.join("file").exists() && !rootfs.join("gone").exists());
    assert_eq!(
        std::fs::read_to_string(rootfs.join("replaced")).unwrap(),
        "now-a-file\n"
    );
    let d: Vec<_> = std::fs::read_dir(rootfs.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(d, ["new"], "rm -rf d && mkdir d");
    let meta = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap();
    assert_eq!(meta("keep/lower").mode() & 0o777, 0o600);
    assert_eq!(meta("keep/a").ino(), meta("keep/hard").ino(), "hardlink");
    assert!(meta("keep/sym").file_type().is_symlink());
    assert_eq!(
        (meta("tmp/app-file").uid(), meta("tmp/app-file").gid()),
        (1000, 1000)
    );
    assert_eq!(meta("owned/ctx-file").uid(), 1000);
    assert_eq!(meta("from-other/sub/file").uid(), 1000);
    assert_eq!(meta("work").uid(), 1000, "WORKDIR as USER app");
    assert!(leaked_mounts(&t.root()).is_empty() && leaked_mounts(&overlay_store).is_empty());
}

#[test]
fn a_run_that_changes_nothing_adds_no_layer_under_native() {
    let Some(t) = busybox(
        "FROM base\nRUN true\nRUN cat /etc/passwd > /dev/null\n",
        &[],
    ) else {
        return;
    };
    build_into(
        &t,
        &t.root(),
        &["-t", "n:1", "--snapshotter", "native"],
        &[],
    );
    let cfg = config(&t.root(), "n:1");
    let history = cfg["history"].as_array().expect("history");
    let runs: Vec<_> = history.iter().rev().take(2).collect();
    for h in runs {
        assert_eq!(h["empty_layer"], true, "{h}");
    }
}

#[test]
fn auto_falls_back_to_native_where_overlayfs_cannot_be_mounted() {
    if !can_mount() || !have("setpriv") {
        return;
    }
    let t = TestContext::new(
        "FROM scratch\nCOPY a /a\nCOPY b /dir/b\nCOPY a /dir/a\n",
        &[("a", "a\n"), ("b", "b\n")],
    );
    let overlay_store = t.path("store-overlay");
    let a = build_into(
        &t,
        &overlay_store,
        &["--snapshotter", "overlayfs"],
        &[EPOCH],
    );
    // Root without CAP_SYS_ADMIN, as in an unprivileged container: mounts are refused.
    let ctx = t.context().to_string_lossy().into_owned();
    let out = Command::new("setpriv")
        .args([
            "--bounding-set",
            "-sys_admin",
            "--inh-caps",
            "-sys_admin",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress", "plain", &ctx])
        .env(EPOCH.0, EPOCH.1)
        .output()
        .expect("setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("warning: cannot mount overlayfs").count(),
        1,
        "{stderr}"
    );
    assert_eq!(a.stdout, out.stdout, "the same image ID");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        manifest_digest(&overlay_store, &id),
        manifest_digest(&t.root(), &id),
        "the same manifest digest"
    );
}

#[test]
fn ctrl_c_under_native_leaves_no_temp_dirs() {
    if !can_mount() {
        return;
    }
    let t = TestContext::new("FROM scratch\nCOPY . /data/\nCOPY . /again/\n", &[]);
    t.fill(20, 250);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress", "plain", "--snapshotter", "native"])
        .arg(t.context())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt as the second step starts: while its root is being copied.
    let stderr = child.stderr.take().expect("piped stderr");
    let started = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .any(|line| line.starts_with("#0.2 "));
    assert!(started, "the second step starts");
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    eprintln!("rbuild ended with {status:?}");
    assert!(
        matches!(status.code(), Some(130) | Some(0)),
        "interrupted or finished: {status:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(t.root().join("tmp"))
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

/// A COPY into directories it creates writes below them straight into the overlay's
/// upperdir; with two sources over the same new tree the second still wins, and the
/// layer is byte for byte the native snapshotter's.
#[test]
fn copies_into_new_directories_give_native_layers_and_the_last_source_wins() {
    let df = "FROM base\nCOPY a/ b/ /dst/\nCOPY a/ /dst/again/\nRUN cat /dst/x/y/f /dst/x/only-a /dst/x/only-b /dst/again/x/y/f > /seen\n";
    let files = [
        ("a/x/y/f", "from a\n"),
        ("a/x/only-a", "a\n"),
        ("b/x/y/f", "from b\n"),
        ("b/x/only-b", "b\n"),
    ];
    let Some(t) = busybox(df, &files) else {
        return;
    };
    if !have("umoci") {
        return;
    }
    let (overlay_store, a, b) = build_both(&t, "c");
    assert_eq!(
        diff_ids(&overlay_store, "c:overlay"),
        diff_ids(&t.root(), "c:native")
    );
    assert_eq!(a.stdout, b.stdout, "the same image ID");
    let rootfs = umoci_unpack(&t, "c:native");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("seen")).unwrap(),
        "from b\na\nb\nfrom a\n"
    );
    assert!(leaked_mounts(&overlay_store).is_empty());
}
