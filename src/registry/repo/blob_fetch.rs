//! Blob downloads: streamed into the store with digest and size checked on the way
//! (nothing is kept if they are wrong), retried whole while failures are transient;
//! foreign layers from the URLs their descriptors name.

use std::io::Read;

use super::{retry_whole, Repo};
use crate::image::Descriptor;
use crate::registry::client::{check, Retry};
use crate::registry::error::RegistryError;
use crate::registry::transfer::Meter;
use crate::store::Store;

impl Repo<'_> {
    /// Downloads blob `desc` into `store` unless it is there; its digest and size are
    /// checked while it streams, and nothing is kept if they are wrong; `meter` counts
    /// the bytes received. Returns whether anything was downloaded.
    pub fn fetch_blob(
        &self,
        desc: &Descriptor,
        store: &Store,
        meter: &Meter,
    ) -> Result<bool, RegistryError> {
        if store.has_blob(&desc.digest) {
            return Ok(false);
        }
        retry_whole(self.client, || {
            meter.set(0);
            self.fetch_once(desc, store, meter)
        })?;
        Ok(true)
    }

    fn fetch_once(
        &self,
        desc: &Descriptor,
        store: &Store,
        meter: &Meter,
    ) -> Result<(), RegistryError> {
        let digest = desc.digest;
        let response = self.send(Retry::Yes, &|http, base| {
            http.get(self.url(base, &format!("blobs/{digest}")))
        })?;
        let response = check(response, &self.target, "GET", || {
            format!("blob {digest} of {}", self.repository)
        });
        match response {
            Ok(response) => self.store_body(meter.reader(response), desc, store),
            // A foreign (non-distributable) layer: from where its descriptor says.
            Err(e @ RegistryError::NotFound { .. }) if !desc.urls.is_empty() => {
                self.fetch_from_urls(desc, store, meter).map_err(|_| e)
            }
            Err(e) => Err(e),
        }
    }

    /// Tries each of a foreign layer's `urls` in turn, as Docker does.
    fn fetch_from_urls(
        &self,
        desc: &Descriptor,
        store: &Store,
        meter: &Meter,
    ) -> Result<(), RegistryError> {
        let mut last = None;
        for url in desc.urls.iter().filter(|u| u.starts_with("http")) {
            meter.set(0);
            let outcome = match self.client.get_url(url) {
                Ok(r) if r.status().is_success() => self.store_body(meter.reader(r), desc, store),
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
        response: impl Read,
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
}
