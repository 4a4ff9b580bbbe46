//! Crash safety: a real build killed with SIGKILL at a random moment leaves a store
//! that `rbuild store check` finds without damage, no mounts and no processes; the
//! next build succeeds and gives the image an uninterrupted build gives.
//!
//! Acceptable after a kill (reported as `leftover`, exit status 0): the killed
//! process's work dir under `tmp/` (collected by the next `Store::open`) and a
//! snapshot sidecar whose directory was not renamed in yet (overwritten by the next
//! commit). Anything reported as `damage` fails the test. Blobs, records and
//! snapshots that nothing names yet are normal (garbage collection's business) and
//! not reported at all.
//!
//! `RBUILD_CRASH_ITERATIONS` (default 20) sets the number of kills,
//! `RBUILD_CRASH_SEED` the PRNG seed (printed, to replay a failure);
//! `scripts/crash-loop.sh N` runs it with N iterations.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::integrity::store_check;
use crate::support::{busybox, leaked_mounts, manifest_digest, rbuild_in, TestContext};

/// xorshift64*: small, seedable, good enough to spread kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The build of the test: RUN steps that write files and sleep, a COPY of a context
/// of a few MiB of incompressible data (gzip takes a while), another RUN.
fn dockerfile(marker: &str) -> String {
    format!(
        "FROM base\n\
         RUN : {marker}; for i in 1 2 3 4 5 6; do dd if=/dev/zero of=/f$i bs=64k count=8 2>/dev/null; done; sleep 0.2\n\
         COPY big /big\n\
         RUN : {marker}; sleep 0.2; cat /big/* > /all && mkdir -p /x/y && echo done > /x/y/z\n\
         RUN : {marker}; rm /f1 && rm -rf /big && echo {marker} > /marker\n"
    )
}

/// Processes whose command line contains `marker`.
fn marked_processes(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.filter_map(Result::ok) {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(marker) {
            out.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    out
}

/// Waits (up to 5 s) until no process carries `marker`; what is left.
fn wait_processes_gone(marker: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = marked_processes(marker);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn build_args(t: &TestContext, root: &Path) -> Vec<String> {
    vec![
        "--root".into(),
        root.display().to_string(),
        "build".into(),
        "--progress".into(),
        "plain".into(),
        "-t".into(),
        "crash:1".into(),
        t.context().display().to_string(),
    ]
}

/// A full build into `root`; its manifest digest.
fn full_build(t: &TestContext, root: &Path) -> String {
    let args = build_args(t, root);
    let args: Vec<&str> = args[2..].iter().map(String::as_str).collect();
    let out = rbuild_in(root, &args, &[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert!(
        out.status.success(),
        "build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    manifest_digest(root, String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn crash_sigkill_at_random_moments_leaves_a_consistent_store() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let marker = format!("crashmark{}x{:x}", std::process::id(), nanos & 0xffff_ffff);
    let Some(t) = busybox(&dockerfile(&marker), &[]) else {
        return;
    };
    let big = t.context().join("big");
    std::fs::create_dir_all(&big).unwrap();
    let mut data_rng = Rng(nanos | 1);
    for i in 0..24 {
        let bytes: Vec<u8> = (0..256 * 1024 / 8)
            .flat_map(|_| data_rng.next().to_le_bytes())
            .collect();
        std::fs::write(big.join(format!("f{i}")), bytes).unwrap();
    }
    let iterations = env_u64("RBUILD_CRASH_ITERATIONS").unwrap_or(20);
    let seed = env_u64("RBUILD_CRASH_SEED").unwrap_or(nanos) | 1;
    eprintln!("crash: {iterations} iterations, seed {seed} (RBUILD_CRASH_SEED={seed} replays)");
    let mut rng = Rng(seed);

    // Two uninterrupted builds in fresh stores: the image, and (the faster of the two,
    // the first one warms the page cache) how long a build takes, the kill window.
    let started = Instant::now();
    let reference = full_build(&t, &t.path("reference"));
    let first_ms = started.elapsed().as_millis() as u64;
    let second = Instant::now();
    assert_eq!(
        full_build(&t, &t.path("reference-2")),
        reference,
        "reproducible"
    );
    let expected_ms = first_ms.min(second.elapsed().as_millis() as u64);
    eprintln!("crash: uninterrupted build {expected_ms} ms, image {reference}");

    let (mut killed, mut finished, mut leftovers, mut repaired) = (0, 0, 0, 0);
    let mut phases = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..iterations {
        let root = t.path(&format!("store-{i}"));
        let delay = rng.below(expected_ms * 11 / 10);
        let log = t.path(&format!("build-{i}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
            .args(build_args(&t, &root))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn rbuild");
        std::thread::sleep(Duration::from_millis(delay));
        let done_before = child.try_wait().ok().flatten().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if done_before {
            finished += 1;
        } else {
            killed += 1;
            *phases.entry(phase(&log)).or_insert(0) += 1;
        }
        let left = wait_processes_gone(&marker);
        assert!(
            left.is_empty(),
            "iteration {i} (kill at {delay} ms): processes left: {left:?}"
        );
        let mounts = leaked_mounts(&root);
        assert!(mounts.is_empty(), "iteration {i}: mounts left: {mounts:?}");

        let (ok, report) = store_check(&root, &[]);
        assert!(
            ok,
            "iteration {i} (kill at {delay} ms, seed {seed}): damage:\n{report}"
        );
        if !report.contains(": clean") {
            leftovers += report.lines().filter(|l| l.starts_with("leftover")).count();
            let (ok, after) = store_check(&root, &["--repair"]);
            assert!(
                ok && after.contains("after repair: clean"),
                "iteration {i}:\n{after}"
            );
            repaired += 1;
        }
        let digest = full_build(&t, &root);
        assert_eq!(
            digest, reference,
            "iteration {i} (kill at {delay} ms, seed {seed})"
        );
        let (ok, report) = store_check(&root, &[]);
        assert!(
            ok && report.contains(": clean"),
            "iteration {i} after rebuild:\n{report}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
    eprintln!(
        "crash: {iterations} iterations in {:.1} s: {killed} killed mid-build, {finished} \
         finished before the kill, {repaired} stores with leftovers ({leftovers} leftovers, \
         all repaired), 0 damaged, same image every time",
        started.elapsed().as_secs_f64()
    );
    eprintln!("crash: killed during (last step line seen -> kills): {phases:?}");
}

/// The step a killed build was in: its last `#S.N <what>` progress line (`start`
/// before any; `export` after the last step finished).
fn phase(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let Some(last) = text.lines().rev().find(|l| l.starts_with('#')) else {
        return "start".to_owned();
    };
    let mut words = last.split_whitespace();
    let id = words.next().unwrap_or("?");
    match words.next() {
        Some("DONE") | Some("CACHED") if id == "#1.4" => "export".to_owned(),
        Some("DONE") | Some("CACHED") => format!("{id} done"),
        _ => format!("{id} running"),
    }
}
