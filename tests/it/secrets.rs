//! `RUN --mount=type=secret` and `type=ssh` end to end: secrets present in the step,
//! absent from every layer, config and log; a missing required secret named with its
//! line; ssh agent forwarding.

use std::path::Path;
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::support::{busybox, have, leaked_mounts, read, umoci_unpack};

const SECRET: &str = "s3cr3t-VALUE-7f1e9a";
const ENV_SECRET: &str = "env-S3CRET-c0ffee";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in walk(dir) {
        if let Ok(bytes) = std::fs::read(&entry) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(entry.display().to_string());
            }
        }
    }
    hits
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in read.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(ft) if ft.is_dir() => out.extend(walk(&path)),
            Ok(ft) if ft.is_file() => out.push(path),
            _ => {}
        }
    }
    out
}

#[test]
fn secrets_are_readable_in_the_step_and_nowhere_else() {
    let Some(t) = busybox(
        "FROM base\n\
         RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /proof && \
         ls -ld /run/secrets/tok | cut -c1-10 > /mode\n\
         RUN --mount=type=secret,id=envtok,env=TOKEN,target=/etc/tok,uid=1000,mode=0440 \
         printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1 > /proof-env && stat -c '%u %a' /etc/tok > /stat && \
         echo \"$TOKEN\" | wc -c > /len\n\
         RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent\n\
         RUN test ! -e /run/secrets/tok && test -z \"$TOKEN\"\n",
        &[],
    ) else {
        return;
    };
    let secret_file = t.path("secret.txt");
    std::fs::write(&secret_file, SECRET).unwrap();
    let ctx = t.context().to_string_lossy().into_owned();
    let src = format!("id=tok,src={}", secret_file.display());
    let out_dir = t.path("out");
    let dest = format!("type=local,dest={}", out_dir.display());
    let oci = t.path("image.tar");
    let oci_dest = format!("type=oci,dest={}", oci.display());
    let mut logs = Vec::new();
    for progress in ["plain", "json"] {
        let out = crate::support::rbuild_in(
            &t.root(),
            &[
                "build",
                "--progress",
                progress,
                "--compression",
                "uncompressed",
                "-t",
                "sec:1",
                "--secret",
                &src,
                "--secret",
                "id=envtok,env=MY_TOKEN",
                "-o",
                &dest,
                "-o",
                &oci_dest,
                &ctx,
            ],
            &[("MY_TOKEN", ENV_SECRET)],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        logs.extend(out.stdout);
        logs.extend(out.stderr);
    }
    assert_eq!(
        read(&out_dir, "proof").trim(),
        sha256_hex(SECRET.as_bytes())
    );
    assert_eq!(read(&out_dir, "mode").trim(), "-r--------");
    assert_eq!(
        read(&out_dir, "proof-env").trim(),
        sha256_hex(ENV_SECRET.as_bytes())
    );
    assert_eq!(read(&out_dir, "stat").trim(), "1000 440");
    assert_eq!(
        read(&out_dir, "len").trim(),
        (ENV_SECRET.len() + 1).to_string()
    );
    for secret in [SECRET, ENV_SECRET] {
        let needle = secret.as_bytes();
        assert!(
            !logs.windows(needle.len()).any(|w| w == needle),
            "secret in the build output"
        );
        let hits = files_containing(&t.root(), needle);
        assert!(hits.is_empty(), "secret in the store: {hits:?}");
        let hits = files_containing(&out_dir, needle);
        assert!(hits.is_empty(), "secret in the filesystem: {hits:?}");
        let tar = std::fs::read(&oci).unwrap();
        assert!(
            !tar.windows(needle.len()).any(|w| w == needle),
            "secret in the OCI export"
        );
    }
    if have("umoci") {
        let rootfs = umoci_unpack(&t, "sec:1");
        assert!(!rootfs.join("run/secrets").exists(), "no mount point left");
        assert!(!rootfs.join("etc/tok").exists());
        assert!(files_containing(&rootfs, SECRET.as_bytes()).is_empty());
    }
    assert!(leaked_mounts(&t.root()).is_empty());
    // The secrets' tmpfs is gone too.
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!table.contains("rbuild-secrets"));
}

#[test]
fn a_required_secret_that_is_missing_fails_with_its_line() {
    let Some(t) = busybox(
        "FROM base\nRUN --mount=type=secret,id=needed,required cat /run/secrets/needed\n",
        &[],
    ) else {
        return;
    };
    let err = t.build_fails(&[]);
    assert!(err.contains("Dockerfile:7"), "{err}");
    assert!(err.contains("secret \"needed\""), "{err}");
    assert!(err.contains("--secret id=needed"), "{err}");
}

/// `ssh-add` and the libraries it loads, laid out under `dir` as on the host.
fn ssh_add_tree(dir: &Path) -> bool {
    let ldd = Command::new("ldd").arg("/usr/bin/ssh-add").output();
    let Ok(ldd) = ldd else { return false };
    let mut files = vec!["/usr/bin/ssh-add".to_owned()];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split("=>")
            .last()
            .and_then(|p| p.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        files.extend(path.map(str::to_owned));
    }
    for file in files {
        let to = dir.join(file.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&file, &to).unwrap();
    }
    true
}

#[test]
fn ssh_mounts_forward_the_agent() {
    let Some(t) = busybox(
        "FROM base\nCOPY sshroot/ /\n\
         RUN --mount=type=ssh ssh-add -l > /keys && ls -l \"$SSH_AUTH_SOCK\" | cut -c1-10 > /sock && \
         echo \"$SSH_AUTH_SOCK\" > /sockpath\n\
         RUN --mount=type=ssh,id=other,target=/agent.sock,mode=0666 ls -l /agent.sock | cut -c1-10 > /sock2\n\
         RUN --mount=type=ssh,id=missing test -z \"$SSH_AUTH_SOCK\"\n",
        &[],
    ) else {
        return;
    };
    if !have("ssh-agent") || !have("ssh-keygen") || !ssh_add_tree(&t.context().join("sshroot")) {
        return;
    }
    let agent_dir = t.path("agent");
    std::fs::create_dir(&agent_dir).unwrap();
    let sock = agent_dir.join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let key = agent_dir.join("key");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "rbuild-test", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let add = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let fingerprint = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    let fingerprint = String::from_utf8_lossy(&fingerprint.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let out_dir = t.path("out");
    let dest = format!("type=local,dest={}", out_dir.display());
    let ctx = t.context().to_string_lossy().into_owned();
    let other = format!("other={}", sock.display());
    let out = crate::support::rbuild_in(
        &t.root(),
        &[
            "build",
            "--progress",
            "plain",
            "--ssh",
            "default",
            "--ssh",
            &other,
            "-o",
            &dest,
            &ctx,
        ],
        &[("SSH_AUTH_SOCK", sock.to_str().unwrap())],
    );
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        read(&out_dir, "keys").contains(&fingerprint),
        "the step sees the agent's key {fingerprint}: {}",
        read(&out_dir, "keys")
    );
    assert_eq!(read(&out_dir, "sock").trim(), "srw-------");
    assert_eq!(
        read(&out_dir, "sockpath").trim(),
        "/run/buildkit/ssh_agent.0"
    );
    assert_eq!(read(&out_dir, "sock2").trim(), "srw-rw-rw-");
    assert!(!out_dir.join("run/buildkit").exists() && !out_dir.join("agent.sock").exists());
}
