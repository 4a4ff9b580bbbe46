//! Independent stages build at the same time: proved without timing (two stages that
//! wait for each other through a shared cache mount finish only if they overlap),
//! bounded by `--jobs`, stopped by the first failure, and the image does not depend on
//! the interleaving.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use crate::support::busybox;
use crate::support::{leaked_mounts, leftover_work_files, rbuild_in, TestContext};

/// Stages `a` and `b` (both on `base`) each leave a mark in a shared cache mount and
/// wait for the other's, up to `WAIT` seconds: together they finish only if they run
/// at the same time.
const RENDEZVOUS: &str = "\
FROM base AS a
ARG WAIT=120
RUN --mount=type=cache,id=rendezvous,target=/c,sharing=shared touch /c/a && i=0 && \
    while [ ! -e /c/b ]; do i=$((i+1)); if [ $i -gt $WAIT ]; then echo \"a: no b after ${WAIT}s\"; exit 3; fi; sleep 1; done && \
    echo a met b && echo a > /a
FROM base AS b
ARG WAIT=120
RUN --mount=type=cache,id=rendezvous,target=/c,sharing=shared touch /c/b && i=0 && \
    while [ ! -e /c/a ]; do i=$((i+1)); if [ $i -gt $WAIT ]; then echo \"b: no a after ${WAIT}s\"; exit 3; fi; sleep 1; done && \
    echo b met a && echo b > /b
FROM base
COPY --from=a /a /a
COPY --from=b /b /b
";

/// `rbuild build --progress plain ARGS <context>` into store `store` of `t`.
fn build_in(t: &TestContext, store: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let ctx = t.context().to_string_lossy().into_owned();
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    all.push(&ctx);
    rbuild_in(&t.path(store), &all, env)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_clean(t: &TestContext, store: &str) {
    let root = t.path(store);
    assert!(leaked_mounts(&root).is_empty(), "no mounts left behind");
    let left = leftover_work_files(&root);
    assert!(left.is_empty(), "work directories emptied: {left:?}");
}

#[test]
fn independent_stages_run_at_the_same_time() {
    let Some(t) = busybox(RENDEZVOUS, &[]) else {
        return;
    };
    // RBUILD_JOBS rather than --jobs: the environment variable works too.
    let out = build_in(&t, "store", &[], &[("RBUILD_JOBS", "2")]);
    let log = stderr(&out);
    assert!(out.status.success(), "the stages met:\n{log}");
    // Output lines of parallel steps say which stage and step they come from.
    assert!(log.contains("#1.2 [a 3/3] a met b"), "{log}");
    assert!(log.contains("#2.2 [b 3/3] b met a"), "{log}");
    assert_clean(&t, "store");
}

/// The final stage's first RUN and the builder's RUN wait for each other: the build
/// finishes only if the final stage starts before the builder is done, as BuildKit
/// runs a stage's steps up to the first that reads another stage.
const READER: &str = "\
FROM base AS builder
ARG WAIT=120
RUN --mount=type=cache,id=rendezvous,target=/c,sharing=shared touch /c/builder && i=0 && \
    while [ ! -e /c/final ]; do i=$((i+1)); if [ $i -gt $WAIT ]; then echo \"builder: no final after ${WAIT}s\"; exit 3; fi; sleep 1; done && \
    echo built > /built
FROM base
ARG WAIT=120
RUN --mount=type=cache,id=rendezvous,target=/c,sharing=shared touch /c/final && i=0 && \
    while [ ! -e /c/builder ]; do i=$((i+1)); if [ $i -gt $WAIT ]; then echo \"final: no builder after ${WAIT}s\"; exit 3; fi; sleep 1; done && \
    echo final met builder
COPY --from=builder /built /built
RUN cat /built
";

#[test]
fn a_stage_runs_its_steps_up_to_the_one_that_reads_another_stage() {
    let Some(t) = busybox(READER, &[]) else {
        return;
    };
    let out = build_in(&t, "store", &["--jobs", "2"], &[]);
    let log = stderr(&out);
    assert!(out.status.success(), "the stages met:\n{log}");
    assert!(log.contains("final met builder"), "{log}");
    assert!(
        log.contains("] built"),
        "the COPY --from waited for the builder:\n{log}"
    );
    assert_clean(&t, "store");
    // With one job the stages run one after the other: the builder waits in vain.
    let out = build_in(&t, "one", &["--jobs", "1", "--build-arg", "WAIT=2"], &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("builder: no final after 2s"), "{log}");
    assert_clean(&t, "one");
}

#[test]
fn one_job_builds_one_stage_at_a_time() {
    let Some(t) = busybox(RENDEZVOUS, &[]) else {
        return;
    };
    // One at a time, in the plan's order: `a` waits for `b` in vain and gives up.
    let out = build_in(&t, "store", &["--jobs", "1", "--build-arg", "WAIT=2"], &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "a plain failure:\n{log}");
    assert!(log.contains("a: no b after 2s"), "{log}");
    assert!(log.contains("exit code: 3"), "{log}");
    assert!(!log.contains("#2.2 "), "b never started:\n{log}");
    assert_clean(&t, "store");
}

#[test]
fn a_failing_stage_stops_the_build_with_its_own_error() {
    // `bad` fails while `slow` is in its first RUN (it waits for `bad` to be failing):
    // `slow`'s running step is stopped at once (CANCELED) and its second never starts.
    let Some(t) = busybox(
        "FROM base AS slow\n\
         RUN --mount=type=cache,id=fail,target=/c,sharing=shared i=0; \
         while [ ! -e /c/failing ]; do i=$((i+1)); [ $i -gt 120 ] && exit 4; sleep 1; done; sleep 5\n\
         RUN echo never-runs > /never\n\
         FROM base AS bad\n\
         RUN --mount=type=cache,id=fail,target=/c,sharing=shared touch /c/failing && exit 7\n\
         FROM base\n\
         COPY --from=slow /never /never\n\
         COPY --from=bad /bin /bin\n",
        &[],
    ) else {
        return;
    };
    let out = build_in(&t, "store", &["--jobs", "2"], &[]);
    let log = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "failed, not interrupted:\n{log}"
    );
    assert!(
        log.contains("exit code: 7"),
        "the failing stage's error:\n{log}"
    );
    assert!(log.contains("Dockerfile:10"), "with its line:\n{log}");
    assert!(!log.contains("interrupted"), "{log}");
    assert!(
        log.contains("#1.1 CANCELED") && !log.contains("#1.1 DONE"),
        "the running step was stopped:\n{log}"
    );
    assert!(
        !log.contains("never-runs"),
        "no step starts after the failure:\n{log}"
    );
    assert_clean(&t, "store");
}

#[test]
fn a_stage_the_target_does_not_need_is_not_built() {
    let Some(t) = busybox(
        "FROM base AS unused\nRUN echo unused-ran && exit 9\n\
         FROM base AS used\nRUN echo used > /used\n\
         FROM scratch\nCOPY --from=used /used /used\n",
        &[],
    ) else {
        return;
    };
    let out = build_in(&t, "store", &["--jobs", "4"], &[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("unused-ran"), "{log}");
    assert!(log.contains("[used 2/2] RUN echo used"), "{log}");
}

#[test]
fn the_image_does_not_depend_on_the_number_of_jobs() {
    let Some(t) = busybox(
        "FROM base AS a\nRUN echo a > /a && mkdir -p /d && echo 1 > /d/one\n\
         FROM base AS b\nRUN echo b > /b\nWORKDIR /w\nRUN echo w > w\n\
         FROM scratch AS c\nCOPY Dockerfile /c\n\
         FROM base\nCOPY --from=a /a /d /from-a/\nCOPY --from=b /b /w /from-b/\n\
         COPY --from=c /c /c\nRUN cat /from-a/a /from-b/b > /ab\n",
        &[],
    ) else {
        return;
    };
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    let digest = |store: &str, args: &[&str]| {
        let out = build_in(&t, store, args, &env);
        assert!(out.status.success(), "{}", stderr(&out));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        crate::support::manifest_digest(&t.path(store), &id)
    };
    let one = digest("store-1", &["--jobs", "1"]);
    let default = digest("store-default", &[]);
    let three = digest("store-3", &["--jobs", "3"]);
    assert!(one.starts_with("sha256:"), "{one}");
    assert_eq!(one, default, "--jobs 1 and the default give the same image");
    assert_eq!(one, three, "--jobs 1 and --jobs 3 give the same image");
}

#[test]
fn ctrl_c_stops_parallel_stages_and_cleans_up() {
    let Some(t) = busybox(
        "FROM base AS a\nRUN sleep 4\nRUN echo never-a\n\
         FROM base AS b\nRUN sleep 4\nRUN echo never-b\n\
         FROM base\nCOPY --from=a /bin/sh /a\nCOPY --from=b /bin/sh /b\n",
        &[],
    ) else {
        return;
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(t.path("store"))
        .args(["build", "--progress", "plain", "--jobs", "2"])
        .arg(t.context())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rbuild");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    // Interrupt once both sleeps run (a signal to rbuild alone: the sleeps go on, and
    // the stages stop at their next step).
    let (mut a, mut b) = (false, false);
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        a |= line.starts_with("#1.1 [a 2/3] RUN sleep");
        b |= line.starts_with("#2.1 [b 2/3] RUN sleep");
        log.push_str(&line);
        log.push('\n');
        if a && b {
            break;
        }
    }
    assert!(a && b, "both stages started:\n{log}");
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    for line in lines {
        log.push_str(&line.expect("stderr line"));
        log.push('\n');
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "interrupted:\n{log}");
    assert!(
        !log.contains("[a 3/3] RUN") && !log.contains("[b 3/3] RUN"),
        "no step starts after Ctrl-C:\n{log}"
    );
    assert_clean(&t, "store");
}

/// Stages `s0`..`s{stages-1}` (and `bad`, which fails, when `failing`), all on `base`,
/// each opening the new cache mount `race-{round}` in its first step and leaving a mark
/// in it.
fn one_new_cache(round: usize, stages: usize, failing: bool) -> String {
    let mount = format!("RUN --mount=type=cache,id=race-{round},target=/c,sharing=shared");
    let mut out = String::new();
    for i in 0..stages {
        out.push_str(&format!(
            "FROM base AS s{i}\n{mount} touch /c/r{round}s{i} && echo {i} > /s{i}\n"
        ));
    }
    if failing {
        out.push_str(&format!(
            "FROM base AS bad\n{mount} touch /c/bad && exit 7\n"
        ));
    }
    out.push_str("FROM base\n");
    for i in 0..stages {
        out.push_str(&format!("COPY --from=s{i} /s{i} /s{i}\n"));
    }
    if failing {
        out.push_str("COPY --from=bad /bin /bin\n");
    }
    out
}

#[test]
fn parallel_stages_opening_one_new_cache_mount_share_it() {
    // Every round opens a cache no build made before, from all stages at once; every
    // other round one stage fails and cancels the rest. A failure must be the failing
    // stage's own, never a stage that could not mount the cache, and when all succeed
    // their marks are in one cache directory.
    const STAGES: usize = 4;
    const ROUNDS: usize = 8;
    let Some(t) = busybox("", &[]) else {
        return;
    };
    let prelude = std::fs::read_to_string(t.context().join("Dockerfile")).unwrap();
    let jobs = (STAGES + 1).to_string();
    let mounts = t.path("store").join("cache/mounts");
    for round in 0..ROUNDS {
        let failing = round % 2 == 1;
        let dockerfile = format!("{prelude}{}", one_new_cache(round, STAGES, failing));
        std::fs::write(t.context().join("Dockerfile"), dockerfile).unwrap();
        let out = build_in(&t, "store", &["--jobs", &jobs], &[]);
        let log = stderr(&out);
        assert!(
            !log.contains("sandbox setup failed") && !log.contains("No such file"),
            "round {round}: a stage could not mount the cache:\n{log}"
        );
        if failing {
            assert_eq!(out.status.code(), Some(1), "round {round}:\n{log}");
            assert!(log.contains("exit code: 7"), "round {round}:\n{log}");
            continue;
        }
        assert!(out.status.success(), "round {round}:\n{log}");
        let shared = std::fs::read_dir(&mounts).unwrap().any(|e| {
            let dir = e.unwrap().path();
            (0..STAGES).all(|i| dir.join(format!("r{round}s{i}")).exists())
        });
        assert!(
            shared,
            "round {round}: every stage wrote into the one cache"
        );
    }
    assert_clean(&t, "store");
}
