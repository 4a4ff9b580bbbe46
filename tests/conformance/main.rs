//! Conformance tests: BuildKit's own test vectors, read from `../shared/conformance/`.
//!
//! Each corpus test prints `N passed, M failed` and fails if any vector fails. Vectors we
//! deliberately do not follow are listed in `testdata/conformance-exceptions.txt`.

mod convert;
mod dockerignore;
mod dockerignore_context;
mod instructions;
mod parser;
mod parser_functions;
mod shell;
mod support;
mod values;
