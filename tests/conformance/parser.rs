//! Conformance corpus: `parser` (filled in with the parser work).
