//! Store errors: every variant names the path, digest or image it is about.
//!
//! I/O errors always carry the path and the operation (`cannot rename `tmp/x` ...`),
//! never a bare `io::Error`.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::fs_error::FsError;

/// What went wrong in the on-disk store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("cannot {op} `{}`: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A blob the caller asked for is not in the store.
    #[error("blob {digest} not found in the store")]
    BlobNotFound { digest: Digest },
    /// Written content does not have the digest the caller expected.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// A blob on disk does not have the size its descriptor says.
    #[error("blob {digest} has {actual} bytes, expected {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    /// A blob that is read whole (a manifest, config or index) is implausibly large.
    #[error("blob {digest} has {size} bytes, more than the {limit} a manifest or config may have")]
    BlobTooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    /// `oci-layout` names an image-layout version this store does not speak.
    #[error("`{}` declares image layout version {found:?}, expected \"1.0.0\"", path.display())]
    LayoutVersion { path: PathBuf, found: String },
    /// A JSON file of the layout (`oci-layout`, `index.json`) cannot be parsed.
    #[error("`{}` is not valid: {source}", path.display())]
    CorruptFile {
        path: PathBuf,
        #[source]
        source: crate::image::JsonError,
    },
    /// A manifest or index blob cannot be parsed.
    #[error("blob {digest} is not a valid {what}: {source}")]
    CorruptBlob {
        digest: Digest,
        what: &'static str,
        #[source]
        source: crate::image::JsonError,
    },
    /// Serializing a record failed (a bug: our types always serialize).
    #[error("cannot serialize {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A string is not a valid image name.
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// No image has this name (or digest).
    #[error("image {name:?} not found")]
    ImageNotFound { name: String },
    /// An image ID or digest prefix matches several images.
    #[error("{prefix:?} is ambiguous: it matches {count} images: {candidates}; give more digits or a name")]
    AmbiguousId {
        prefix: String,
        count: usize,
        candidates: String,
    },
    /// A setting of `config.json` has a value that cannot be used.
    #[error("`{}`: invalid {key} {value:?}", path.display())]
    InvalidSetting {
        path: PathBuf,
        key: &'static str,
        value: String,
    },
    /// A name would point at an image whose blobs are not all in the store.
    #[error("cannot name image {name:?}: blob {missing} it refers to is not in the store")]
    Incomplete { name: String, missing: Digest },
}

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl FsError for Error {
    fn from_io(op: &'static str, path: PathBuf, source: io::Error) -> Self {
        Error::Io { op, path, source }
    }
}
