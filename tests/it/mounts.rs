//! `RUN --mount` end to end: bind (context, stage, rw, read-only below their top),
//! cache seeded from a stage, mounts under the native snapshotter, and the build-wide
//! `--network`. Secret and ssh mounts are in `secrets.rs`.

use std::path::Path;

use crate::support::{busybox, leaked_mounts, read, TestContext};

fn local(t: &TestContext, args: &[&str]) -> std::path::PathBuf {
    let out = t.path("out");
    let _ = std::fs::remove_dir_all(&out);
    let dest = format!("type=local,dest={}", out.display());
    let mut all = args.to_vec();
    all.extend(["-o", &dest]);
    t.build(&all);
    out
}

#[test]
fn bind_mounts_see_the_filtered_context_and_stages_and_leave_nothing() {
    let Some(t) = busybox(
        "FROM base AS data\nRUN mkdir /data && echo from-stage > /data/x\n\
         FROM base\n\
         RUN --mount=type=bind,source=src,target=/src cat /src/a.txt > /a && ls -a /src > /ls && \
         ! touch /src/z 2>/dev/null\n\
         RUN --mount=type=bind,source=src,target=/src,rw echo changed > /src/a.txt && touch /src/new && cat /src/a.txt > /rw\n\
         RUN --mount=type=bind,source=src,target=/src cat /src/a.txt > /after && test ! -e /src/new\n\
         RUN --mount=type=bind,source=../../..,target=/ctx ls /ctx > /ctx-ls\n\
         WORKDIR /w\n\
         RUN --mount=from=data,source=/data,target=m cat m/x > /from-stage\n\
         RUN --mount=type=bind,source=src/a.txt,target=/one.txt,rw echo more >> /one.txt && cat /one.txt > /one\n",
        &[
            ("src/a.txt", "context-a\n"),
            ("src/secret.key", "excluded\n"),
            (".dockerignore", "**/*.key\n"),
        ],
    ) else {
        return;
    };
    let out = local(&t, &[]);
    assert_eq!(read(&out, "a"), "context-a\n");
    assert_eq!(read(&out, "ls"), ".\n..\na.txt\n", ".dockerignore applies");
    assert_eq!(read(&out, "rw"), "changed\n");
    assert_eq!(
        read(&out, "after"),
        "context-a\n",
        "rw writes are discarded"
    );
    assert_eq!(read(&out, "from-stage"), "from-stage\n");
    assert_eq!(read(&out, "one"), "context-a\nmore\n");
    let ctx_ls = read(&out, "ctx-ls");
    assert!(
        ctx_ls.contains("Dockerfile") && !ctx_ls.contains("proc"),
        "a source above the context is the context root: {ctx_ls}"
    );
    for gone in ["src", "ctx", "w/m", "one.txt"] {
        assert!(
            !out.join(gone).exists(),
            "mount point {gone} left in the image"
        );
    }
    assert_eq!(
        read(&t.context(), "src/a.txt"),
        "context-a\n",
        "the context is untouched"
    );
    assert!(leaked_mounts(&t.root()).is_empty());
}

#[test]
fn a_missing_bind_source_names_the_line() {
    let Some(t) = busybox(
        "FROM base\nRUN --mount=type=bind,source=nope,target=/n true\n",
        &[],
    ) else {
        return;
    };
    let err = t.build_fails(&[]);
    assert!(err.contains("Dockerfile:7"), "{err}");
    assert!(
        err.contains("\"nope\" not found in the build context"),
        "{err}"
    );
}

#[test]
fn cache_mounts_are_seeded_from_a_stage_and_kept() {
    let Some(t) = busybox(
        "FROM base AS seed\nRUN mkdir /s && echo seeded > /s/f\n\
         FROM base\n\
         RUN --mount=type=cache,target=/c,from=seed,source=/s cat /c/f > /seen && echo more > /c/g\n\
         RUN --mount=type=cache,target=/c,from=seed,source=/s cat /c/g > /seen2\n\
         RUN --mount=type=cache,target=/c cat /c/f > /plain 2>&1 || echo empty > /plain\n",
        &[],
    ) else {
        return;
    };
    let out = local(&t, &[]);
    assert_eq!(read(&out, "seen"), "seeded\n");
    assert_eq!(read(&out, "seen2"), "more\n");
    assert_eq!(
        read(&out, "plain"),
        "empty\n",
        "a cache without from= is another cache"
    );
    assert!(!out.join("c").exists());
}

#[test]
fn no_cache_starts_cache_mounts_empty_and_what_it_writes_stays() {
    // What Docker 20.10's BuildKit does, run side by side: N=1 sees nothing, N=2 sees
    // f1, N=3 with --no-cache sees nothing, N=4 sees only f3.
    let Some(t) = busybox(
        "FROM base\nARG N\n\
         RUN --mount=type=cache,target=/c,id=probe ls /c > /seen; touch /c/f$N\n",
        &[],
    ) else {
        return;
    };
    let seen = |n: &str, extra: &[&str]| {
        let arg = format!("N={n}");
        let mut args = vec!["--build-arg", arg.as_str()];
        args.extend_from_slice(extra);
        read(&local(&t, &args), "seen")
    };
    assert_eq!(seen("1", &[]), "");
    assert_eq!(seen("2", &[]), "f1\n");
    assert_eq!(seen("3", &["--no-cache"]), "", "--no-cache: an empty cache");
    assert_eq!(
        seen("4", &[]),
        "f3\n",
        "what the --no-cache build wrote stays"
    );
    let mounts = t.root().join("cache/mounts");
    let stale: Vec<_> = std::fs::read_dir(&mounts)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("stale-"))
        .collect();
    assert!(
        stale.is_empty(),
        "the replaced cache was removed: {stale:?}"
    );
}

#[test]
fn build_wide_network_none_applies_to_every_run_unless_it_says() {
    let Some(t) = busybox(
        "FROM base\nRUN cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort > /none\n\
         RUN --network=host cat /proc/net/dev | tail -n +3 | wc -l > /host\n",
        &[],
    ) else {
        return;
    };
    let out = local(&t, &["--network", "none", "--allow", "network.host"]);
    assert_eq!(read(&out, "none"), "lo\n");
    let host_ifaces: usize = read(&out, "host").trim().parse().unwrap();
    let ours = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .count()
        - 2;
    assert_eq!(
        host_ifaces, ours,
        "RUN --network=host overrides the build's none"
    );
}

#[test]
fn mounts_work_under_the_native_snapshotter() {
    let Some(t) = busybox(
        "FROM base AS data\nRUN mkdir /data && echo from-stage > /data/x\n\
         FROM base\n\
         RUN --mount=from=data,source=/data,target=/m,rw cat /m/x > /from-stage && echo w > /m/x\n\
         RUN --mount=from=data,source=/data,target=/m cat /m/x > /again\n\
         RUN --mount=type=bind,source=src,target=/src,rw touch /src/new && ls /src > /ls\n\
         RUN --mount=type=cache,target=/c,from=data,source=/data cat /c/x > /seeded\n",
        &[("src/a.txt", "a\n")],
    ) else {
        return;
    };
    let out = local(&t, &["--snapshotter", "native"]);
    assert_eq!(read(&out, "from-stage"), "from-stage\n");
    assert_eq!(
        read(&out, "again"),
        "from-stage\n",
        "rw writes are discarded"
    );
    assert_eq!(read(&out, "ls"), "a.txt\nnew\n");
    assert_eq!(read(&out, "seeded"), "from-stage\n");
    assert!(!t.context().join("src/new").exists());
    assert!(leaked_mounts(&t.root()).is_empty());
}

/// A tmpfs mounted on `dir` for the length of a test (lazily unmounted when dropped).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn on(dir: &Path) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        rustix::mount::mount(
            "none",
            dir,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            None::<&std::ffi::CStr>,
        )
        .expect("mount a tmpfs");
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn read_only_binds_are_read_only_nosuid_and_nodev_below_their_top() {
    let Some(t) = busybox(
        "FROM base\nRUN --mount=type=bind,source=sub,target=/m touch /m/inner/x\n",
        &[("sub/top.txt", "top\n")],
    ) else {
        return;
    };
    let _tmpfs = Tmpfs::on(&t.context().join("sub/inner"));
    let err = t.build_fails(&[]);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!t.context().join("sub/inner/x").exists());
    let probe = t.context().join("probe.Dockerfile");
    let dockerfile = std::fs::read_to_string(t.context().join("Dockerfile")).expect("Dockerfile");
    std::fs::write(
        &probe,
        dockerfile.replace("touch /m/inner/x", "cat /proc/self/mountinfo > /mountinfo"),
    )
    .expect("probe Dockerfile");
    let out = local(&t, &["-f", probe.to_str().expect("utf-8")]);
    let mountinfo = read(&out, "mountinfo");
    for mount_point in ["/m", "/m/inner"] {
        let options = mountinfo
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.get(4) == Some(&mount_point))
            .and_then(|f| f.get(5).map(|o| o.to_string()))
            .unwrap_or_else(|| panic!("{mount_point} is not mounted: {mountinfo}"));
        for flag in ["ro", "nosuid", "nodev"] {
            assert!(
                options.split(',').any(|o| o == flag),
                "{mount_point}: {options} lacks {flag}"
            );
        }
    }
    assert!(leaked_mounts(&t.root()).is_empty());
}

#[test]
fn a_relative_context_path_works_with_bind_mounts() {
    let Some(t) = crate::support::busybox(
        "FROM base\nRUN --mount=type=bind,source=x,target=/x cat /x > /seen\n",
        &[("x", "hi\n")],
    ) else {
        return;
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .current_dir(t.context())
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress", "plain", "."])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
