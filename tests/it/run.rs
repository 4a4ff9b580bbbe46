//! `RUN` in the sandbox, end to end: the layer a step makes (owners, whiteouts), the
//! process environment, failures, and independent readers of the result. Device nodes
//! are in `devices.rs`.

use std::os::unix::fs::MetadataExt;

use crate::support::{busybox, have, leaked_mounts, umoci_unpack};

#[test]
fn run_layers_have_the_right_owners_and_whiteouts() {
    let Some(t) = busybox(
        "FROM base\nRUN mkdir -p /d/sub /gone /replaced && echo x > /d/sub/f && echo y > /file && touch /replaced/inner\n\
         RUN rm /file && rm -rf /gone && rm -rf /replaced && echo now-a-file > /replaced && rm -rf /d && mkdir /d\n\
         USER app\nRUN echo mine > /tmp/app-file && id -G > /tmp/groups\n",
        &[],
    ) else {
        return;
    };
    if !have("umoci") {
        return;
    }
    t.build(&["-t", "run:1"]);
    let rootfs = umoci_unpack(&t, "run:1");
    assert!(
        !rootfs.join("file").exists() && !rootfs.join("gone").exists(),
        "deleted paths are whited out"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("replaced")).unwrap(),
        "now-a-file\n",
        "a directory replaced by a file"
    );
    assert!(
        rootfs.join("d").is_dir()
            && std::fs::read_dir(rootfs.join("d"))
                .unwrap()
                .next()
                .is_none(),
        "rm -rf d && mkdir d: opaque"
    );
    let meta = std::fs::metadata(rootfs.join("tmp/app-file")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (1000, 1000),
        "files made as USER app belong to it"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("tmp/groups"))
            .unwrap()
            .trim(),
        "1000 2000",
        "supplementary groups"
    );
    assert!(leaked_mounts(&t.root()).is_empty());
}

#[test]
fn run_sees_buildkit_s_environment() {
    let Some(t) = busybox(
        "FROM base\nARG V=1\nENV E=env\nWORKDIR /work\nRUN echo \"$V $E $HOSTNAME $HOME $PATH $(pwd)\" > /env.txt\n\
         RUN <<EOF\necho heredoc-$V > /heredoc.txt\nEOF\nRUN [\"/bin/sh\", \"-c\", \"echo exec > /exec.txt\"]\n",
        &[],
    ) else {
        return;
    };
    let out_dir = t.path("out");
    t.build(&[
        "--build-arg",
        "V=2",
        "-o",
        &format!("type=local,dest={}", out_dir.display()),
    ]);
    let env = std::fs::read_to_string(out_dir.join("env.txt")).unwrap();
    assert_eq!(
        env.trim(),
        "2 env buildkitsandbox /root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /work"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("heredoc.txt")).unwrap(),
        "heredoc-2\n"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("exec.txt")).unwrap(),
        "exec\n"
    );
}

#[test]
fn a_failing_run_names_its_line_exit_code_and_output() {
    let Some(t) = busybox(
        "FROM base\nRUN echo first-line && echo about-to-fail && exit 7\n",
        &[],
    ) else {
        return;
    };
    let err = t.build_fails(&[]);
    assert!(err.contains("Dockerfile:7"), "{err}");
    assert!(err.contains("exit code: 7"), "{err}");
    assert!(
        err.contains("about-to-fail"),
        "the last lines of output: {err}"
    );
    // Streamed once as it ran, and once in the error report: not in the ERROR
    // progress line, not again as a cause.
    let as_output = |l: &&str| l.ends_with("] about-to-fail") || l.ends_with("> about-to-fail");
    assert_eq!(err.lines().filter(as_output).count(), 2, "{err}");
    assert_eq!(err.matches("last output").count(), 1, "{err}");
    assert!(leaked_mounts(&t.root()).is_empty());
}

#[test]
fn a_run_that_changes_nothing_adds_no_layer_and_network_none_has_only_lo() {
    let Some(t) = busybox(
        "FROM base\nRUN true\nRUN --network=none cat /proc/net/dev > /net.txt\n",
        &[],
    ) else {
        return;
    };
    t.build(&["-t", "n:1"]);
    let out = t.rbuild(&["inspect", "n:1"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let history = v["config"]["history"].as_array().unwrap();
    let run_true = history
        .iter()
        .find(|h| {
            h["created_by"]
                .as_str()
                .unwrap_or_default()
                .contains("-c true")
        })
        .unwrap();
    assert_eq!(run_true["empty_layer"], true, "{run_true}");
    let out_dir = t.path("out");
    t.build(&["-o", &format!("type=local,dest={}", out_dir.display())]);
    let net = std::fs::read_to_string(out_dir.join("net.txt")).unwrap();
    let ifaces: Vec<&str> = net
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"]);
}

#[test]
fn the_built_image_runs_under_podman() {
    let Some(t) = busybox(
        "FROM base\nRUN echo built-by-rbuild > /msg\nUSER app\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"cat /msg && id -un\"]\n",
        &[],
    ) else {
        return;
    };
    if !have("podman") {
        return;
    }
    let archive = t.path("image.tar");
    t.build(&[
        "-t",
        "podrun:1",
        "-o",
        &format!("type=docker,dest={}", archive.display()),
    ]);
    let podman = |args: &[&str]| {
        std::process::Command::new("podman")
            .arg("--root")
            .arg(t.path("podman"))
            .arg("--runroot")
            .arg(t.path("podman-run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .unwrap()
    };
    let load = podman(&["load", "-i", &archive.to_string_lossy()]);
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let run = podman(&[
        "--runtime",
        "runc",
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "podrun:1",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "built-by-rbuild\napp\n"
    );
}

#[test]
fn users_get_their_primary_group_as_a_supplementary_group_as_under_docker() {
    let Some(t) = busybox(
        "FROM base\nUSER app:app\nRUN id > /tmp/id-explicit\nUSER root\nRUN id > /tmp/id-root\n",
        &[],
    ) else {
        return;
    };
    let out = t.path("out");
    t.build(&["-o", &format!("type=local,dest={}", out.display())]);
    let read = |f: &str| std::fs::read_to_string(out.join("tmp").join(f)).unwrap();
    // Docker (20.10.18+) and containerd put the primary group in the list.
    assert_eq!(
        read("id-explicit").trim(),
        "uid=1000(app) gid=1000(app) groups=1000(app)"
    );
    assert_eq!(
        read("id-root").trim(),
        "uid=0(root) gid=0(root) groups=0(root)"
    );
}

#[test]
fn a_run_on_scratch_leaves_the_system_directories_as_buildkit_does() {
    let Some(t) = busybox(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"true\"]\n",
        &[],
    ) else {
        return;
    };
    let out = t.path("out");
    t.build(&[
        "-t",
        "s:1",
        "-o",
        &format!("type=local,dest={}", out.display()),
    ]);
    for d in ["dev", "proc", "sys", "etc"] {
        let entries = std::fs::read_dir(out.join(d)).map(Iterator::count);
        assert_eq!(entries.ok(), Some(0), "/{d} is kept, empty");
    }
    let inspect = t.rbuild(&["inspect", "s:1"]);
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        v["manifest"]["layers"].as_array().map(Vec::len),
        Some(2),
        "{v}"
    );
}

const IO_URING_PROBE: &str = r#"#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void probe(const char *name, long nr, long a, long b, long c, long d) {
    errno = 0;
    long r = syscall(nr, a, b, c, d, 0L, 0L);
    printf("%s %ld %d\n", name, r, r < 0 ? errno : 0);
}

int main(void) {
    unsigned char params[120];
    memset(params, 0, sizeof params);
    probe("io_uring_setup", __NR_io_uring_setup, 1, (long)params, 0, 0);
    probe("io_uring_enter", __NR_io_uring_enter, -1, 0, 0, 0);
    probe("io_uring_register", __NR_io_uring_register, -1, 0, 0, 0);
    return 0;
}
"#;

#[test]
fn io_uring_is_refused_with_eperm_as_in_docker() {
    let Some(t) = busybox(
        "FROM base AS probe\nCOPY io_uring /io_uring\nRUN /io_uring > /result\n\
         FROM scratch\nCOPY --from=probe /result /\n",
        &[],
    ) else {
        return;
    };
    if !have("gcc") {
        return;
    }
    let src = t.path("io_uring.c");
    std::fs::write(&src, IO_URING_PROBE).unwrap();
    let gcc = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(t.context().join("io_uring"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        gcc.status.success(),
        "gcc -static (libc6-dev): {}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    let out = t.path("out");
    t.build(&["-o", &format!("type=local,dest={}", out.display())]);
    let result = std::fs::read_to_string(out.join("result")).unwrap();
    assert_eq!(
        result, "io_uring_setup -1 1\nio_uring_enter -1 1\nio_uring_register -1 1\n",
        "EPERM (1) for each, moby's defaultErrnoRet"
    );
}

#[test]
fn add_host_lines_reach_the_steps_hosts_file_and_key_the_step() {
    let Some(t) = busybox("FROM base\nRUN cat /etc/hosts > /hosts\n", &[]) else {
        return;
    };
    let out_dir = t.path("out");
    let local = format!("type=local,dest={}", out_dir.display());
    t.build(&["--add-host", "db:10.1.2.3", "-o", &local]);
    let hosts = std::fs::read_to_string(out_dir.join("hosts")).unwrap();
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
    assert!(hosts.ends_with("10.1.2.3\tdb\n"), "{hosts}");
    t.build(&["--add-host", "db:10.9.9.9", "-o", &local]);
    let hosts = std::fs::read_to_string(out_dir.join("hosts")).unwrap();
    assert!(
        hosts.ends_with("10.9.9.9\tdb\n"),
        "another host is another step: {hosts}"
    );
}
