//! Self-tests of [`FaultProxy`]: each fault seen by curl, a large streamed upload whose
//! upload URLs stay on the proxy, and a skopeo push that retries through faults.

use std::process::Command;

use super::layout::digest;
use super::self_test::{curl, data_file, send};
use super::*;

/// `len` bytes that do not compress to nothing and differ from offset to offset.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn registry_infra_proxy_faults_seen_by_curl() {
    if !available(&["curl"]) {
        return;
    }
    let registry = Registry::plain();
    let proxy = FaultProxy::to(&registry);
    let v2 = format!("{}/v2/", proxy.url());
    let is_v2 = |_: &str, target: &str| target == "/v2/";

    let failing = proxy.add(Rule::new(Fault::Status(500)).method("GET").matching(is_v2));
    assert_eq!(curl(&[&v2]).status, 500);
    assert_eq!(curl(&[&v2]).status, 200);
    assert_eq!(tally(&proxy, failing), (2, 1));

    let busy = proxy.add(
        Rule::new(Fault::TooManyRequests)
            .path_contains("/_catalog")
            .times(2),
    );
    let catalog = format!("{}/v2/_catalog", proxy.url());
    let limited = curl(&[&catalog]);
    assert_eq!(
        (limited.status, limited.header("retry-after").as_deref()),
        (429, Some("1"))
    );
    assert_eq!(curl(&[&catalog]).status, 429);
    assert_eq!(curl(&[&catalog]).status, 200);
    assert_eq!(tally(&proxy, busy), (3, 2));

    let dropped = proxy.add(Rule::new(Fault::Drop).matching(is_v2));
    assert_eq!(curl(&[&v2]).exit, 52, "curl: empty reply from server");
    assert_eq!(curl(&[&v2]).status, 200);
    assert_eq!(proxy.counts(dropped).faulted, 1);

    let seen = proxy.requests();
    assert_eq!(seen.iter().filter(|r| r.fault.is_some()).count(), 4);
    assert!(seen
        .iter()
        .any(|r| r.fault == Some(Fault::Drop) && r.status.is_none()));
}

#[test]
fn registry_infra_proxy_streams_uploads_and_breaks_downloads() {
    if !available(&["curl"]) {
        return;
    }
    let registry = Registry::plain();
    let proxy = FaultProxy::to(&registry);
    let work = tempfile::tempdir().expect("temp dir");
    let blob = pattern(24 << 20);
    let (first, second) = blob.split_at(13 << 20);

    // A chunked upload: POST, PATCH with a chunked body, PUT with a Content-Length one.
    let uploads = format!("{}/v2/infra/big/blobs/uploads/", proxy.url());
    let started = curl(&["-X", "POST", &uploads]);
    assert_eq!(started.status, 202, "{}", started.headers);
    let location = started.header("location").expect("upload location");
    assert!(
        location.starts_with(&proxy.url()),
        "not rewritten: {location}"
    );
    let chunked = ["Transfer-Encoding: chunked"];
    let patched = send(
        "PATCH",
        &location,
        &chunked,
        &data_file(work.path(), "1", first),
    );
    assert_eq!(patched.status, 202, "{}", patched.headers);
    let location = patched.header("location").expect("upload location");
    assert!(
        location.starts_with(&proxy.url()),
        "not rewritten: {location}"
    );
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{sep}digest={}", digest(&blob));
    let put = send("PUT", &url, &[], &data_file(work.path(), "2", second));
    assert_eq!(put.status, 201, "{}\n{}", put.headers, registry.log());

    // Downloads: one corrupted (same length), one cut short, then a clean one.
    let blob_url = format!("{}/v2/infra/big/blobs/{}", proxy.url(), digest(&blob));
    let corrupt = proxy.add(Rule::new(Fault::CorruptBody).path_contains("/blobs/sha256:"));
    let cut = proxy.add(
        Rule::new(Fault::CutBody)
            .method("GET")
            .path_contains("/blobs/sha256:"),
    );
    let head = curl(&["-I", &blob_url]);
    assert_eq!(head.status, 200, "HEAD has no body: the rule waits");
    assert_eq!(proxy.counts(corrupt).faulted, 0);
    let corrupted = curl(&[&blob_url]);
    assert_eq!((corrupted.status, corrupted.body.len()), (200, blob.len()));
    assert_ne!(digest(&corrupted.body), digest(&blob));
    let short = curl(&[&blob_url]);
    assert_eq!(short.exit, 18, "curl: partial file");
    assert_eq!(short.body.len(), blob.len() / 2);
    let clean = curl(&[&blob_url]);
    assert_eq!(digest(&clean.body), digest(&blob));
    assert_eq!(tally(&proxy, corrupt), (4, 1));
    assert_eq!(tally(&proxy, cut), (3, 1));
}

/// `skopeo copy` of `image` to `dest`, with retries; stderr on failure.
fn skopeo_copy(image: &TinyImage, dest: &str) -> Result<(), String> {
    let out = Command::new("skopeo")
        .args("--insecure-policy copy --retry-times 2 --dest-tls-verify=false".split(' '))
        .arg(image.skopeo_ref())
        .arg(dest)
        .output()
        .expect("run skopeo");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A rule's (seen, faulted) counters.
fn tally(proxy: &FaultProxy, id: RuleId) -> (usize, usize) {
    let counts = proxy.counts(id);
    (counts.seen, counts.faulted)
}

/// The requests the proxy saw, one per line, for failure messages.
fn describe(proxy: &FaultProxy) -> String {
    let lines: Vec<String> = proxy
        .requests()
        .iter()
        .map(|r| format!("{} {} -> {:?} {:?}", r.method, r.target, r.status, r.fault))
        .collect();
    lines.join("\n")
}

#[test]
fn registry_infra_skopeo_copy_through_faults() {
    if !available(&["curl", "skopeo"]) {
        return;
    }
    let registry = Registry::plain();
    let proxy = FaultProxy::to(&registry);
    let work = tempfile::tempdir().expect("temp dir");
    let image = tiny_oci_layout(work.path(), "v1", b"hello from the tiny image\n");
    let dest = |tag: &str| format!("docker://{}/infra/tiny:{tag}", proxy.host());

    // skopeo 1.9 does not retry a 5xx (not a "retryable" error for --retry-times).
    let failing = proxy.add(
        Rule::new(Fault::Status(500))
            .method("PUT")
            .path_contains("/manifests/"),
    );
    let err = skopeo_copy(&image, &dest("v0")).expect_err("a 500 on the manifest fails the copy");
    assert!(err.contains("500"), "{err}");
    assert_eq!(tally(&proxy, failing), (1, 1));

    // It waits out a 429 on a body-less request by itself (Retry-After), and redoes the
    // copy after a dropped connection (--retry-times).
    let busy = proxy.add(
        Rule::new(Fault::TooManyRequests)
            .method("HEAD")
            .path_contains("/blobs/"),
    );
    let dropped = proxy.add(
        Rule::new(Fault::Drop)
            .method("PUT")
            .path_contains("/manifests/"),
    );
    if let Err(err) = skopeo_copy(&image, &dest("v1")) {
        panic!(
            "skopeo copy failed: {err}\nproxy saw:\n{}",
            describe(&proxy)
        );
    }
    assert_eq!(proxy.counts(busy).faulted, 1, "{}", describe(&proxy));
    assert_eq!(tally(&proxy, dropped), (2, 1));
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    let url = format!("{}/v2/infra/tiny/manifests/v1", registry.url());
    let manifest = curl(&["-I", "-H", accept, &url]);
    assert_eq!(manifest.status, 200);
    assert_eq!(
        manifest.header("docker-content-digest"),
        Some(image.manifest.clone())
    );
}
