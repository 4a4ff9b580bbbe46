//! Layers: everything between "a directory of changes" and "a content-addressed,
//! compressed layer blob", and back.
//!
//! ```text
//! overlay upperdir ─┐
//! full tree ────────┼─> ChangeSet ─> tar writer ─> sha256 (diff ID) ─> gzip/zstd ─> sha256 ─> sink
//! two trees (diff) ─┘                                                        (LayerBlob)
//! layer stream ─> decompress ─> tar reader ─> apply (whiteouts as overlay or deletions)
//!
//! native snapshotter: snapshots ─> flatten ─> step root ─(step)─> diff against the
//!                     snapshots ─> ChangeSet ─> tar writer, and ─> materialize ─> snapshot
//! ```
//!
//! | file | owns |
//! |---|---|
//! | `changes.rs` | [`ChangeSet`], the upperdir and full-tree walkers, tar order |
//! | `diff.rs` | the native differ: two trees, or a snapshot stack and a tree |
//! | `stack.rs` | the merged view of overlay-form snapshots, read without mounting |
//! | `flatten.rs` | native snapshotter: [`flatten()`] a stack into a step root, [`materialize`] a snapshot |
//! | `compare.rs` | [`first_difference`]: two trees compared entry by entry |
//! | `clone.rs` | copying one object with owner, mode, xattrs, times, hardlinks |
//! | `tar_write.rs` | deterministic USTAR+PAX writing, whiteouts, hardlinks, xattrs; refuses `.wh.` names |
//! | `tar_read/` | USTAR/GNU/PAX reading, meta headers per entry and capped as Go caps them; `fields.rs` decodes numeric fields, checksums and binary-safe PAX records |
//! | `compress.rs`, `pargz.rs` | [`Compression`], media types, encoders/decoders, parallel gzip |
//! | `blob.rs` | [`write_layer`]: the one streaming pass and [`LayerBlob`] |
//! | `apply/` | [`apply_layer`]: extraction that never leaves the target; `meta.rs` restores owner, mode, xattrs and times, `whiteout.rs` carries out whiteouts |
//! | `resolve.rs` | [`resolve_in_root`] and the no-symlink directory walk the applier uses |
//! | `overlay.rs` | [`OverlayMount`]: a step's overlay and its RAII unmount |
//! | `sys.rs` | syscall helpers; the module's only `unsafe` |
//! | `error.rs` | [`Error`] |
//!
//! This module knows nothing of Dockerfiles: the executor decides what to mount and
//! which directory to turn into a layer.

mod apply;
mod blob;
mod changes;
mod clone;
mod compare;
mod compress;
mod diff;
mod error;
mod flatten;
mod overlay;
mod pargz;
mod patch;
mod resolve;
#[cfg(test)]
mod roundtrip_tests;
mod stack;
mod sys;
mod tar_chunks;
mod tar_read;
mod tar_write;
#[cfg(test)]
mod testutil;

pub use apply::{apply_layer, Applied, ApplyOptions, WhiteoutMode};
pub use blob::{
    compress_tar, write_changes, write_indexed, write_layer, Changes, LayerBlob, WriteOptions,
    Written,
};
pub use changes::{tree_changes, upperdir_changes, Change, ChangeKind, ChangeSet};
pub use compare::first_difference;
pub use compress::{
    diff_id_of, docker_media_type, Compression, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL,
    DOCKER_MEDIA_TYPE_GZIP, DOCKER_MEDIA_TYPE_TAR, MEDIA_TYPE_GZIP, MEDIA_TYPE_TAR,
    MEDIA_TYPE_ZSTD,
};
pub use diff::diff;
pub use error::{Error, HeaderProblem, Result, UnsafeReason};
pub use flatten::{flatten, materialize, FlatRoot};
pub use overlay::{OverlayMount, OverlaySpec, MAX_LOWERDIRS};
pub use patch::{LayerChunks, PatchBase};
pub use resolve::resolve_in_root;
pub use stack::has_whiteouts;
pub use tar_read::header_checksum_ok;
pub use tar_write::{write_tar, TarOptions};
