//! rbuild's own image (`scripts/image.sh`) run by podman as uid 1000: a rootless build
//! inside a container, with the shipped seccomp profile and nothing more than the
//! README's "Rootless and CI" lists (`unmask=/proc/*`, `/dev/net/tun`; all capabilities
//! dropped but SETUID and SETGID), pushing to a
//! test registry the container reaches over the host's loopback (`--network host`).
//!
//! The image ships the test binary (`CARGO_BIN_EXE_rbuild`, a debug build: not static,
//! so the script copies its shared libraries too) rather than the static release
//! binary, which would take minutes to build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::registry::{available, Registry};
use crate::support::{can_mount, have, podman};

/// The name the image is loaded under in the test's private podman store.
const IMAGE: &str = "localhost/rbuild-it:test";

/// The repository's `path`.
fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The prerequisites: root (podman's rootful store, setcap), podman, skopeo, setcap,
/// busybox and the registry's tools. Missing ones skip (and fail in CI).
fn prerequisites() -> bool {
    let tools = ["podman", "skopeo", "setcap", "tar"];
    let all = tools.iter().filter(|t| !have(t)).count() == 0;
    can_mount() && all && available(&[]) && Path::new("/bin/busybox").is_file()
}

/// Builds rbuild's image with the script (into an OCI archive) and loads it into a
/// private podman store under `dir`.
fn load_image(dir: &Path) {
    let archive = dir.join("rbuild.tar");
    let out = Command::new(repo("scripts/image.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(dir.join("store"))
        .args(["--tag", IMAGE, "--", "-q", "-o"])
        .arg(format!("type=oci,dest={}", archive.display()))
        .env("TMPDIR", dir)
        .output()
        .expect("running scripts/image.sh");
    assert!(
        out.status.success(),
        "scripts/image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    podman(dir, &["load", "-q", "-i", archive.to_str().unwrap()]);
}

/// A context readable by uid 1000: busybox, a RUN, a file owned by 1000.
fn context(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let ctx = dir.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         RUN echo built in a container > /hello && chown 1000:1000 /hello\n",
    )
    .unwrap();
    for path in [dir, &ctx] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    ctx
}

/// `podman run` of the image as uid 1000 with `security` options, building `ctx`
/// with `build_args`.
fn run_in_podman(dir: &Path, security: &[String], ctx: &Path, build_args: &[&str]) -> Output {
    Command::new("podman")
        .arg("--root")
        .arg(dir.join("podman-root"))
        .arg("--runroot")
        .arg(dir.join("podman-run"))
        .args(["--storage-driver", "vfs", "--events-backend", "none"])
        .args(["run", "--rm", "--user", "1000", "--network", "host"])
        .args(security)
        .arg("-v")
        .arg(format!("{}:/ctx:ro", ctx.display()))
        .args([IMAGE, "build", "--progress", "plain"])
        .args(build_args)
        .arg("/ctx")
        .output()
        .expect("running podman")
}

/// The options the README lists for podman: the shipped profile (first: the test
/// leaves it out once), procfs unmasked, tun, and every capability dropped but the two
/// the id-mapping tools need.
fn documented_options() -> Vec<String> {
    let seccomp = repo("contrib/seccomp.json");
    let words = [
        "--security-opt",
        &format!("seccomp={}", seccomp.display()),
        "--security-opt",
        "unmask=/proc/*",
        "--device",
        "/dev/net/tun",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "SETUID,SETGID",
    ];
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn image_builds_rootless_in_podman_and_pushes() {
    if !prerequisites() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    load_image(dir.path());
    let ctx = context(dir.path());
    let reg = Registry::plain();
    let name = format!("{}/ci/app:1", reg.host());

    // The default seccomp profile refuses sethostname: the error names the shipped one.
    let plain = run_in_podman(dir.path(), &documented_options()[2..], &ctx, &[]);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        !plain.status.success(),
        "built without the profile:\n{stderr}"
    );
    assert!(
        stderr.contains("seccomp=contrib/seccomp.json"),
        "the error does not name the profile:\n{stderr}"
    );

    let out = run_in_podman(
        dir.path(),
        &documented_options(),
        &ctx,
        &["-t", &name, "--push"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rootless build in podman:\n{stderr}");
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--config"])
        .arg(format!("docker://{name}"))
        .output()
        .expect("running skopeo");
    let config = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        inspect.status.success(),
        "{name} was not pushed: {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert!(config.contains("\"diff_ids\""), "no layers in {config}");
    // uid 1000 of the build is past the image's first subordinate range (1:999): the
    // second one (1001:64535) maps it, and the layer records 1000 again.
    assert!(
        last_layer_listing(dir.path(), &name).contains("1000/1000"),
        "/hello is not 1000's"
    );
}

/// `tar -tv` of the last layer of the pushed image `name` (fetched with skopeo).
fn last_layer_listing(dir: &Path, name: &str) -> String {
    let copy = dir.join("pulled");
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("dir:{}", copy.display()))
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("manifest.json")).unwrap()).unwrap();
    let digest = manifest["layers"]
        .as_array()
        .and_then(|l| l.last())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let out = Command::new("tar")
        .arg("-tvzf")
        .arg(copy.join(digest))
        .output()
        .expect("running tar");
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    listing.lines().filter(|l| l.ends_with("hello")).collect()
}
