//! The build cache outside the store: `--cache-from` read before the stages
//! ([`RemoteCache`]: the records of every imported cache, consulted when the store has
//! none, their layer blobs fetched only when something needs their content) and
//! `--cache-to` written after the image ([`export_caches`]: the records of the target's
//! chain, `mode=min`, or of every stage built, `mode=max`, as an OCI artifact pushed to
//! a registry or written as an OCI layout directory; `type=inline`: in the image's
//! config, [`with_inline_cache`]). The format is
//! [`crate::cache::CacheDescription`]'s.

mod export;
mod import;
mod mounts;

pub use export::{export_caches, with_inline_cache};
pub use import::RemoteCache;
