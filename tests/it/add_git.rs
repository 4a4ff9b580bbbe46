//! `ADD <git URL> <dest>` against repositories served by a local `git daemon` (and one
//! over plain HTTP): refs, subdirectories, `.git` kept or not, `--checksum`, owners,
//! modes and mtimes, the cache (the commit keys the step: a hit never clones, a new
//! commit misses and says so), hostile symlinks, errors, and credentials never shown.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Output;

use crate::support::{
    assert_nowhere_in, can_mount, git_daemon, git_script, have, rbuild_in, serve_dir, GitDaemon,
    TestContext,
};

/// The commit time of the fixture's commits (`git_script`).
const COMMIT_TIME: i64 = 981_173_106;

/// A store, a context and a git daemon serving `repo.git`: commit `c1` (annotated tag
/// `v1`: `docs/a` = 1, `tool.sh` 0755, `link` -> `docs/a`, `escape` -> `/etc/passwd`)
/// and `c2` on `main` (`docs/a` = 2).
struct Fixture {
    t: TestContext,
    daemon: GitDaemon,
    c1: String,
    c2: String,
}

fn fixture() -> Option<Fixture> {
    if !can_mount() || !have("git") {
        return None;
    }
    let t = TestContext::new("", &[]);
    git_script(
        &t.path(""),
        "git init -q -b main work && cd work && mkdir docs && echo 1 > docs/a \
         && echo run > tool.sh && chmod 755 tool.sh && ln -s docs/a link \
         && ln -s /etc/passwd escape && git add . && git commit -qm one \
         && git tag -a v1 -m v1 && echo 2 > docs/a && git commit -qam two \
         && cd .. && git clone -q --bare work repo.git",
    );
    let c1 = git_script(&t.path("work"), "git rev-parse 'v1^{commit}'");
    let c2 = git_script(&t.path("work"), "git rev-parse main");
    let daemon = git_daemon(&t.path(""));
    Some(Fixture { t, daemon, c1, c2 })
}

impl Fixture {
    /// Writes the Dockerfile, `REPO` standing for the daemon's base URL.
    fn dockerfile(&self, text: &str) {
        let base = format!("git://127.0.0.1:{}", self.daemon.port);
        std::fs::write(
            self.t.context().join("Dockerfile"),
            text.replace("REPO", &base),
        )
        .unwrap();
    }

    /// Builds with `args` (exported to `<test>/<out>` when `out` is given).
    fn build(&self, out: Option<&str>, args: &[&str]) -> Output {
        let ctx = self.t.context().to_string_lossy().into_owned();
        let dest = out.map(|o| format!("type=local,dest={}", self.t.path(o).display()));
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        if let Some(dest) = &dest {
            all.extend(["-o", dest]);
        }
        all.push(&ctx);
        rbuild_in(&self.t.root(), &all, &[])
    }

    /// Builds into `<test>/<out>`; must succeed. The progress log.
    fn build_ok(&self, out: &str) -> String {
        let built = self.build(Some(out), &["--progress", "plain"]);
        let log = String::from_utf8_lossy(&built.stderr).into_owned();
        assert!(built.status.success(), "build failed:\n{log}");
        log
    }

    /// A build that must fail: its standard error.
    fn build_err(&self) -> String {
        let built = self.build(None, &["--progress", "plain"]);
        let log = String::from_utf8_lossy(&built.stderr).into_owned();
        assert!(!built.status.success(), "build succeeded:\n{log}");
        log
    }

    fn out(&self, rel: &str) -> PathBuf {
        self.t.path(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.out(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Runs `script` in the working copy and pushes `main` to `repo.git`.
    fn push(&self, script: &str) -> String {
        git_script(
            &self.t.path("work"),
            &format!("{script} && git push -q ../repo.git main && git rev-parse main"),
        )
    }
}

#[test]
fn branches_tags_commits_and_subdirectories_are_added() {
    let Some(f) = fixture() else { return };
    let c1 = &f.c1;
    f.dockerfile(&format!(
        "FROM scratch\n\
         ADD REPO/repo.git /default\n\
         ADD REPO/repo.git#v1 /tag/\n\
         ADD REPO/repo.git#{c1} /commit\n\
         ADD REPO/repo.git?branch=main&subdir=docs /sub\n\
         ADD REPO/repo.git#v1:docs /fragment-sub\n"
    ));
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    f.build_ok("out");
    assert_eq!(f.read("out/default/docs/a"), "2\n");
    assert_eq!(f.read("out/tag/docs/a"), "1\n");
    assert_eq!(f.read("out/commit/docs/a"), "1\n");
    assert_eq!(f.read("out/sub/a"), "2\n");
    assert_eq!(f.read("out/fragment-sub/a"), "1\n");
    assert!(
        !f.out("out/sub/docs").exists(),
        "the subdirectory's contents"
    );
    for dir in ["default", "tag", "commit"] {
        assert!(
            !f.out(&format!("out/{dir}/.git")).exists(),
            "{dir}: no .git"
        );
    }
    let tool = std::fs::metadata(f.out("out/tag/tool.sh")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o777, 0o755);
    let a = std::fs::metadata(f.out("out/tag/docs/a")).unwrap();
    assert_eq!((a.uid(), a.gid()), (0, 0));
    assert!(a.mtime() >= started - 2, "checkout time, as BuildKit");
    let link = std::fs::read_link(f.out("out/tag/escape")).unwrap();
    assert_eq!(
        link,
        PathBuf::from("/etc/passwd"),
        "links are copied as links"
    );
}

#[test]
fn keep_git_dir_owner_mode_and_commit_mtime() {
    let Some(f) = fixture() else { return };
    f.dockerfile(
        "FROM scratch\n\
         ADD --keep-git-dir=true REPO/repo.git#main /kept\n\
         ADD REPO/repo.git?keep-git-dir=true&mtime=commit#v1 /dated\n\
         ADD --chown=1000:1000 --chmod=640 --exclude=*.sh REPO/repo.git#v1 /owned\n",
    );
    f.build_ok("out");
    let head = git_script(&f.out("out/kept"), "git rev-parse HEAD refs/heads/main");
    assert_eq!(head, format!("{0}\n{0}", f.c2));
    assert!(f.out("out/dated/.git").is_dir());
    let dated = std::fs::metadata(f.out("out/dated/docs/a")).unwrap();
    assert_eq!(dated.mtime(), COMMIT_TIME);
    let owned = std::fs::metadata(f.out("out/owned/docs/a")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
    assert_eq!(owned.permissions().mode() & 0o777, 0o640);
    assert!(!f.out("out/owned/tool.sh").exists(), "--exclude applies");
    assert!(!f.out("out/owned/.git").exists());
}

#[test]
fn checksums_must_match_the_commit() {
    let Some(f) = fixture() else { return };
    let (c1, c2) = (&f.c1, &f.c2);
    let short = &c1[..10];
    f.dockerfile(&format!(
        "FROM scratch\n\
         ADD --checksum={c2} REPO/repo.git#main /a\n\
         ADD REPO/repo.git?checksum={short}&tag=v1 /b\n"
    ));
    f.build_ok("out");
    assert_eq!(f.read("out/a/docs/a"), "2\n");
    assert_eq!(f.read("out/b/docs/a"), "1\n");
    f.dockerfile(&format!(
        "FROM scratch\nADD --checksum={c1} REPO/repo.git#main /a\n"
    ));
    let err = f.build_err();
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(
        err.contains(c1.as_str()) && err.contains(c2.as_str()),
        "{err}"
    );
    f.dockerfile(&format!(
        "FROM scratch\nADD --checksum={c1} REPO/repo.git?checksum={c2} /a\n"
    ));
    let err = f.build_err();
    assert!(err.contains("checksum mismatch"), "{err}");
}

/// The `step_cached`/`step_started` events of the ADD step in a JSON progress log.
fn add_events(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["id"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("ADD"))
        })
        .filter_map(|v| v["event"].as_str().map(str::to_owned))
        .filter(|e| e == "step_cached" || e == "step_started")
        .collect()
}

#[test]
fn the_commit_keys_the_step_a_hit_never_clones_and_a_new_commit_misses() {
    let Some(f) = fixture() else { return };
    f.dockerfile("FROM scratch\nADD REPO/repo.git#main /src\n");
    let json = |out: &str| {
        let built = f.build(Some(out), &["--progress", "json"]);
        let log = String::from_utf8_lossy(&built.stderr).into_owned();
        assert!(built.status.success(), "{log}");
        add_events(&log)
    };
    assert_eq!(json("out1"), ["step_started"]);
    assert_eq!(json("out2"), ["step_cached"], "same commit: no clone");
    let c3 = f.push("echo 3 > docs/a && git commit -qam three");
    let explain = f.build(None, &["--explain"]);
    let report = String::from_utf8_lossy(&explain.stdout);
    let reason = format!("moved: commit {} -> {c3}", f.c2);
    assert!(report.contains(&reason), "{report}");
    assert_eq!(json("out3"), ["step_started"], "a new commit misses");
    assert_eq!(f.read("out3/src/docs/a"), "3\n");
    assert_eq!(json("out4"), ["step_cached"]);
}

#[test]
fn symlinks_of_a_hostile_repository_lead_nowhere_outside_the_root() {
    let Some(f) = fixture() else { return };
    let victim = f.t.path("victim");
    std::fs::create_dir(&victim).unwrap();
    git_script(
        &f.t.path(""),
        &format!(
            "git init -q -b main evilwork && cd evilwork && ln -s {} out \
             && ln -s ../../.. up && git add . && git commit -qm evil \
             && cd .. && git clone -q --bare evilwork evil.git",
            victim.display()
        ),
    );
    f.dockerfile(
        "FROM scratch\n\
         ADD REPO/evil.git /\n\
         ADD REPO/repo.git#main /out/\n\
         ADD REPO/repo.git#main /up/x/\n",
    );
    f.build_ok("out");
    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        0,
        "nothing outside"
    );
    let inside = f.out("out").join(victim.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read_to_string(inside.join("docs/a")).unwrap(),
        "2\n"
    );
    assert_eq!(f.read("out/x/docs/a"), "2\n", "`..` stops at the root");
    f.dockerfile("FROM scratch\nADD REPO/evil.git#main:out /s\n");
    let err = f.build_err();
    assert!(
        err.contains("`out` is not a directory of the repository"),
        "{err}"
    );
}

#[test]
fn unknown_refs_unreachable_remotes_and_a_missing_git_are_clear_errors() {
    let Some(f) = fixture() else { return };
    f.dockerfile("FROM scratch\nCOPY a /a\nADD REPO/repo.git#nope /x\n");
    std::fs::write(f.t.context().join("a"), "a").unwrap();
    let err = f.build_err();
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(
        err.contains(r#"no branch, tag or other ref named "nope""#),
        "{err}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    std::fs::write(
        f.t.context().join("Dockerfile"),
        format!("FROM scratch\nADD http://user:s3cret@127.0.0.1:{closed}/r.git /x\n"),
    )
    .unwrap();
    let err = f.build_err();
    assert!(
        err.contains("Dockerfile:2") && err.contains("ls-remote"),
        "{err}"
    );
    assert!(
        err.contains("user:xxxxx@") && !err.contains("s3cret"),
        "{err}"
    );
    f.dockerfile("FROM scratch\nADD REPO/repo.git /x\n");
    let ctx = f.t.context().to_string_lossy().into_owned();
    let out = rbuild_in(&f.t.root(), &["build", &ctx], &[("PATH", "/nonexistent")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("install git") && err.contains("Dockerfile:2"),
        "{err}"
    );
    f.dockerfile("FROM scratch\nCOPY REPO/repo.git /x\n");
    assert!(f.build_err().contains("source can't be a git ref for COPY"));
}

#[test]
fn credentials_stay_out_of_progress_history_keys_and_git_dir() {
    let Some(f) = fixture() else { return };
    git_script(&f.t.path("repo.git"), "git update-server-info");
    let port = serve_dir(f.t.path(""));
    std::fs::write(
        f.t.context().join("Dockerfile"),
        format!(
            "FROM scratch\nADD http://user:s3cret@127.0.0.1:{port}/repo.git?keep-git-dir=true#v1 /src\n"
        ),
    )
    .unwrap();
    let log = f.build_ok("out");
    assert_eq!(
        f.read("out/src/docs/a"),
        "1\n",
        "over the dumb HTTP protocol"
    );
    assert!(
        log.contains("user:xxxxx@") && !log.contains("s3cret"),
        "{log}"
    );
    let config = f.read("out/src/.git/config");
    assert!(!config.contains("s3cret"), "{config}");
    let built = f.build(None, &["-t", "cred:1"]);
    assert!(built.status.success());
    let history = rbuild_in(&f.t.root(), &["history", "--no-trunc", "cred:1"], &[]);
    let history = String::from_utf8_lossy(&history.stdout);
    let expected = format!(
        "ADD http://user:xxxxx@127.0.0.1:{port}/repo.git?keep-git-dir=true#v1 /src # buildkit"
    );
    assert!(history.contains(&expected), "{history}");
    assert_nowhere_in(&f.t.root(), "s3cret");
}

#[test]
fn submodules_are_fetched_unless_the_url_says_not_to() {
    let Some(f) = fixture() else { return };
    git_script(
        &f.t.path(""),
        "git init -q -b main subwork && cd subwork && echo s > s.txt && git add . \
         && git commit -qm s && cd .. && git clone -q --bare subwork sub.git \
         && git init -q -b main superwork && cd superwork \
         && git -c protocol.file.allow=always submodule add -q ../sub.git sub \
         && git commit -qm super && cd .. && git clone -q --bare superwork super.git",
    );
    f.dockerfile(
        "FROM scratch\n\
         ADD REPO/super.git /with\n\
         ADD REPO/super.git?submodules=false /without\n",
    );
    f.build_ok("out");
    assert_eq!(
        f.read("out/with/sub/s.txt"),
        "s\n",
        "as BuildKit: submodules too"
    );
    let without = std::fs::read_dir(f.out("out/without/sub")).unwrap().count();
    assert_eq!(without, 0, "an empty directory where the submodule goes");
}
