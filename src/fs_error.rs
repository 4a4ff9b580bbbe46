//! The one `map_err` helper for filesystem errors: an `io::Error` given the operation
//! and the path it is about.
//!
//! Every module's error type has a variant for a failed operation on a path (`Io`,
//! `Fs`); it names that variant by implementing [`FsError`], and callers write
//! `.map_err(Error::fs("read", &path))`. The path is copied only when the operation
//! fails.

use std::io;
use std::path::PathBuf;

/// An error type with a variant for a failed filesystem operation on a path.
pub trait FsError: Sized {
    /// The variant for `op` (`read`, `create directory`, ...) on `path` failing with
    /// `source`.
    fn from_io(op: &'static str, path: PathBuf, source: io::Error) -> Self;

    /// A closure for `map_err` turning the `io::Error` of `op` on `path` into `Self`.
    fn fs<P: Into<PathBuf>>(op: &'static str, path: P) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::from_io(op, path.into(), source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[derive(Debug)]
    struct Failed(&'static str, PathBuf, io::ErrorKind);

    impl FsError for Failed {
        fn from_io(op: &'static str, path: PathBuf, source: io::Error) -> Self {
            Failed(op, path, source.kind())
        }
    }

    #[test]
    fn names_operation_path_and_cause() {
        let path = Path::new("/no/such/file");
        let err = std::fs::read(path)
            .map_err(Failed::fs("read", path))
            .unwrap_err();
        assert_eq!(err.0, "read");
        assert_eq!(err.1, path);
        assert_eq!(err.2, io::ErrorKind::NotFound);
    }
}
