//! Rootless: the real binary run by an ordinary user (`rbuild-test`, with subordinate
//! ids; `rbuild-nosub` without), through `setpriv`, with HOME and the store in a
//! temporary directory the user owns. `scripts/test.sh` creates both users; without
//! them the tests skip loudly (and fail in CI).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{have, manifest_digest, processes_with, rbuild_in, umoci_unpack_from};

/// The user with subordinate ids.
const USER: &str = "rbuild-test";
/// The user without.
const NOSUB_USER: &str = "rbuild-nosub";

/// A user's ids, if the user exists; a loud skip (a failure in CI) otherwise.
fn user(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let found = rustix::process::geteuid().is_root() && have("setpriv");
    match (found, id("-u"), id("-g")) {
        (true, Some(uid), Some(gid)) => Some((uid, gid)),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and scripts/test.sh creates the user {name}"
            );
            eprintln!(
                "\n*** SKIPPING rootless test: needs root, setpriv and the user {name} \
                 (scripts/test.sh creates it) ***\n"
            );
            None
        }
    }
}

/// A temporary home of a user: HOME, the store (`$XDG_DATA_HOME/rbuild`), contexts.
struct Home {
    dir: tempfile::TempDir,
    ids: (u32, u32),
}

impl Home {
    fn new(name: &str) -> Option<Home> {
        let ids = user(name)?;
        let home = Home {
            dir: tempfile::tempdir().expect("temp dir"),
            ids,
        };
        for sub in ["home", "data"] {
            std::fs::create_dir(home.path(sub)).expect("mkdir");
        }
        home.give(home.dir.path());
        Some(home)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The user's default store.
    fn store(&self) -> PathBuf {
        self.path("data/rbuild")
    }

    /// Makes `path` and everything below it the user's.
    fn give(&self, path: &Path) {
        let owner = format!("{}:{}", self.ids.0, self.ids.1);
        let ok = Command::new("chown")
            .args(["-R", &owner])
            .arg(path)
            .status()
            .expect("chown");
        assert!(ok.success());
    }

    /// A context `name` with `files` and busybox, the user's.
    fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let ctx = self.path(name);
        std::fs::create_dir_all(&ctx).expect("context");
        for (rel, content) in files {
            std::fs::write(ctx.join(rel), content).expect("file");
        }
        std::fs::copy("/bin/busybox", ctx.join("busybox")).expect("busybox");
        self.give(&ctx);
        ctx
    }

    /// `rbuild ARGS` as the user, with this HOME and store, and `env`.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.ids.0))
            .arg(format!("--regid={}", self.ids.1))
            .args(["--init-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_rbuild"))
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env_remove("RBUILD_ROOT")
            .env_remove("DOCKER_CONFIG")
            .env_remove("XDG_RUNTIME_DIR")
            .envs(env.iter().copied());
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().expect("setpriv rbuild")
    }

    /// Runs `args`; it must succeed: (stdout trimmed, stderr).
    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
        let out = self.run(args, env);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "rootless rbuild {args:?} failed:\n{stderr}"
        );
        (
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            stderr,
        )
    }

    /// Runs `args`; it must fail: stderr.
    fn fails(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(!out.status.success(), "rootless rbuild {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// A busybox base with an `app` user (1000), then `rest`.
fn busybox_dockerfile(rest: &str) -> String {
    format!(
        "FROM scratch AS base\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         RUN mkdir -p /etc /tmp && chmod 1777 /tmp && \
         echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && \
         echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> /etc/passwd && \
         printf 'root:x:0:\\napp:x:1000:\\n' > /etc/group\n{rest}"
    )
}

#[test]
fn rootless_readme_example_gives_the_root_builds_digest() {
    let Some(home) = Home::new(USER) else { return };
    let ctx = home.context("app", &[]);
    let copy = Command::new("cp")
        .args(["-r", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/app/.")])
        .arg(&ctx)
        .status()
        .expect("cp");
    assert!(copy.success());
    home.give(&ctx);
    let ctx = ctx.to_string_lossy().into_owned();
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    let args = ["build", "--progress", "plain", "-t", "app:1", &ctx];
    let (_, said) = home.ok(&args, &env);
    assert!(
        !said.contains("warning"),
        "overlay in the namespace: {said}"
    );
    let root_store = home.path("root-store");
    let out = rbuild_in(&root_store, &args, &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (rootless, _) = home.ok(&["inspect", "--format", "{{.Digest}}", "app:1"], &[]);
    assert!(rootless.starts_with("sha256:"), "{rootless}");
    assert_eq!(rootless, manifest_digest(&root_store, "app:1"));
    // The store is the user's, under $XDG_DATA_HOME, with the user's files.
    assert_eq!(std::fs::metadata(home.store()).unwrap().uid(), home.ids.0);
}

#[test]
fn rootless_copy_chown_and_user_files_have_their_owners() {
    if !have("umoci") {
        return;
    }
    let Some(home) = Home::new(USER) else { return };
    let rest =
        "COPY --chown=1000:1000 f.txt /f.txt\nRUN mkdir -p /home/app && chown app:app /home/app\n\
                USER app\nRUN touch /home/app/made && id -u > /home/app/id\n";
    let ctx = home.context(
        "ctx",
        &[("Dockerfile", &busybox_dockerfile(rest)), ("f.txt", "f")],
    );
    let ctx = ctx.to_string_lossy().into_owned();
    home.ok(
        &[
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "-t",
            "own:1",
            &ctx,
        ],
        &[],
    );
    // Unpacked as root by an independent reader: the owners are the image's.
    let rootfs = umoci_unpack_from(&home.store(), "own:1", &home.path("bundle"));
    let owner = |rel: &str| {
        let m = std::fs::symlink_metadata(rootfs.join(rel)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("f.txt"), (1000, 1000));
    assert_eq!(owner("home/app"), (1000, 1000));
    assert_eq!(owner("home/app/made"), (1000, 1000));
    assert_eq!(owner("bin/busybox"), (0, 0));
    let id = std::fs::read_to_string(rootfs.join("home/app/id")).unwrap();
    assert_eq!(id.trim(), "1000");
}

#[test]
fn rootless_run_has_a_cache_mount_a_secret_and_no_network() {
    let Some(home) = Home::new(USER) else { return };
    let rest =
        "ARG N\nRUN --mount=type=cache,target=/c --mount=type=secret,id=tok,target=/run/tok \
                --network=none cat /run/tok > /got && echo x >> /c/n && wc -l < /c/n > /count \
                && ls /sys/class/net > /nets && id -u > /uid && echo $N \
                && grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status > /status\n";
    let ctx = home.context("ctx", &[("Dockerfile", &busybox_dockerfile(rest))]);
    std::fs::write(home.path("tok"), "s3cret").unwrap();
    home.give(&home.path("tok"));
    let ctx = ctx.to_string_lossy().into_owned();
    for (run, out) in [(1, "out1"), (2, "out2")] {
        let dest = format!("type=local,dest={}", home.path(out).display());
        // A new build argument makes the step run again, with the same cache mount.
        let n = format!("N={run}");
        let args = [
            "build",
            "--progress",
            "plain",
            "--build-arg",
            &n,
            "--secret",
            "id=tok,src=tok",
            "-o",
            &dest,
            &ctx,
        ];
        home.ok(&args, &[]);
        let read = |rel: &str| std::fs::read_to_string(home.path(out).join(rel)).unwrap();
        assert_eq!(read("got"), "s3cret");
        assert_eq!(
            read("count").trim(),
            run.to_string(),
            "the cache mount persists"
        );
        assert_eq!(
            read("nets").trim(),
            "lo",
            "only loopback with --network=none"
        );
        assert_eq!(read("uid").trim(), "0");
        assert!(
            !home.path(out).join("run/tok").exists(),
            "the secret is not in the image"
        );
        // The root build's sandbox: Docker's 14 capabilities, no_new_privs, seccomp.
        let status = read("status");
        for line in ["NoNewPrivs:\t1", "Seccomp:\t2", "CapEff:\t00000000a80425fb"] {
            assert!(status.contains(line), "{line} in {status}");
        }
    }
}

#[test]
fn rootless_push_uses_basic_auth_from_the_users_config_json() {
    use base64::Engine;
    if !crate::registry::available(&["skopeo"]) {
        return;
    }
    let Some(home) = Home::new(USER) else { return };
    let reg = crate::registry::Registry::basic("alice", "s3cret-pass");
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret-pass");
    let docker = home.path("home/.docker");
    std::fs::create_dir_all(&docker).unwrap();
    let config = serde_json::json!({"auths": {reg.host(): {"auth": auth}}});
    std::fs::write(docker.join("config.json"), config.to_string()).unwrap();
    home.give(&home.path("home"));
    let ctx = home.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", "x")],
    );
    let ctx = ctx.to_string_lossy().into_owned();
    home.ok(&["build", "--progress", "plain", "-t", "app:1", &ctx], &[]);
    let dest = format!("{}/team/app:1", reg.host());
    let (digest, _) = home.ok(&["push", "app:1", &dest], &[]);
    let raw = crate::pushpull::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret-pass",
        &format!("docker://{dest}"),
    ]);
    assert_eq!(crate::pushpull::sha256_of(raw.as_bytes()), digest);
    // The other commands work on the user's store too.
    let (images, _) = home.ok(&["images"], &[]);
    assert!(images.contains("app"), "{images}");
    home.ok(&["du"], &[]);
    home.ok(&["store", "check"], &[]);
    home.ok(&["prune", "--all", "--force"], &[]);
    // logout and login rewrite the user's config.json; pull reads it.
    home.ok(&["logout", reg.host()], &[]);
    assert!(home.fails(&["pull", &dest], &[]).contains("rbuild login"));
    let mut login = home.command(
        &["login", "-u", "alice", "--password-stdin", reg.host()],
        &[],
    );
    let out = login
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(b"s3cret-pass\n")?;
            child.wait_with_output()
        })
        .expect("login");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = docker.join("config.json");
    assert_eq!(std::fs::metadata(&config).unwrap().uid(), home.ids.0);
    home.ok(&["rmi", "app:1"], &[]);
    let (pulled, _) = home.ok(&["pull", &dest], &[]);
    assert!(pulled.contains(&digest), "{pulled}");
}

/// Mount table lines of any process that mention `path`.
fn mounts_anywhere(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("mountinfo")).ok())
        .flat_map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|l| l.contains(&needle))
        .collect()
}

/// Polls `done` every 20 ms until it holds or `secs` pass; whether it held.
fn within(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn rootless_build_killed_with_sigkill_leaves_no_process_or_mount() {
    let Some(home) = Home::new(USER) else { return };
    let marker = format!("rootless-kill-{}", std::process::id());
    // Not `echo M && sleep 60`: the shell would exec the last command, marker gone.
    let rest = format!("RUN sleep 60 && echo {marker}\n");
    let ctx = home.context("ctx", &[("Dockerfile", &busybox_dockerfile(&rest))]);
    let ctx = ctx.to_string_lossy().into_owned();
    let mut child = home
        .command(
            &["build", "--progress", "plain", "--network", "none", &ctx],
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // The step's shell carries the marker in its command line.
    let running = within(60, || !processes_with(&marker).is_empty());
    assert!(running, "the RUN step never started");
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    let gone = within(10, || processes_with(&marker).is_empty());
    assert!(gone, "processes left: {:?}", processes_with(&marker));
    // The build's own process (in the user namespace) is told by the parent's death
    // and cancels: its mounts go with its mount namespace, once it has exited.
    let unmounted = within(30, || mounts_anywhere(&home.store()).is_empty());
    assert!(unmounted, "{:?}", mounts_anywhere(&home.store()));
    // The next build runs, and finds the store sound.
    home.ok(&["store", "check"], &[]);
}

#[test]
fn rootless_without_subordinate_ids_builds_root_owned_files_and_says_how_to_add_ids() {
    let Some(home) = Home::new(NOSUB_USER) else {
        return;
    };
    let ctx = home.context(
        "ctx",
        &[("Dockerfile", &busybox_dockerfile("RUN echo ok > /ok\n"))],
    );
    let ctx = ctx.to_string_lossy().into_owned();
    let args = ["build", "--progress", "plain", "--network", "none", &ctx];
    let (_, said) = home.ok(&args, &[]);
    assert!(said.contains("usermod --add-subuids"), "{said}");
    assert!(said.contains(NOSUB_USER), "{said}");
    let rest = "COPY --chown=1000:1000 busybox /b\n";
    std::fs::write(format!("{ctx}/Dockerfile"), busybox_dockerfile(rest)).unwrap();
    let err = home.fails(&args, &[]);
    assert!(err.contains("Dockerfile:5"), "{err}");
    assert!(
        err.contains("owner 1000:1000") && err.contains("subordinate ids"),
        "{err}"
    );
}

#[test]
fn rootless_refuses_a_store_of_another_user_saying_why() {
    let Some(home) = Home::new(USER) else { return };
    let root_store = home.path("root-store");
    std::fs::create_dir(&root_store).unwrap();
    let err = home.fails(&["--root", root_store.to_str().unwrap(), "images"], &[]);
    assert!(err.contains("belongs to another user"), "{err}");
    assert!(err.contains(&format!("uid {}", home.ids.0)), "{err}");
}

#[test]
fn rootless_default_network_leaves_no_pasta_after_a_kill() {
    let Some(home) = Home::new(USER) else { return };
    let dockerfile = busybox_dockerfile("RUN sleep 30\n");
    let ctx = home.context("ctx", &[("Dockerfile", &dockerfile)]);
    let ctx = ctx.to_string_lossy().into_owned();
    let child = home
        .command(&["build", "--progress", "plain", &ctx], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    crate::network::kill_during_sleep_leaves_nothing(child);
}

#[test]
fn rootless_default_network_reaches_the_hosts_address_but_not_its_loopback() {
    let Some(home) = Home::new(USER) else { return };
    let Some(ip) = crate::network::host_ip() else {
        assert!(std::env::var_os("CI").is_none(), "CI hosts have an address");
        eprintln!("skipped: the host has no non-loopback IPv4 address");
        return;
    };
    let outside = crate::network::serve_on(ip, "host-address");
    let inside = crate::network::serve_on(std::net::Ipv4Addr::LOCALHOST, "host-loopback");
    let rest = format!(
        "RUN (timeout 10 wget -O /outside http://{ip}:{outside}/ > /o.log 2>&1 || true) \
         && (timeout 10 wget -O /loopback http://127.0.0.1:{inside}/ > /l.log 2>&1 || true) \
         && ip -4 addr > /addrs\n"
    );
    let ctx = home.context("ctx", &[("Dockerfile", &busybox_dockerfile(&rest))]);
    let ctx = ctx.to_string_lossy().into_owned();
    let dest = format!("type=local,dest={}", home.path("out").display());
    home.ok(&["build", "--progress", "plain", "-o", &dest, &ctx], &[]);
    let read = |rel: &str| std::fs::read_to_string(home.path("out").join(rel)).unwrap_or_default();
    assert_eq!(read("outside"), "host-address", "{}", read("o.log"));
    assert_eq!(read("loopback"), "", "the host's loopback is not reached");
    assert!(
        read("addrs").contains("inet 10.0.2.100/24"),
        "{}",
        read("addrs")
    );
}

#[test]
fn rootless_builds_with_either_snapshotter_give_the_root_builds_digest() {
    let Some(home) = Home::new(USER) else { return };
    // A replaced directory: an opaque directory in the layer, told by the native
    // snapshotter's directory marks (`user.rbuild.dir` in the namespace).
    let rest = "RUN mkdir -p /d/e && echo 1 > /d/x\nRUN rm -rf /d && mkdir /d && echo y > /d/y\n";
    let ctx = home.context("ctx", &[("Dockerfile", &busybox_dockerfile(rest))]);
    let ctx = ctx.to_string_lossy().into_owned();
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    let root_store = home.path("root-store");
    for snapshotter in ["native", "overlayfs"] {
        let args = [
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "--snapshotter",
            snapshotter,
            "-t",
            "snap:1",
            &ctx,
        ];
        home.ok(&args, &env);
        let out = rbuild_in(&root_store, &args, &env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (rootless, _) = home.ok(&["inspect", "--format", "{{.Digest}}", "snap:1"], &[]);
        assert_eq!(
            rootless,
            manifest_digest(&root_store, "snap:1"),
            "{snapshotter}"
        );
    }
}

#[test]
fn rootless_foreign_run_is_emulated_through_a_registration_of_its_own() {
    let Some(home) = Home::new(USER) else { return };
    let Some((_reg, base)) = crate::platform::emulated_base() else {
        return;
    };
    let before = crate::platform::binfmt_entries();
    let dockerfile = format!("FROM {base}\nRUN uname -m > /arch && id -u > /uid\n");
    let ctx = home.context("ctx", &[("Dockerfile", &dockerfile)]);
    let dest = format!("type=local,dest={}", home.path("out").display());
    let ctx = ctx.to_string_lossy().into_owned();
    let args = [
        "build",
        "--progress",
        "plain",
        "--platform",
        "linux/arm64",
        "-o",
        &dest,
        &ctx,
    ];
    let (_, stderr) = home.ok(&args, &[]);
    assert!(stderr.contains("for this step only"), "{stderr}");
    let read = |rel: &str| std::fs::read_to_string(home.path("out").join(rel)).unwrap();
    assert_eq!(read("arch").trim(), "aarch64");
    assert_eq!(read("uid").trim(), "0");
    assert_eq!(crate::platform::binfmt_entries(), before);
}
