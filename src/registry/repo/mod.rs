//! The distribution API calls on one repository: manifests (GET/PUT), blobs (HEAD, GET
//! into the store with digest and size verified as they stream, cross-repository
//! mount, upload). Pull and push are sequences of these.
//!
//! Uploads stream from the store's blob file, never from memory: a blob up to
//! [`CHUNKED_ABOVE`](blob_upload::CHUNKED_ABOVE) goes in one `PUT`; a larger one in `PATCH` chunks, and a failed
//! chunk resumes where the registry says the upload stands (`GET` on the session)
//! instead of starting over. A failure the registry may not have (a dropped connection,
//! `5xx`, `429`) is retried with backoff; anything else is reported at once.

mod blob_fetch;
mod blob_upload;

use std::io::Read;

use reqwest::blocking::Response;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::auth::Target;
use super::client::{check, Client, Retry};
use super::error::RegistryError;
use super::reference::Reference;
use crate::digest::Digest;
use crate::image::media_types;

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

    pub(super) fn send(
        &self,
        retry: Retry,
        build: &dyn Fn(&reqwest::blocking::Client, &str) -> reqwest::blocking::RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.client.send(&self.target, &self.api_host, retry, build)
    }

    pub(super) fn url(&self, base: &str, tail: &str) -> String {
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

    pub(super) fn connect_error(&self, reason: &str) -> RegistryError {
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

    /// The client this repository's calls go through.
    pub fn client(&self) -> &'c Client {
        self.client
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

/// Whether an operation that failed this way may succeed when started again.
pub(super) fn is_transient(error: &RegistryError) -> bool {
    match error {
        RegistryError::Connect { .. } => true,
        RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

/// Runs `op` again (with backoff) while it fails transiently, up to [`ATTEMPTS`] times.
pub(super) fn retry_whole<T>(
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
mod tests;
