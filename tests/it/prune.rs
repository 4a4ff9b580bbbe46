//! `rbuild du` and `rbuild prune`, end to end: exact sizes (against `du -sB1`), named
//! images kept buildable and exportable, the cache still hitting where records survive,
//! `--all`, `--keep-storage`, `--filter until=`, and the `--max-store-size` cap.

use std::path::Path;
use std::process::Command;

use crate::support::{can_mount, have, rbuild_in, run_ok, TestContext};

const DOCKERFILE: &str = "FROM scratch\nCOPY a.bin /a.bin\nCOPY b.bin /b.bin\n";

/// Bytes that gzip cannot shrink much (a xorshift stream), `n` of them.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn context() -> Option<TestContext> {
    if !can_mount() {
        return None;
    }
    let t = TestContext::new(DOCKERFILE, &[]);
    write_inputs(&t, 1);
    Some(t)
}

/// Rewrites the context's files from `seed` (a different seed: every step misses).
fn write_inputs(t: &TestContext, seed: u64) {
    std::fs::write(t.context().join("a.bin"), noise(seed, 200_000)).unwrap();
    std::fs::write(t.context().join("b.bin"), noise(seed + 1000, 100_000)).unwrap();
}

/// Builds; returns (image ID, whether each step was CACHED).
fn build(t: &TestContext, args: &[&str]) -> (String, Vec<bool>) {
    let ctx = t.context().to_string_lossy().into_owned();
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    all.push(&ctx);
    let out = rbuild_in(&t.root(), &all, &[("SOURCE_DATE_EPOCH", "1700000000")]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build failed:\n{log}");
    let mut hits = Vec::new();
    for line in log.lines() {
        match line.split_once(' ') {
            // Not the stages' `FROM`s (step 0), which are never cached.
            Some((id, _)) if id.ends_with(".0") => {}
            Some((id, "CACHED")) if id.starts_with('#') => hits.push(true),
            Some((id, rest)) if id.starts_with('#') && rest.starts_with("DONE") => hits.push(false),
            _ => {}
        }
    }
    (String::from_utf8_lossy(&out.stdout).trim().to_owned(), hits)
}

/// `rbuild du --format json`.
fn du_json(t: &TestContext) -> serde_json::Value {
    serde_json::from_str(&run_ok(&t.root(), &["du", "--format", "json", "--verbose"], &[]).0)
        .unwrap()
}

/// `du -sB1 <store>`: block usage in bytes.
fn du_sb1(root: &Path) -> u64 {
    let out = Command::new("du").arg("-sB1").arg(root).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// `rbuild prune ARGS --force`; returns (stdout, reclaimed bytes).
fn prune(t: &TestContext, args: &[&str]) -> (String, u64) {
    let mut all = vec!["prune", "--force"];
    all.extend_from_slice(args);
    let (out, _) = run_ok(&t.root(), &all, &[]);
    let bytes = out
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .and_then(|l| l.split_once(" (")?.1.strip_suffix(" bytes)")?.parse().ok())
        .unwrap_or_else(|| panic!("no total in {out}"));
    (out, bytes)
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn du_total_is_du_sb1_and_prune_reclaims_exactly() {
    let Some(t) = context() else { return };
    build(&t, &["-t", "p:1"]);
    write_inputs(&t, 2);
    build(&t, &[]); // unnamed: its manifest and config are dangling blobs
    let report = du_json(&t);
    let total = report["total"].as_u64().unwrap();
    assert_eq!(total, du_sb1(&t.root()), "{report:#}");
    assert_eq!(report["images"]["count"], 1);
    assert_eq!(report["blobs"]["unreferenced"]["count"], 2, "{report:#}");
    assert_eq!(report["kinds"]["cache record"]["count"], 4);
    let kinds: u64 = report["kinds"]
        .as_object()
        .unwrap()
        .values()
        .map(|k| k["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(kinds + report["other"].as_u64().unwrap(), total);

    let before = du_sb1(&t.root());
    let (out, reclaimed) = prune(&t, &[]);
    assert_eq!(before - du_sb1(&t.root()), reclaimed, "{out}");
    assert_eq!(du_json(&t)["total"].as_u64().unwrap(), du_sb1(&t.root()));
    assert!(out.contains("blob "), "{out}");
    assert!(!out.contains("cache-record "), "records are kept:\n{out}");
}

#[test]
fn default_prune_keeps_images_exportable_and_the_cache_hitting() {
    let Some(t) = context() else { return };
    let (first, _) = build(&t, &["-t", "p:1"]);
    write_inputs(&t, 3);
    build(&t, &["-t", "p:2"]);
    run_ok(&t.root(), &["rmi", "p:2"], &[]);
    prune(&t, &[]);
    // p:2's blobs stay: its records still refer to them. p:1 hits entirely.
    write_inputs(&t, 1);
    let tar = t.path("p1.tar");
    let dest = format!("type=oci,dest={}", tar.display());
    let (again, hits) = build(&t, &["-t", "p:1", "-o", &dest]);
    assert_eq!(again, first);
    assert_eq!(hits, [true, true]);
    if have("skopeo") {
        let out = Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", tar.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    write_inputs(&t, 3);
    assert_eq!(build(&t, &[]).1, [true, true], "p:2's records survived");
}

#[test]
fn prune_all_then_rebuild_misses_and_gives_the_same_image() {
    let Some(t) = context() else { return };
    let (first, _) = build(&t, &["-t", "p:1"]);
    let (out, _) = prune(&t, &["--all"]);
    assert!(out.contains("cache-record "), "{out}");
    assert_eq!(count(&t.root().join("cache/records")), 0);
    assert_eq!(count(&t.root().join("snapshots")), 0, "sidecars go too");
    let check = t.rbuild(&["store", "check"]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && !report.contains("leftover"),
        "{report}"
    );
    let (again, hits) = build(&t, &["-t", "p:1"]);
    assert_eq!(hits, [false, false]);
    assert_eq!(again, first);
}

#[test]
fn keep_storage_shrinks_the_store_below_the_size() {
    let Some(t) = context() else { return };
    for seed in [10, 20, 30] {
        write_inputs(&t, seed);
        build(&t, &[]);
    }
    let before = du_sb1(&t.root());
    let limit = before / 2;
    prune(&t, &["--keep-storage", &limit.to_string()]);
    let after = du_sb1(&t.root());
    assert!(after <= limit, "{after} > {limit} (was {before})");
    // The most recent build's records are the ones kept.
    assert_eq!(build(&t, &[]).1, [true, true]);
}

#[test]
fn max_store_size_is_enforced_after_a_build() {
    let Some(t) = context() else { return };
    for seed in [40, 50] {
        write_inputs(&t, seed);
        build(&t, &[]);
    }
    let cap = du_sb1(&t.root()) / 2;
    write_inputs(&t, 60);
    let (built, _) = build(&t, &["-t", "p:60", "--max-store-size", &cap.to_string()]);
    assert!(du_sb1(&t.root()) <= cap);
    let (inspect, _) = run_ok(&t.root(), &["inspect", "p:60"], &[]);
    assert!(inspect.contains(&built), "{inspect}");
    // From the store's config.json as well, never removing the image just built.
    std::fs::write(
        t.root().join("config.json"),
        format!("{{\"maxStoreSize\": \"{}\"}}", cap / 4),
    )
    .unwrap();
    write_inputs(&t, 70);
    let (unnamed, _) = build(&t, &[]);
    let (out, _) = run_ok(&t.root(), &["inspect", &unnamed], &[]);
    assert!(out.contains("\"config\""), "{out}");
}

#[test]
fn filter_until_keeps_recent_cache() {
    let Some(t) = context() else { return };
    build(&t, &["-t", "p:1"]);
    let (out, _) = prune(&t, &["--all", "--filter", "until=1h"]);
    assert!(!out.contains("cache-record "), "{out}");
    assert_eq!(build(&t, &["-t", "p:1"]).1, [true, true]);
    let bad = t.rbuild(&["prune", "--force", "--filter", "until=soon"]);
    assert!(!bad.status.success());
}

#[test]
fn rmi_then_prune_all_leaves_an_empty_layout() {
    let Some(t) = context() else { return };
    build(&t, &["-t", "p:1"]);
    run_ok(&t.root(), &["rmi", "p:1"], &[]);
    prune(&t, &["--all"]);
    let root = t.root();
    for dir in [
        "blobs/sha256",
        "snapshots",
        "cache/records",
        "cache/builds",
        "cache/stat",
    ] {
        assert_eq!(count(&root.join(dir)), 0, "{dir}");
    }
    let report = du_json(&t);
    assert_eq!(
        report["total"].as_u64().unwrap(),
        report["other"].as_u64().unwrap()
    );
}

/// Holds `locks/gc.lock` shared, as a running build does.
fn hold_as_a_build(root: &Path) -> std::fs::File {
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(root.join("locks/gc.lock"))
        .unwrap();
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared).unwrap();
    file
}

#[test]
fn prune_waits_for_running_builds_and_the_cap_leaves_it_to_later() {
    let Some(t) = context() else { return };
    build(&t, &[]);
    let before = du_sb1(&t.root());
    let build_lock = hold_as_a_build(&t.root());
    // The cap needs the lock exclusively: with a build running it prunes nothing.
    write_inputs(&t, 5);
    let ctx = t.context().to_string_lossy().into_owned();
    let out = t.rbuild(&[
        "build",
        "--progress",
        "plain",
        "--max-store-size",
        "1",
        &ctx,
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("left to a later build"), "{stderr}");
    assert!(du_sb1(&t.root()) > before);
    // A prune waits until the build is over.
    let mut prune = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["prune", "--all", "--force"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(prune.try_wait().unwrap().is_none(), "prune did not wait");
    assert_eq!(count(&t.root().join("cache/records")), 4);
    drop(build_lock);
    let out = prune.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waiting for them to finish"), "{stderr}");
    assert_eq!(count(&t.root().join("cache/records")), 0);
}
