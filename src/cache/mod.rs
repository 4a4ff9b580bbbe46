//! The build cache: keys, records of step results, the stat cache of context files,
//! and the explanation of misses.
//!
//! | file | owns |
//! |---|---|
//! | `key.rs` | [`KeyBuilder`]: the versioned canonical encoding of a step's inputs |
//! | `record.rs` | [`Records`]: `cache/records/<key>.json`, step key -> layer (or none) |
//! | `blob_stamp.rs` | [`BlobStamp`]: is a record's blob still the verified file? |
//! | `check.rs` | [`check_records`]: the records' part of `rbuild store check` |
//! | `explain.rs` | [`BuildLogs`] and [`explain()`]: why a step missed |
//! | `stat/` | [`StatCache`]: (path, size, mtime, ctime, inode, device) -> content digest, racily clean entries read again |
//! | `portable.rs` | [`CacheDescription`]: the records `--cache-to` exports and `--cache-from` reads, as an OCI artifact |
//! | `prune.rs` | [`prune()`]: what goes (dangling, least recently used, `--all`), exactly how many bytes |
//! | `du.rs` | [`usage()`]: the store by kind, blobs by what refers to them, what a prune would reclaim |
//!
//! What a key contains is decided by the plan and the executor (which know the step);
//! this module only encodes, stores and compares.

mod blob_stamp;
mod check;
mod du;
mod error;
mod explain;
mod key;
mod portable;
mod prune;
mod record;
mod stat;

pub use blob_stamp::{judge, BlobStamp, BlobState};
pub use check::check_records;
pub use du::{usage, BlobClasses, KindUsage, Tally, UsageReport};
pub use error::{CacheError, Result};
pub use explain::{explain, BuildLogs, StageLog, StepInputs};
pub use key::{CacheKey, Inputs, KeyBuilder, KEY_VERSION};
pub use portable::{
    artifact_manifest, check_manifest, CacheDescription, DescriptionError, PortableMount,
    PortableRecord, CACHE_MEDIA_TYPE, DESCRIPTION_VERSION, INLINE_CONFIG_KEY, MAX_DESCRIPTION,
};
pub use prune::{prune, PruneOptions, PruneReport, Removed};
pub use record::{LayerRecord, Record, Records};
pub use stat::{hash_file, hash_reader, StatCache};
