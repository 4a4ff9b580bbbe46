//! The registry client against the real CNCF registry: push and pull round trips read
//! back by skopeo and umoci, images other tools pushed, large chunked uploads, a proxy
//! that fails requests, a registry that serves wrong bytes. `build --push` and
//! `--pull` are in `build_push.rs`, authentication and TLS in `registry_auth.rs`.

use std::path::Path;
use std::process::Command;

use crate::registry::{available, Fault, FaultProxy, Registry, Rule};
use crate::support::{busybox, run_fails, run_ok, TestContext};

/// A busybox base image built into `t`'s store as `name`; `None` when the machine
/// cannot build it (checked by `busybox`).
pub(crate) fn base(name: &str) -> Option<TestContext> {
    let t = busybox("RUN echo base > /base.txt\n", &[])?;
    t.build(&["-t", name]);
    Some(t)
}

pub(crate) fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn sha256_of(bytes: &[u8]) -> String {
    crate::registry::digest(bytes)
}

#[test]
fn push_then_pull_round_trips_through_a_plain_registry() {
    if !available(&["skopeo", "umoci"]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let reg = Registry::plain();
    let dest = format!("{}/team/app:1", reg.host());
    let meta = t.path("meta.json");
    let (digest, stderr) = run_ok(
        &t.root(),
        &[
            "push",
            "base:1",
            &dest,
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
        &[],
    );
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(stderr.contains("pushed"), "{stderr}");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["containerimage.digest"], digest.as_str());
    // An independent reader gets the same bytes.
    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{dest}"),
    ]);
    assert_eq!(sha256_of(raw.as_bytes()), digest);
    let layout = tempfile::tempdir().unwrap();
    let oci = format!("oci:{}:app", layout.path().display());
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{dest}"),
        &oci,
    ]);
    let bundle = layout.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:app", layout.path().display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/base.txt")).unwrap(),
        "base\n"
    );
    // A second push moves nothing.
    let (_, stderr) = run_ok(&t.root(), &["push", "base:1", &dest], &[]);
    assert!(stderr.contains("0 blobs uploaded"), "{stderr}");

    // Pull into an empty store, then build on it (FROM pulls when missing).
    let other = TestContext::new(
        &format!("FROM {dest}\nRUN cat /base.txt > /copy.txt\n"),
        &[],
    );
    let (pulled, said) = run_ok(&other.root(), &["pull", &dest], &[]);
    assert_eq!(pulled, digest);
    // Pulled means ready to build on, as after `docker pull`: the layers are unpacked,
    // so a build on it unpacks nothing.
    assert!(said.contains("layers unpacked in"), "{said}");
    let log = other.build_log(&["-t", "child:0"]);
    assert!(!log.contains("unpacking"), "{log}");
    let fresh = TestContext::new(
        &format!("FROM {dest}\nRUN cat /base.txt > /copy.txt\n"),
        &[],
    );
    let ctx = fresh.context();
    let out = fresh.rbuild(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "child:1",
        ctx.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("pulling {dest}")), "{stderr}");
    // --pull=never on a store without the image names it and says why.
    let never = TestContext::new(&format!("FROM {}/team/none:1\n", reg.host()), &[]);
    let err = never.build_fails(&["--pull=never"]);
    assert!(err.contains("--pull=never"), "{err}");
    assert_eq!(err.matches("is not in the local store").count(), 1, "{err}");
    // A missing tag is named.
    let err = run_fails(
        &t.root(),
        &["pull", &format!("{}/team/app:nope", reg.host())],
        &[],
    );
    assert!(
        err.contains("team/app:nope") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn a_push_through_a_failing_proxy_completes_intact() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let reg = Registry::plain();
    let proxy = FaultProxy::to(&reg);
    let e500 = proxy.add(
        Rule::new(Fault::Status(500))
            .method("PUT")
            .path_contains("/blobs/uploads/")
            .times(2),
    );
    let e429 = proxy.add(Rule::new(Fault::TooManyRequests).method("HEAD").times(2));
    let drop = proxy.add(Rule::new(Fault::Drop).method("POST").times(2));
    let man = proxy.add(
        Rule::new(Fault::Status(503))
            .method("PUT")
            .path_contains("/manifests/")
            .times(1),
    );
    let dest = format!("{}/team/app:1", proxy.host());
    let (digest, _) = run_ok(&t.root(), &["push", "base:1", &dest], &[]);
    for (rule, n) in [(e500, 2), (e429, 2), (drop, 2), (man, 1)] {
        assert_eq!(proxy.counts(rule).faulted, n, "{:?}", proxy.requests());
    }
    // Intact: read straight from the registry.
    let direct = format!("docker://{}/team/app:1", reg.host());
    let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &direct]);
    assert_eq!(sha256_of(raw.as_bytes()), digest);
    let layout = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &direct,
        &format!("oci:{}:x", layout.path().display()),
    ]);
}

#[test]
fn a_registry_serving_wrong_bytes_fails_the_pull_and_nothing_lands() {
    if !available(&[]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let reg = Registry::plain();
    let dest = format!("{}/team/app:1", reg.host());
    run_ok(&t.root(), &["push", "base:1", &dest], &[]);
    let proxy = FaultProxy::to(&reg);
    // Every blob GET is corrupted (the client retries nothing that is not transient).
    proxy.add(
        Rule::new(Fault::CorruptBody)
            .method("GET")
            .path_contains("/blobs/sha256:")
            .times(100),
    );
    let fresh = TestContext::new("FROM scratch\n", &[]);
    let via = format!("{}/team/app:1", proxy.host());
    let err = run_fails(&fresh.root(), &["pull", &via], &[]);
    assert!(err.contains("digest"), "{err}");
    let (images, _) = run_ok(&fresh.root(), &["images"], &[]);
    assert!(!images.contains("team/app"), "{images}");
    let blobs = fresh.root().join("blobs/sha256");
    let count = std::fs::read_dir(&blobs).map_or(0, |d| d.count());
    assert_eq!(count, 0, "no blob may be kept");
    // The store is consistent: `store check` exits 0.
    run_ok(&fresh.root(), &["store", "check"], &[]);
}

/// Adds to layout `dir` an index listing its images tagged `amd` (as linux/amd64) and
/// `arm` (as linux/arm64), tagged `multi`.
fn add_index(dir: &Path) {
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let by_tag = |tag: &str| -> serde_json::Value {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no {tag} in {index}"))
            .clone()
    };
    let entry = |tag: &str, arch: &str| {
        let d = by_tag(tag);
        serde_json::json!({
            "mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
            "platform": {"os": "linux", "architecture": arch},
        })
    };
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("arm", "arm64"), entry("amd", "amd64")],
    });
    let bytes = list.to_string().into_bytes();
    let digest = sha256_of(&bytes);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(dir.join("blobs/sha256").join(hex), &bytes).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest, "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    std::fs::write(&index_path, index.to_string()).unwrap();
}

#[test]
fn images_skopeo_pushed_in_every_format_pull_and_serve_as_bases() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let reg = Registry::plain();
    let src = format!("oci:{}:base:1", t.root().display());
    let host = reg.host();
    let to = |name: &str| format!("docker://{host}/skopeo/{name}:1");
    skopeo(&["copy", "-q", "--dest-tls-verify=false", &src, &to("oci")]);
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &src,
        &to("docker"),
    ]);
    // skopeo compresses uncompressed layers itself, here with zstd.
    t.build(&["--compression", "uncompressed", "-t", "raw:1"]);
    let raw = format!("oci:{}:raw:1", t.root().display());
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--dest-compress",
        "--dest-compress-format",
        "zstd",
        &raw,
        &to("zstd"),
    ]);
    let layout = tempfile::tempdir().unwrap();
    let tiny = crate::registry::tiny_oci_layout(layout.path(), "arm", b"an arm64 image");
    skopeo(&[
        "copy",
        "-q",
        &src,
        &format!("oci:{}:amd", layout.path().display()),
    ]);
    add_index(layout.path());
    skopeo(&[
        "copy",
        "-q",
        "--multi-arch",
        "all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.path().display()),
        &to("multi"),
    ]);
    let docker_raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &to("docker")]);
    assert!(docker_raw.contains("application/vnd.docker.distribution.manifest.v2+json"));
    let zstd_raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &to("zstd")]);
    assert!(zstd_raw.contains("tar+zstd"), "{zstd_raw}");
    for name in ["oci", "docker", "zstd", "multi"] {
        let image = format!("{host}/skopeo/{name}:1");
        let child = TestContext::new(
            &format!("FROM {image}\nRUN cat /base.txt > /seen.txt && test -x /bin/sh\n"),
            &[],
        );
        let out = child.rbuild(&[
            "build",
            "--progress",
            "plain",
            "-t",
            "child:1",
            child.context().to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(stderr.contains(&format!("pulling {image}")), "{stderr}");
    }
    // The index: the wanted platform, or an error listing what there is.
    let other = TestContext::new("FROM scratch\n", &[]);
    let multi = format!("{host}/skopeo/multi:1");
    let (arm, _) = run_ok(
        &other.root(),
        &["pull", "--platform", "linux/arm64", &multi],
        &[],
    );
    assert_eq!(arm, tiny.manifest);
    let err = run_fails(
        &other.root(),
        &["pull", "--platform", "linux/s390x", &multi],
        &[],
    );
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64, linux/amd64"),
        "{err}"
    );
}

#[test]
fn large_blobs_go_up_in_chunks_that_resume_where_the_registry_stands() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(t) = busybox("COPY big /big\n", &[]) else {
        return;
    };
    // 70 MiB of incompressible bytes: a layer above the 64 MiB single-PUT limit.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut big = vec![0u8; 70 << 20];
    for chunk in big.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(t.context().join("big"), &big).unwrap();
    drop(big);
    t.build(&["--compression", "uncompressed", "-t", "big:1"]);
    let reg = Registry::plain();
    let proxy = FaultProxy::to(&reg);
    let patches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = patches.clone();
    // The second chunk's connection drops before the registry sees it.
    let dropped = proxy.add(
        Rule::new(Fault::Drop)
            .matching(move |method, _| {
                method == "PATCH" && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1
            })
            .times(1),
    );
    // The final PUT fails once too.
    let put = proxy.add(
        Rule::new(Fault::Status(502))
            .method("PUT")
            .path_contains("/blobs/uploads/")
            .matching(|_, target| target.contains("digest=") && !target.contains("size="))
            .times(1),
    );
    let dest = format!("{}/team/big:1", proxy.host());
    let (digest, stderr) = run_ok(&t.root(), &["push", "big:1", &dest], &[]);
    assert_eq!(proxy.counts(dropped).faulted, 1);
    assert_eq!(proxy.counts(put).faulted, 1);
    let requests = proxy.requests();
    let patch_count = requests.iter().filter(|r| r.method == "PATCH").count();
    // 3 chunks (32 + 32 + 6 MiB) + the one dropped: resumed, not restarted.
    assert_eq!(patch_count, 4, "{requests:?}\n{stderr}");
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.target.contains("/blobs/uploads/")),
        "the upload's state was asked for: {requests:?}"
    );
    let direct = format!("docker://{}/team/big:1", reg.host());
    let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &direct]);
    assert_eq!(sha256_of(raw.as_bytes()), digest);
    // The registry's copy of the big layer is whole: pull it back and compare.
    let back = TestContext::new("FROM scratch\n", &[]);
    let (pulled, _) = run_ok(
        &back.root(),
        &["pull", &format!("{}/team/big:1", reg.host())],
        &[],
    );
    assert_eq!(pulled, digest);
}
