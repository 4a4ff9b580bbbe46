//! Pushing hand-made images to a test registry through the distribution API, byte for
//! byte: skopeo's layout reader skips index entries with Docker media types and would
//! re-encode what it reads, and a hostile or foreign image must arrive exactly as made.
//! Every image goes under the tag `1`.

use std::path::Path;

/// An HTTP client for the plain (no TLS, no auth) test registry.
pub fn http_client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

/// Uploads blob `path` (digest `digest`) to `host/repo`: POST, then PUT with the bytes.
pub fn upload(http: &reqwest::blocking::Client, host: &str, repo: &str, digest: &str, path: &Path) {
    let start = http
        .post(format!("http://{host}/v2/{repo}/blobs/uploads/"))
        .send()
        .expect("POST upload");
    assert_eq!(start.status().as_u16(), 202, "POST upload");
    let location = start.headers()["location"]
        .to_str()
        .expect("Location")
        .to_owned();
    let url = if location.starts_with("http") {
        location
    } else {
        format!("http://{host}{location}")
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let done = http
        .put(format!("{url}{sep}digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .body(std::fs::read(path).expect("blob"))
        .send()
        .expect("PUT upload");
    assert_eq!(done.status().as_u16(), 201, "PUT {digest}");
}

/// PUTs `manifest` (of `media_type`) as `host/repo:1`; its blobs must be there.
pub fn put_manifest(
    http: &reqwest::blocking::Client,
    host: &str,
    repo: &str,
    media_type: &str,
    manifest: Vec<u8>,
) {
    let put = http
        .put(format!("http://{host}/v2/{repo}/manifests/1"))
        .header("Content-Type", media_type)
        .body(manifest)
        .send()
        .expect("PUT manifest");
    assert_eq!(put.status().as_u16(), 201, "PUT manifest: {:?}", put.text());
}

/// Pushes the image `tag` of layout `dir` to `host/repo:1`: its config and layers, one
/// POST and PUT each, then the manifest.
pub fn push_raw(dir: &Path, tag: &str, host: &str, repo: &str) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
            .expect("index JSON");
    let entry = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .expect("tagged entry")
        .clone();
    let blob = |d: &serde_json::Value| super::blob_path(dir, d.as_str().expect("digest"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&entry["digest"])).expect("manifest"))
            .expect("manifest JSON");
    let layers = manifest["layers"].as_array().expect("layers").iter();
    let http = http_client();
    for d in std::iter::once(&manifest["config"]).chain(layers) {
        let digest = d["digest"].as_str().expect("digest");
        upload(&http, host, repo, digest, &blob(&d["digest"]));
    }
    let media_type = entry["mediaType"].as_str().expect("media type");
    let bytes = std::fs::read(blob(&entry["digest"])).expect("manifest");
    put_manifest(&http, host, repo, media_type, bytes);
}
