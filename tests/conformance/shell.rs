//! Conformance corpus: `shell` (filled in with the shell work).
