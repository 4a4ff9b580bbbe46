//! Image assembly and export errors: each names the blob, image or path it is about.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::fs_error::FsError;
use crate::image::{Format, JsonError};
use crate::store;

/// What went wrong assembling or exporting an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed (its error names the blob or path).
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Serializing a manifest, config or index failed (a bug: our types serialize).
    #[error("cannot serialize {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A manifest, config or index blob cannot be parsed.
    #[error("blob {digest} is not a valid {what}: {source}")]
    Decode {
        digest: Digest,
        what: &'static str,
        #[source]
        source: JsonError,
    },
    /// The config lists a different number of layers than were given.
    #[error("the image config lists {config} layer diff IDs but {layers} layers were given")]
    LayerCount { config: usize, layers: usize },
    /// A layer's media type cannot be written in the requested format.
    #[error(
        "layer {digest} has media type {media_type:?}, which {format} manifests cannot express"
    )]
    LayerMediaType {
        digest: Digest,
        media_type: String,
        format: Format,
    },
    /// An archive to load is malformed (names the archive and what is wrong).
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    /// A blob in the store does not have the size its descriptor says.
    #[error("blob {digest} has {actual} bytes in the store, its descriptor says {expected}")]
    BlobSize {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    /// The content is not something this operation can handle (an index where a single
    /// image is needed, an unknown media type).
    #[error("{digest} has media type {media_type:?}: {reason}")]
    Unsupported {
        digest: Digest,
        media_type: String,
        reason: &'static str,
    },
    /// A blob read back from the store does not match its digest.
    #[error("blob {digest} in the store is corrupt: its content hashes to {actual}")]
    BlobCorrupt { digest: Digest, actual: Digest },
    /// Writing the export stream failed.
    #[error("cannot write the export stream: {source}")]
    Output {
        #[source]
        source: io::Error,
    },
    /// A filesystem operation on an export destination failed.
    #[error("cannot {op} `{}`: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A directory export destination exists and is not empty.
    #[error("export destination `{}` is not empty", path.display())]
    DestinationNotEmpty { path: PathBuf },
}

/// Result of assembly and exports.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl FsError for Error {
    fn from_io(op: &'static str, path: PathBuf, source: io::Error) -> Self {
        Error::Io { op, path, source }
    }
}
