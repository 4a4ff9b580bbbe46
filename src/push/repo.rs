//! The distribution API calls on one repository: manifests (GET/PUT), blobs (HEAD, GET
//! into the store with digest and size verified as they stream, cross-repository
//! mount, upload). Pull and push are sequences of these.
//!
//! Uploads stream from the store's blob file, never from memory: a blob up to
//! [`CHUNKED_ABOVE`] goes in one `PUT`; a larger one in `PATCH` chunks, and a failed
//! chunk resumes where the registry says the upload stands (`GET` on the session)
//! instead of starting over. A failure the registry may not have (a dropped connection,
//! `5xx`, `429`) is retried with backoff; anything else is reported at once.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use reqwest::blocking::{Body, Response};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};

use super::auth::Target;
use super::client::{check, Client, Retry};
use super::error::RegistryError;
use super::reference::Reference;
use crate::digest::Digest;
use crate::image::{media_types, Descriptor};
use crate::store::Store;

/// Blobs larger than this are uploaded in chunks (resumable).
pub const CHUNKED_ABOVE: u64 = 64 << 20;
/// The size of an upload chunk.
const CHUNK: u64 = 32 << 20;
/// Manifests and indexes larger than this are refused (the spec's limit is 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;
/// Whole-operation attempts (a blob download or upload that failed half-way).
const ATTEMPTS: u32 = 5;

/// What manifest GETs accept.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A manifest or index as fetched.
#[derive(Debug)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// One repository of one registry, with the token scopes its operations need.
pub struct Repo<'c> {
    client: &'c Client,
    api_host: String,
    repository: String,
    target: Target,
}

impl<'c> Repo<'c> {
    /// `reference`'s repository, for pulling (`push` false) or pushing; `mount_from`
    /// names repositories of the same registry whose blobs may be mounted (their pull
    /// scope is asked for with the same token).
    pub fn new(
        client: &'c Client,
        reference: &Reference,
        push: bool,
        mount_from: &[String],
    ) -> Self {
        let actions = if push { "pull,push" } else { "pull" };
        let mut scopes: Vec<String> = mount_from
            .iter()
            .filter(|r| **r != reference.repository)
            .map(|r| format!("repository:{r}:pull"))
            .collect();
        scopes.push(format!("repository:{}:{actions}", reference.repository));
        scopes.sort();
        scopes.dedup();
        Repo {
            client,
            api_host: reference.api_host().to_owned(),
            repository: reference.repository.clone(),
            target: Target {
                registry: reference.registry.clone(),
                repository: reference.repository.clone(),
                action: if push { "push" } else { "pull" },
                scopes,
            },
        }
    }

    fn send(
        &self,
        retry: Retry,
        build: &dyn Fn(&reqwest::blocking::Client, &str) -> reqwest::blocking::RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.client.send(&self.target, &self.api_host, retry, build)
    }

    fn url(&self, base: &str, tail: &str) -> String {
        format!("{base}/v2/{}/{tail}", self.repository)
    }

    /// GETs manifest `reference` (a tag or digest); a digest reference is verified.
    pub fn get_manifest(&self, reference: &str) -> Result<FetchedManifest, RegistryError> {
        let response = self.send(Retry::Yes, &|http, base| {
            http.get(self.url(base, &format!("manifests/{reference}")))
                .header(ACCEPT, MANIFEST_ACCEPT)
        })?;
        let response = check(response, &self.target, "GET", || {
            format!("image {}:{reference}", self.repository).replace(":sha256:", "@sha256:")
        })?;
        let header_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let mut bytes = Vec::new();
        response
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.connect_error(&e.to_string()))?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::Unsupported {
                reference: format!("{}:{reference}", self.repository),
                reason: format!("the manifest is larger than {MAX_MANIFEST} bytes"),
            });
        }
        let digest = Digest::of(&bytes);
        if let Ok(expected) = reference.parse::<Digest>() {
            if expected != digest {
                return Err(RegistryError::DigestMismatch {
                    registry: self.target.registry.clone(),
                    what: format!("manifest {reference}"),
                    expected,
                    actual: digest,
                });
            }
        }
        let media_type = media_types::declared(&bytes)
            .or(header_type)
            .unwrap_or_default();
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    fn connect_error(&self, reason: &str) -> RegistryError {
        RegistryError::Connect {
            registry: self.target.registry.clone(),
            url: format!(
                "{}/v2/{}",
                self.client.base_url(&self.api_host),
                self.repository
            ),
            reason: reason.to_owned(),
        }
    }

    /// Downloads blob `desc` into `store` unless it is there; its digest and size are
    /// checked while it streams, and nothing is kept if they are wrong. Returns whether
    /// anything was downloaded.
    pub fn fetch_blob(&self, desc: &Descriptor, store: &Store) -> Result<bool, RegistryError> {
        if store.has_blob(&desc.digest) {
            return Ok(false);
        }
        retry_whole(self.client, || self.fetch_once(desc, store))?;
        Ok(true)
    }

    fn fetch_once(&self, desc: &Descriptor, store: &Store) -> Result<(), RegistryError> {
        let digest = desc.digest;
        let response = self.send(Retry::Yes, &|http, base| {
            http.get(self.url(base, &format!("blobs/{digest}")))
        })?;
        let response = check(response, &self.target, "GET", || {
            format!("blob {digest} of {}", self.repository)
        });
        match response {
            Ok(response) => self.store_body(response, desc, store),
            // A foreign (non-distributable) layer: from where its descriptor says.
            Err(e @ RegistryError::NotFound { .. }) if !desc.urls.is_empty() => {
                self.fetch_from_urls(desc, store).map_err(|_| e)
            }
            Err(e) => Err(e),
        }
    }

    /// Tries each of a foreign layer's `urls` in turn, as Docker does.
    fn fetch_from_urls(&self, desc: &Descriptor, store: &Store) -> Result<(), RegistryError> {
        let mut last = None;
        for url in desc.urls.iter().filter(|u| u.starts_with("http")) {
            let outcome = match self.client.get_url(url) {
                Ok(r) if r.status().is_success() => self.store_body(r, desc, store),
                Ok(r) => Err(self.connect_error(&format!("GET {url}: status {}", r.status()))),
                Err(e) => Err(self.connect_error(&format!("GET {url}: {e}"))),
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| self.connect_error("no http(s) URL for a foreign layer")))
    }

    /// Streams a blob response into the store, checking its size and digest.
    fn store_body(
        &self,
        response: reqwest::blocking::Response,
        desc: &Descriptor,
        store: &Store,
    ) -> Result<(), RegistryError> {
        let digest = desc.digest;
        let mut writer = store.blob_writer()?;
        // One byte more than announced is enough to know the registry sent too much
        // (saturating: a hostile size of `u64::MAX` reads to the end, then mismatches).
        let limit = desc.size.saturating_add(1);
        let copied = std::io::copy(&mut response.take(limit), &mut writer)
            .map_err(|e| self.connect_error(&format!("downloading {digest}: {e}")))?;
        if copied != desc.size {
            return Err(RegistryError::SizeMismatch {
                registry: self.target.registry.clone(),
                what: format!("blob {digest}"),
                expected: desc.size,
                actual: copied,
            });
        }
        match writer.commit(Some(digest)) {
            Ok(_) => Ok(()),
            Err(crate::store::Error::DigestMismatch { expected, actual }) => {
                Err(RegistryError::DigestMismatch {
                    registry: self.target.registry.clone(),
                    what: format!("blob of {}", self.repository),
                    expected,
                    actual,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the registry has blob `digest` in this repository.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let response = self.send(Retry::Yes, &|http, base| {
            http.head(self.url(base, &format!("blobs/{digest}")))
        })?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => check(response, &self.target, "HEAD", || format!("blob {digest}")).map(|_| false),
        }
    }

    /// Uploads blob `desc` from `store`, mounting it from `mount_from` (a repository of
    /// the same registry that has it) when given. Returns whether it was mounted.
    pub fn upload_blob(
        &self,
        desc: &Descriptor,
        store: &Store,
        mount_from: Option<&str>,
    ) -> Result<bool, RegistryError> {
        retry_whole(self.client, || {
            let session = self.start_upload(&desc.digest, mount_from)?;
            let Some(location) = session else {
                return Ok(true);
            };
            if desc.size > CHUNKED_ABOVE {
                self.upload_chunked(desc, store, location)?;
            } else {
                self.upload_whole(desc, store, &location)?;
            }
            Ok(false)
        })
    }

    /// POSTs an upload session (`None`: the blob was mounted instead).
    fn start_upload(
        &self,
        digest: &Digest,
        mount_from: Option<&str>,
    ) -> Result<Option<String>, RegistryError> {
        let response = self.send(Retry::Yes, &|http, base| {
            let mut url = self.url(base, "blobs/uploads/");
            if let Some(from) = mount_from {
                url = format!("{url}?mount={digest}&from={from}");
            }
            http.post(url).header(CONTENT_LENGTH, "0")
        })?;
        if response.status().as_u16() == 201 && mount_from.is_some() {
            return Ok(None);
        }
        let response = check(response, &self.target, "POST", || {
            format!("repository {} (upload)", self.repository)
        })?;
        self.location(&response).map(Some)
    }

    fn location(&self, response: &Response) -> Result<String, RegistryError> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Status {
                registry: self.target.registry.clone(),
                method: "POST".into(),
                path: response.url().path().to_owned(),
                status: response.status().as_u16(),
                detail: "no upload location in the answer".into(),
            })?;
        Ok(absolute(response.url(), location))
    }

    fn upload_whole(
        &self,
        desc: &Descriptor,
        store: &Store,
        location: &str,
    ) -> Result<(), RegistryError> {
        let url = with_digest(location, &desc.digest);
        let path = store.blob_path(&desc.digest);
        let response = self.send(Retry::No, &|http, _| {
            let body = match File::open(&path) {
                Ok(file) => Body::sized(file, desc.size),
                // Reported by the size check of the registry; the store check finds it.
                Err(_) => Body::from(Vec::new()),
            };
            http.put(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, desc.size)
                .body(body)
        })?;
        check(response, &self.target, "PUT", || {
            format!("upload of {}", desc.digest)
        })?;
        Ok(())
    }

    fn upload_chunked(
        &self,
        desc: &Descriptor,
        store: &Store,
        mut location: String,
    ) -> Result<(), RegistryError> {
        let path = store.blob_path(&desc.digest);
        let mut offset = 0u64;
        let mut failures = 0u32;
        while offset < desc.size {
            let len = CHUNK.min(desc.size - offset);
            let sent = self.send(Retry::No, &|http, _| {
                let body = match open_at(&path, offset) {
                    Ok(file) => Body::sized(file.take(len), len),
                    Err(_) => Body::from(Vec::new()),
                };
                http.patch(&location)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, len)
                    .header(CONTENT_RANGE, format!("{}-{}", offset, offset + len - 1))
                    .body(body)
            });
            let outcome = sent.and_then(|r| {
                check(r, &self.target, "PATCH", || {
                    format!("upload of {}", desc.digest)
                })
            });
            match outcome {
                Ok(response) => {
                    location = self.location(&response)?;
                    let end = offset + len; // <= desc.size: no overflow
                    offset = self.chunk_end(upload_end(&response), offset, end, &desc.digest)?;
                    failures = 0;
                }
                Err(e) if is_transient(&e) && failures + 1 < ATTEMPTS => {
                    failures += 1;
                    std::thread::sleep(self.client.backoff(failures));
                    // Where does the registry say the upload stands?
                    let status = self.send(Retry::Yes, &|http, _| http.get(&location))?;
                    if status.status().as_u16() != 204 {
                        // The session is gone: the whole upload starts over.
                        return Err(e);
                    }
                    location = self.location(&status).unwrap_or(location);
                    offset = upload_end(&status).unwrap_or(0);
                    if offset > desc.size {
                        return Err(self.bad_range(&desc.digest, offset, desc.size));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let url = with_digest(&location, &desc.digest);
        let response = self.send(Retry::Yes, &|http, _| {
            http.put(&url).header(CONTENT_LENGTH, "0")
        })?;
        check(response, &self.target, "PUT", || {
            format!("upload of {}", desc.digest)
        })?;
        Ok(())
    }

    /// Where an upload stands after a chunk `offset..end` was accepted: the registry's
    /// `Range` when it gives one, which must be past `offset` (no progress would loop
    /// forever) and not past `end`.
    fn chunk_end(
        &self,
        reported: Option<u64>,
        offset: u64,
        end: u64,
        digest: &Digest,
    ) -> Result<u64, RegistryError> {
        match reported {
            None => Ok(end),
            Some(at) if at > offset && at <= end => Ok(at),
            Some(at) => Err(self.bad_range(digest, at, end)),
        }
    }

    fn bad_range(&self, digest: &Digest, at: u64, sent: u64) -> RegistryError {
        RegistryError::UploadRange {
            registry: self.target.registry.clone(),
            digest: *digest,
            at,
            sent,
        }
    }

    /// PUTs a manifest or index (its exact bytes) under `reference` (a tag or its
    /// digest); returns the digest the registry names.
    pub fn put_manifest(
        &self,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let response = self.send(Retry::Yes, &|http, base| {
            http.put(self.url(base, &format!("manifests/{reference}")))
                .header(CONTENT_TYPE, media_type)
                .body(bytes.to_vec())
        })?;
        let response = check(response, &self.target, "PUT", || {
            format!("manifest {}:{reference}", self.repository)
        })?;
        let ours = Digest::of(bytes);
        if let Some(theirs) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
        {
            if theirs != ours {
                return Err(RegistryError::DigestMismatch {
                    registry: self.target.registry.clone(),
                    what: format!("manifest {}:{reference} as stored", self.repository),
                    expected: ours,
                    actual: theirs,
                });
            }
        }
        Ok(ours)
    }
}

fn open_at(path: &std::path::Path, offset: u64) -> std::io::Result<File> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    Ok(file)
}

/// The byte after the last one the registry has (`Range: 0-N` -> N+1).
fn upload_end(response: &Response) -> Option<u64> {
    range_end(response.headers().get(RANGE)?.to_str().ok()?)
}

/// `0-N` -> N+1; `None` when unreadable or when N+1 does not fit.
fn range_end(range: &str) -> Option<u64> {
    let end = range.rsplit('-').next()?.trim().parse::<u64>().ok()?;
    end.checked_add(1)
}

/// `location` (possibly relative) resolved against the URL that gave it.
fn absolute(base: &reqwest::Url, location: &str) -> String {
    base.join(location)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| location.to_owned())
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// Whether an operation that failed this way may succeed when started again.
pub fn is_transient(error: &RegistryError) -> bool {
    match error {
        RegistryError::Connect { .. } => true,
        RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

/// Runs `op` again (with backoff) while it fails transiently, up to [`ATTEMPTS`] times.
fn retry_whole<T>(
    client: &Client,
    mut op: impl FnMut() -> Result<T, RegistryError>,
) -> Result<T, RegistryError> {
    let mut attempt = 0;
    loop {
        match op() {
            Err(e) if is_transient(&e) && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(client.backoff(attempt));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_digests_compose() {
        let base = reqwest::Url::parse("http://r:5000/v2/a/blobs/uploads/").unwrap();
        assert_eq!(
            absolute(&base, "/v2/a/blobs/uploads/u1?_state=x"),
            "http://r:5000/v2/a/blobs/uploads/u1?_state=x"
        );
        assert_eq!(absolute(&base, "https://other/up/1"), "https://other/up/1");
        let d = Digest::of(b"x");
        assert_eq!(
            with_digest("http://r/u?s=1", &d),
            format!("http://r/u?s=1&digest={d}")
        );
        assert_eq!(
            with_digest("http://r/u", &d),
            format!("http://r/u?digest={d}")
        );
        assert_eq!(
            media_types::declared(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(media_types::OCI_INDEX)
        );
    }

    /// Answers every HTTP request on 127.0.0.1 with `head` (status line and headers,
    /// without the blank line) and `body`; the port.
    fn fake_registry(head: &'static str, body: &'static [u8]) -> u16 {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.read(&mut [0u8; 8192]);
                let reply = format!(
                    "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
                let _ = stream.write_all(body);
            }
        });
        port
    }

    fn test_client(dir: &std::path::Path) -> Client {
        Client::new(super::super::RegistryOptions {
            retries: 0,
            credential_files: super::super::CredentialFiles {
                auth_files: Vec::new(),
                docker_config: dir.join("no-config.json"),
                helper_dir: None,
            },
            ..Default::default()
        })
    }

    /// A descriptor size of `u64::MAX` (a hostile manifest) is a size mismatch naming
    /// both sizes; before, `size + 1` overflowed (a panic in debug builds, "is 0 bytes"
    /// in release builds).
    #[test]
    fn a_blob_size_of_u64_max_is_a_clear_mismatch() {
        let port = fake_registry("HTTP/1.1 200 OK", b"0123456789");
        let dir = tempfile::tempdir().unwrap();
        let client = test_client(dir.path());
        let reference = Reference::parse(&format!("127.0.0.1:{port}/test/huge")).unwrap();
        let repo = Repo::new(&client, &reference, false, &[]);
        let store = Store::open(&dir.path().join("store")).unwrap();
        let desc = Descriptor::new("application/octet-stream", Digest::of(b"x"), u64::MAX);
        let err = repo.fetch_blob(&desc, &store).unwrap_err().to_string();
        assert!(
            err.contains("18446744073709551615") && err.contains(" 10 bytes"),
            "{err}"
        );
    }

    #[test]
    fn upload_ranges_are_checked() {
        assert_eq!(range_end("0-99"), Some(100));
        assert_eq!(range_end("bytes=0-0"), Some(1));
        assert_eq!(range_end(&format!("0-{}", u64::MAX)), None, "N+1 overflows");
        assert_eq!(range_end("0-x"), None);
        let dir = tempfile::tempdir().unwrap();
        let client = test_client(dir.path());
        let reference = Reference::parse("127.0.0.1:9/test/up").unwrap();
        let repo = Repo::new(&client, &reference, true, &[]);
        let d = Digest::of(b"x");
        assert_eq!(repo.chunk_end(None, 10, 20, &d).unwrap(), 20);
        assert_eq!(repo.chunk_end(Some(15), 10, 20, &d).unwrap(), 15);
        assert_eq!(repo.chunk_end(Some(20), 10, 20, &d).unwrap(), 20);
        // No progress (a registry that always says `0-0`) or more than was sent.
        for bad in [1, 10, 21, u64::MAX] {
            let err = repo
                .chunk_end(Some(bad), 10, 20, &d)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("holds {bad} bytes")), "{err}");
        }
    }
}
