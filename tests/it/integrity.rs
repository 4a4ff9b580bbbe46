//! Store integrity end to end: damage made on disk between builds is found at use
//! (never silently reused) and by `rbuild store check`, and `--repair` fixes it.

use std::path::{Path, PathBuf};

use crate::support::{build_at_epoch, busybox, manifest_digest, rbuild_in, TestContext};

const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "1700000000");

/// Builds with plain progress and a fixed epoch; returns (manifest digest, log).
fn build(t: &TestContext, args: &[&str]) -> (String, String) {
    let (id, log) = build_at_epoch(t, args, EPOCH.1);
    (manifest_digest(&t.root(), &id), log)
}

/// `rbuild store check ARGS`: (success, stdout).
pub fn store_check(root: &Path, args: &[&str]) -> (bool, String) {
    let mut all = vec!["store", "check"];
    all.extend_from_slice(args);
    let out = rbuild_in(root, &all, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty() || !out.status.success(), "stderr: {err}");
    (out.status.success(), format!("{text}{err}"))
}

/// Flips one byte in the middle of `path` (same size).
pub fn flip_byte(path: &Path) {
    std::thread::sleep(std::time::Duration::from_millis(10));
    let mut bytes = std::fs::read(path).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    std::fs::write(path, bytes).expect("write");
}

/// The digest (hex) of the top layer of image `name`.
fn top_layer(root: &Path, name: &str) -> String {
    let out = rbuild_in(root, &["inspect", name], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect json");
    let layers = v["manifest"]["layers"].as_array().expect("layers");
    let digest = layers.last().expect("a layer")["digest"]
        .as_str()
        .expect("digest");
    digest.trim_start_matches("sha256:").to_owned()
}

/// The snapshot directory holding `rel` (a file only one step made).
fn snapshot_with(root: &Path, rel: &str) -> PathBuf {
    std::fs::read_dir(root.join("snapshots"))
        .expect("snapshots")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join(rel).is_file())
        .expect("a snapshot holding the file")
}

/// `#S.N` step lines of a log that say CACHED.
fn cached_steps(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.ends_with(" CACHED"))
        .map(|l| l.split(' ').next().unwrap_or("").to_owned())
        .collect()
}

const STEPS: &str = "FROM base\nRUN echo data-from-run > /data.txt\nARG N=1\nRUN cat /data.txt > /copy.txt && echo $N > /n.txt\n";

#[test]
fn a_damaged_cached_layer_is_rebuilt_not_reused() {
    let Some(t) = busybox(STEPS, &[]) else {
        return;
    };
    let (first, _) = build(&t, &["-t", "i:1"]);
    let blob = t
        .root()
        .join("blobs/sha256")
        .join(top_layer(&t.root(), "i:1"));
    flip_byte(&blob);
    let (ok, report) = store_check(&t.root(), &[]);
    assert!(
        !ok && report.contains("content does not match its name"),
        "{report}"
    );
    let (again, log) = build(&t, &["-t", "i:1"]);
    let cached = cached_steps(&log);
    assert_eq!(again, first, "the same image, from a rebuilt step:\n{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("#1.3 CACHED")),
        "the damaged step ran:\n{log}"
    );
    assert!(
        cached.iter().any(|s| s == "#1.1"),
        "the steps before it hit:\n{log}"
    );
    let (ok, report) = store_check(&t.root(), &[]);
    assert!(ok, "the rebuild wrote a good blob:\n{report}");
}

#[test]
fn a_damaged_snapshot_is_detected_and_re_made() {
    let Some(t) = busybox(STEPS, &[]) else {
        return;
    };
    build(&t, &["-t", "s:1"]);
    let snap = snapshot_with(&t.root(), "data.txt");
    flip_byte(&snap.join("data.txt"));
    let (ok, report) = store_check(&t.root(), &[]);
    assert!(
        !ok && report.contains("modified since it was made"),
        "{report}"
    );
    // The last RUN misses and runs on the damaged snapshot's chain: re-made first.
    let out = t.path("out");
    let dest = format!("type=local,dest={}", out.display());
    build(&t, &["--build-arg", "N=2", "-o", &dest]);
    assert_eq!(
        std::fs::read_to_string(out.join("copy.txt")).unwrap(),
        "data-from-run\n"
    );
    assert_eq!(
        std::fs::read_to_string(snap.join("data.txt")).unwrap(),
        "data-from-run\n"
    );
    assert!(store_check(&t.root(), &[]).0);
}

#[test]
fn store_check_reports_each_kind_of_damage_and_repair_fixes_it() {
    let Some(t) = busybox(STEPS, &[]) else {
        return;
    };
    let (first, _) = build(&t, &["-t", "r:1"]);
    let root = t.root();
    let (ok, report) = store_check(&root, &[]);
    assert!(ok && report.contains(": clean"), "{report}");

    flip_byte(&root.join("blobs/sha256").join(top_layer(&root, "r:1")));
    flip_byte(&snapshot_with(&root, "data.txt").join("data.txt"));
    let record = std::fs::read_dir(root.join("cache/records"))
        .unwrap()
        .filter_map(Result::ok)
        .next()
        .unwrap()
        .path();
    std::fs::write(&record, b"{\"version\":").unwrap();
    std::fs::create_dir_all(root.join("tmp/w-dead/step-x")).unwrap();
    std::fs::write(root.join("tmp/w-dead.lock"), b"").unwrap();
    std::fs::write(root.join("blobs/sha256/partial"), b"x").unwrap();

    let (ok, report) = store_check(&root, &[]);
    assert!(!ok, "{report}");
    for needle in [
        "damage    blob",
        "damage    image     r:1",
        "damage    snapshot",
        "damage    record",
        "leftover  temp      w-dead",
        "torn or not a record",
        "not a blob",
    ] {
        assert!(report.contains(needle), "missing {needle:?} in:\n{report}");
    }
    let (ok, json) = store_check(&root, &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(!ok && v["ok"] == false && v["findings"].as_array().unwrap().len() >= 6);

    let (ok, repaired) = store_check(&root, &["--repair"]);
    assert!(ok && repaired.contains("after repair: clean"), "{repaired}");
    assert!(store_check(&root, &[]).0);
    let (again, _) = build(&t, &["-t", "r:1"]);
    assert_eq!(again, first, "the image is rebuilt as it was");
    let (ok, report) = store_check(&root, &[]);
    assert!(ok && report.contains(": clean"), "{report}");
}
