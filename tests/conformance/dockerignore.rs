//! Conformance corpus: `dockerignore` (filled in with the dockerignore work).
