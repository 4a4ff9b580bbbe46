//! Blob uploads, streamed from the store's blob file: a cross-repository mount when
//! possible, one `PUT` up to [`CHUNKED_ABOVE`], resumable `PATCH` chunks above it (a
//! failed chunk resumes where the registry says the upload stands).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use reqwest::blocking::{Body, Response};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};

use super::{is_transient, retry_whole, Repo, ATTEMPTS};
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::registry::client::{check, Retry};
use crate::registry::error::RegistryError;
use crate::registry::transfer::Meter;
use crate::store::Store;

/// Blobs larger than this are uploaded in chunks (resumable).
pub const CHUNKED_ABOVE: u64 = 64 << 20;
/// The size of an upload chunk.
const CHUNK: u64 = 32 << 20;

impl Repo<'_> {
    /// Uploads blob `desc` from `store`, mounting it from `mount_from` (a repository of
    /// the same registry that has it) when given; `meter` counts the bytes sent.
    /// Returns whether it was mounted.
    pub fn upload_blob(
        &self,
        desc: &Descriptor,
        store: &Store,
        mount_from: Option<&str>,
        meter: &Meter,
    ) -> Result<bool, RegistryError> {
        retry_whole(self.client, || {
            meter.set(0);
            let session = self.start_upload(&desc.digest, mount_from)?;
            let Some(location) = session else {
                return Ok(true);
            };
            if desc.size > CHUNKED_ABOVE {
                self.upload_chunked(desc, store, location, meter)?;
            } else {
                self.upload_whole(desc, store, &location, meter)?;
            }
            Ok(false)
        })
    }

    /// Mounts blob `digest` from repository `from` of the same registry; whether the
    /// registry did (a refused mount leaves an unused upload session, which expires).
    pub fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool, RegistryError> {
        Ok(self.start_upload(digest, Some(from))?.is_none())
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
        meter: &Meter,
    ) -> Result<(), RegistryError> {
        let url = with_digest(location, &desc.digest);
        let path = store.blob_path(&desc.digest);
        let response = self.send(Retry::No, &|http, _| {
            meter.set(0);
            let body = match File::open(&path) {
                Ok(file) => Body::sized(meter.reader(file), desc.size),
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
        meter: &Meter,
    ) -> Result<(), RegistryError> {
        let path = store.blob_path(&desc.digest);
        let mut offset = 0u64;
        let mut failures = 0u32;
        while offset < desc.size {
            let len = CHUNK.min(desc.size - offset);
            let sent = self.send(Retry::No, &|http, _| {
                meter.set(offset);
                let body = match open_at(&path, offset) {
                    Ok(file) => Body::sized(meter.reader(file.take(len)), len),
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
    pub(super) fn chunk_end(
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
pub(super) fn range_end(range: &str) -> Option<u64> {
    let end = range.rsplit('-').next()?.trim().parse::<u64>().ok()?;
    end.checked_add(1)
}

/// `location` (possibly relative) resolved against the URL that gave it.
pub(super) fn absolute(base: &reqwest::Url, location: &str) -> String {
    base.join(location)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| location.to_owned())
}

pub(super) fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}
