//! `.dockerignore` patterns and matching (filled in by the ignore matcher work).
