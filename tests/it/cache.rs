//! The build cache, end to end: which edits hit and which miss (the correctness
//! matrix), the same image from a rebuild without changes, and misses explained.

use std::collections::BTreeMap;

use crate::support::{build_at_epoch, can_mount, rbuild_in, TestContext};

/// Builds the context; returns (the image ID it prints, progress log).
fn build(t: &TestContext, args: &[&str]) -> (String, String) {
    build_at_epoch(t, args, "1700000000")
}

/// Step number (`#S.N`) -> whether it was CACHED, for the steps the log shows (not
/// the stages' `FROM`s, step 0, which are never cached).
fn cached(log: &str) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for line in log.lines() {
        let Some((id, rest)) = line.split_once(' ') else {
            continue;
        };
        if !id.starts_with('#') || id.ends_with(".0") {
            continue;
        }
        if rest == "CACHED" {
            out.insert(id.to_owned(), true);
        } else if rest.starts_with("DONE") {
            out.insert(id.to_owned(), false);
        }
    }
    out
}

fn hits(log: &str) -> Vec<bool> {
    cached(log).into_values().collect()
}

const DOCKERFILE: &str = "FROM scratch AS other\nCOPY other.txt /\n\
FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nARG LATE=1\nCOPY c.txt /c-$LATE.txt\n";

fn context() -> Option<TestContext> {
    if !can_mount() {
        return None;
    }
    Some(TestContext::new(
        DOCKERFILE,
        &[
            ("a.txt", "a\n"),
            ("b.txt", "b\n"),
            ("c.txt", "c\n"),
            ("other.txt", "o\n"),
            ("ignored.log", "x\n"),
            (".dockerignore", "*.log\n"),
        ],
    ))
}

#[test]
fn the_cache_hits_and_misses_as_it_should() {
    let Some(t) = context() else { return };
    let (first, log) = build(&t, &["-t", "c:1"]);
    assert_eq!(hits(&log), [false, false, false], "{log}");

    let (again, log) = build(&t, &["-t", "c:1"]);
    assert_eq!(hits(&log), [true, true, true], "no change: all hit\n{log}");
    assert_eq!(again, first, "a rebuild without changes is the same image");

    // touch (mtime only): hit.
    let a = t.context().join("a.txt");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let (_, log) = build(&t, &[]);
    assert_eq!(hits(&log), [true, true, true], "touch\n{log}");

    // A file excluded by .dockerignore: hit.
    std::fs::write(t.context().join("ignored.log"), "changed\n").unwrap();
    let (_, log) = build(&t, &[]);
    assert_eq!(hits(&log), [true, true, true], ".dockerignore\n{log}");

    // A stage the target does not need: hit.
    std::fs::write(t.context().join("other.txt"), "changed\n").unwrap();
    let (_, log) = build(&t, &[]);
    assert_eq!(hits(&log), [true, true, true], "unneeded stage\n{log}");

    // A build arg used only in the last step: the earlier ones hit.
    let (_, log) = build(&t, &["--build-arg", "LATE=2"]);
    assert_eq!(hits(&log), [true, true, false], "late ARG\n{log}");
    assert!(log.contains("instruction text changed"), "{log}");

    // Content change: miss from that COPY on, explained.
    std::fs::write(t.context().join("b.txt"), "B\n").unwrap();
    let (_, log) = build(&t, &["--build-arg", "LATE=2"]);
    assert_eq!(hits(&log), [true, false, false], "content\n{log}");
    assert!(log.contains("file b.txt changed (content)"), "{log}");
    assert!(log.contains("parent step missed"), "{log}");

    // chmod: miss.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, log) = build(&t, &["--build-arg", "LATE=2"]);
    assert_eq!(hits(&log), [false, false, false], "chmod\n{log}");
    assert!(log.contains("file a.txt changed (mode)"), "{log}");

    // --no-cache: all miss; the results are still recorded.
    let (_, log) = build(&t, &["--build-arg", "LATE=2", "--no-cache"]);
    assert_eq!(hits(&log), [false, false, false], "--no-cache\n{log}");
    let (_, log) = build(&t, &["--build-arg", "LATE=2"]);
    assert_eq!(hits(&log), [true, true, true], "after --no-cache\n{log}");
}

#[test]
fn a_changed_base_image_misses() {
    let Some(t) = context() else { return };
    std::fs::write(
        t.context().join("Base.Dockerfile"),
        "FROM scratch\nCOPY a.txt /base\n",
    )
    .unwrap();
    std::fs::write(
        t.context().join("App.Dockerfile"),
        "FROM base:1\nCOPY b.txt /b\n",
    )
    .unwrap();
    let file = |name: &str| t.context().join(name).to_string_lossy().into_owned();
    build(&t, &["-f", &file("Base.Dockerfile"), "-t", "base:1"]);
    let (_, log) = build(&t, &["-f", &file("App.Dockerfile")]);
    assert_eq!(hits(&log), [false], "{log}");
    let (_, log) = build(&t, &["-f", &file("App.Dockerfile")]);
    assert_eq!(hits(&log), [true], "{log}");
    std::fs::write(t.context().join("a.txt"), "new base\n").unwrap();
    build(&t, &["-f", &file("Base.Dockerfile"), "-t", "base:1"]);
    let (_, log) = build(&t, &["-f", &file("App.Dockerfile")]);
    assert_eq!(hits(&log), [false], "{log}");
    assert!(log.contains("base image digest changed"), "{log}");
}

#[test]
fn no_cache_filter_reruns_only_that_stage() {
    let Some(t) = context() else { return };
    std::fs::write(
        t.context().join("Dockerfile"),
        "FROM scratch AS deps\nCOPY a.txt /a\nFROM scratch\nCOPY --from=deps /a /a\nCOPY b.txt /b\n",
    )
    .unwrap();
    build(&t, &[]);
    let (_, log) = build(&t, &["--no-cache-filter", "deps"]);
    let map = cached(&log);
    assert_eq!(map.get("#0.1"), Some(&false), "deps reran\n{log}");
    // Same content from deps: the final stage's steps hit again.
    assert_eq!(map.get("#1.1"), Some(&true), "{log}");
    assert_eq!(map.get("#1.2"), Some(&true), "{log}");
}

#[test]
fn explain_reports_without_building() {
    let Some(t) = context() else { return };
    build(&t, &["-t", "e:1"]);
    std::fs::write(t.context().join("b.txt"), "B\n").unwrap();
    let ctx = t.context().to_string_lossy().into_owned();
    let explain = || {
        let out = rbuild_in(
            &t.root(),
            &["build", "--explain", &ctx],
            &[("SOURCE_DATE_EPOCH", "1700000000")],
        );
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = explain();
    let lines: Vec<&str> = report.lines().collect();
    assert!(
        lines[0].starts_with("#1.1 CACHED [stage-1 2/5] COPY a.txt"),
        "{report}"
    );
    assert!(
        lines[1].starts_with("#1.2 MISS   [stage-1 3/5] COPY b.txt"),
        "{report}"
    );
    assert_eq!(
        lines[2].trim(),
        "- file b.txt changed (content)",
        "{report}"
    );
    assert!(report.contains("- parent step missed"), "{report}");
    // Nothing was built or recorded: the same report again, and the build then misses.
    assert_eq!(explain(), report);
    let (_, log) = build(&t, &[]);
    assert_eq!(hits(&log), [true, false, false], "{log}");
}

#[test]
fn two_builds_on_one_store_at_once_both_succeed_and_agree() {
    let Some(t) = context() else { return };
    std::fs::write(
        t.context().join("Other.Dockerfile"),
        "FROM scratch\nCOPY a.txt /a.txt\nCOPY c.txt /other-c\n",
    )
    .unwrap();
    let ctx = t.context().to_string_lossy().into_owned();
    let other = t
        .context()
        .join("Other.Dockerfile")
        .to_string_lossy()
        .into_owned();
    let spawn = |args: Vec<String>| {
        let root = t.root();
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            rbuild_in(&root, &args, &[("SOURCE_DATE_EPOCH", "1700000000")])
        })
    };
    let build_args = |extra: &[&str]| {
        let mut v: Vec<String> = ["build", "--progress", "plain"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v.push(ctx.clone());
        v
    };
    let runs: Vec<_> = vec![
        spawn(build_args(&["-t", "same:1"])),
        spawn(build_args(&["-t", "same:2"])),
        spawn(build_args(&["-f", &other, "-t", "other:1"])),
    ];
    let outs: Vec<_> = runs.into_iter().map(|h| h.join().unwrap()).collect();
    for out in &outs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let digest = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert_eq!(
        digest(&outs[0]),
        digest(&outs[1]),
        "same Dockerfile, same image"
    );
    // Recorded consistently: everything hits now, with the same image.
    let (again, log) = build(&t, &[]);
    assert_eq!(hits(&log), [true, true, true], "{log}");
    assert_eq!(again, digest(&outs[0]));
    let (_, log) = build(&t, &["-f", &other]);
    assert_eq!(hits(&log), [true, true], "{log}");
}

#[test]
fn a_cached_rebuild_is_the_same_image_without_source_date_epoch() {
    // Metadata steps before the first filesystem step once took the time of the
    // rebuild, so the image changed on every rebuild from the cache.
    let Some(t) = context() else { return };
    std::fs::write(
        t.context().join("Dockerfile"),
        "FROM scratch AS base\nCOPY c.txt /\nFROM base\nENV A=1\nLABEL x=y\nCOPY a.txt /\nCMD [\"x\"]\n",
    )
    .unwrap();
    let ctx = t.context().to_string_lossy().into_owned();
    let digest = || {
        let out = rbuild_in(&t.root(), &["build", "--progress", "quiet", &ctx], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let first = digest();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(digest(), first);
}

#[test]
fn add_of_a_url_hits_while_its_content_is_the_same() {
    let Some(t) = context() else { return };
    let body = std::sync::Arc::new(std::sync::Mutex::new("one\n".to_owned()));
    let port = crate::support::serve(body.clone(), None);
    std::fs::write(
        t.context().join("Dockerfile"),
        format!("FROM scratch\nADD http://127.0.0.1:{port}/f.txt /f.txt\nCOPY a.txt /\n"),
    )
    .unwrap();
    build(&t, &[]);
    let (_, log) = build(&t, &[]);
    assert_eq!(hits(&log), [true, true], "{log}");
    *body.lock().unwrap() = "two\n".to_owned();
    let (_, log) = build(&t, &[]);
    assert_eq!(hits(&log), [false, false], "new content at the URL\n{log}");
    let reason = format!("the content at http://127.0.0.1:{port}/f.txt changed");
    assert!(log.contains(&reason), "{log}");
}

/// The context's stat cache file in store `root` (there is one context).
fn stat_cache_file(root: &std::path::Path) -> std::path::PathBuf {
    let dir = root.join("cache/stat");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// Gives the stat cache's record of context file `rel` the stamp (mtime, ctime, inode,
/// device) `meta`, keeping its digest: what a build leaves when the file is rewritten,
/// with the same size, in the timestamp tick in which the build read it.
fn forge_stamp(root: &std::path::Path, rel: &str, meta: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    let file = stat_cache_file(root);
    let mut bytes = std::fs::read(&file).unwrap();
    let mut needle = (rel.len() as u32).to_le_bytes().to_vec();
    needle.extend_from_slice(rel.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the file's record")
        + needle.len();
    // size u64, mtime i64 + u32, ctime i64 + u32, inode u64, device u64, digest.
    assert_eq!(bytes[at..at + 8], meta.size().to_le_bytes(), "same size");
    let mut put = |offset: usize, value: &[u8]| {
        bytes[at + offset..at + offset + value.len()].copy_from_slice(value)
    };
    put(8, &meta.mtime().to_le_bytes());
    put(16, &(meta.mtime_nsec() as u32).to_le_bytes());
    put(20, &meta.ctime().to_le_bytes());
    put(28, &(meta.ctime_nsec() as u32).to_le_bytes());
    put(32, &meta.ino().to_le_bytes());
    put(40, &meta.dev().to_le_bytes());
    std::fs::write(&file, bytes).unwrap();
}

#[test]
fn a_file_rewritten_in_the_tick_a_build_read_it_misses() {
    // Where timestamps are coarse (kernels without multigrain timestamps, jiffy-granular
    // ext4: most CI runners), a file rewritten with the same size within the tick in
    // which a build read it keeps its whole stamp. Here the rewrite restores the mtime
    // (nanoseconds included) and, since user space cannot set a ctime back, the stat
    // cache is given the file's new ctime instead: the same state. The record is not
    // older than the build that made it, so it must not be trusted.
    use std::os::unix::fs::MetadataExt;
    let Some(t) = context() else { return };
    let (_, log) = build(&t, &[]);
    assert_eq!(hits(&log), [false, false, false], "{log}");
    let a = t.context().join("a.txt");
    let old = std::fs::symlink_metadata(&a).unwrap();
    std::fs::write(&a, "A\n").unwrap();
    let stamp = format!("@{}.{:09}", old.mtime(), old.mtime_nsec());
    let touched = std::process::Command::new("touch")
        .args(["-m", "-d", &stamp])
        .arg(&a)
        .status()
        .unwrap();
    assert!(touched.success());
    let new = std::fs::symlink_metadata(&a).unwrap();
    assert_eq!(new.modified().unwrap(), old.modified().unwrap());
    assert_eq!(new.size(), old.size());
    forge_stamp(&t.root(), "a.txt", &new);

    let out = t.path("out");
    let dest = format!("type=local,dest={}", out.display());
    let (_, log) = build(&t, &["-o", &dest]);
    assert_eq!(
        hits(&log),
        [false, false, false],
        "COPY a.txt misses:\n{log}"
    );
    assert!(log.contains("file a.txt changed (content)"), "{log}");
    assert_eq!(std::fs::read_to_string(out.join("a.txt")).unwrap(), "A\n");
}
