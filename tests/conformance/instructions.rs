//! Conformance corpus: `instructions` (filled in with the instructions work).
