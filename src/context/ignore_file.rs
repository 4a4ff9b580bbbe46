//! Choosing and loading the ignore file of a build.
//!
//! BuildKit's rule: `<dockerfile-name>.dockerignore` next to the Dockerfile (for example
//! `build/Dockerfile.dev.dockerignore`) wins over the file at the context root. At the
//! root, podman's `.containerignore` wins over `.dockerignore` (podman and buildah read
//! it first; docker reads only `.dockerignore`, so a project with both keeps them the
//! same). A named context (`--build-context NAME=DIR`) reads only the `.dockerignore`
//! at its root, as BuildKit does. A missing file is normal; an unreadable or invalid one
//! is an error naming the file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use crate::parser::ignore::{read_all, IgnoreMatcher};

/// A loaded ignore file.
#[derive(Debug, Clone)]
pub struct IgnoreFile {
    path: PathBuf,
    patterns: Vec<String>,
    matcher: IgnoreMatcher,
}

impl IgnoreFile {
    /// Where the patterns came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The patterns as read from the file.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The compiled patterns.
    pub fn matcher(&self) -> &IgnoreMatcher {
        &self.matcher
    }
}

/// Finds and loads the ignore file for the Dockerfile at `dockerfile` (a path as given
/// on the command line) building `context_dir`. `Ok(None)` when there is none.
pub fn dockerignore_for(context_dir: &Path, dockerfile: &Path) -> Result<Option<IgnoreFile>> {
    first_of(context_dir, candidates(context_dir, dockerfile))
}

/// The `.dockerignore` at the root of a named context's directory (`--build-context`):
/// BuildKit reads that file only, whatever the Dockerfile is called.
pub fn root_dockerignore(dir: &Path) -> Result<Option<IgnoreFile>> {
    first_of(dir, vec![dir.join(".dockerignore")])
}

/// The first of `paths` that exists, loaded.
fn first_of(context_dir: &Path, paths: Vec<PathBuf>) -> Result<Option<IgnoreFile>> {
    for path in paths {
        if leads_out(context_dir, &path) {
            return Err(Error::IgnoreFileOutside { path });
        }
        match fs::read(&path) {
            Ok(bytes) => return load(path, &bytes).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::ReadIgnoreFile { path, source }),
        }
    }
    Ok(None)
}

/// Loads the ignore file named by the user (`--ignorefile`): it must exist.
pub fn read_ignore_file(path: &Path) -> Result<IgnoreFile> {
    match fs::read(path) {
        Ok(bytes) => load(path.to_owned(), &bytes),
        Err(source) => Err(Error::ReadIgnoreFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether `path`, a file inside `context_dir`, is a symlink whose target is outside
/// it (a context is often someone else's: its links must not read host files).
fn leads_out(context_dir: &Path, path: &Path) -> bool {
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return false;
    }
    let Ok(ctx) = fs::canonicalize(context_dir) else {
        return false;
    };
    let inside_ctx = path
        .parent()
        .and_then(|p| fs::canonicalize(p).ok())
        .is_some_and(|p| p.starts_with(&ctx));
    inside_ctx && !fs::canonicalize(path).is_ok_and(|t| t.starts_with(&ctx))
}

/// The candidate files, most specific first.
fn candidates(context_dir: &Path, dockerfile: &Path) -> Vec<PathBuf> {
    let mut out = Vec::with_capacity(3);
    if let Some(name) = dockerfile.file_name() {
        let mut ignore_name = name.to_os_string();
        ignore_name.push(".dockerignore");
        out.push(dockerfile.with_file_name(ignore_name));
    }
    out.push(context_dir.join(".containerignore"));
    out.push(context_dir.join(".dockerignore"));
    out
}

fn load(path: PathBuf, bytes: &[u8]) -> Result<IgnoreFile> {
    let parsed = read_all(bytes).and_then(|patterns| {
        let matcher = IgnoreMatcher::new(&patterns)?;
        Ok((patterns, matcher))
    });
    match parsed {
        Ok((patterns, matcher)) => Ok(IgnoreFile {
            path,
            patterns,
            matcher,
        }),
        Err(source) => Err(Error::IgnoreFile { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_specific_file_wins() {
        let ctx = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join(".dockerignore"), "a\n").unwrap();
        fs::write(ctx.path().join("Dockerfile.dev.dockerignore"), "b\n").unwrap();
        let dev = dockerignore_for(ctx.path(), &ctx.path().join("Dockerfile.dev"))
            .unwrap()
            .unwrap();
        assert_eq!(dev.patterns(), ["b"]);
        assert!(dev.path().ends_with("Dockerfile.dev.dockerignore"));
        let plain = dockerignore_for(ctx.path(), &ctx.path().join("Dockerfile"))
            .unwrap()
            .unwrap();
        assert_eq!(plain.patterns(), ["a"]);
        assert!(plain.matcher().matches("a/x").unwrap());
    }

    #[test]
    fn containerignore_wins_over_dockerignore_at_the_root() {
        let ctx = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join(".dockerignore"), "a\n").unwrap();
        fs::write(ctx.path().join(".containerignore"), "c\n").unwrap();
        let file = dockerignore_for(ctx.path(), &ctx.path().join("Containerfile"))
            .unwrap()
            .unwrap();
        assert_eq!(file.patterns(), ["c"]);
    }

    #[test]
    fn missing_is_none_and_invalid_names_the_file() {
        let ctx = tempfile::tempdir().unwrap();
        assert!(dockerignore_for(ctx.path(), Path::new("Dockerfile"))
            .unwrap()
            .is_none());
        fs::write(ctx.path().join(".dockerignore"), "!\n").unwrap();
        let err = dockerignore_for(ctx.path(), Path::new("Dockerfile")).unwrap_err();
        assert!(err.to_string().contains(".dockerignore"), "{err}");
        assert!(matches!(err, Error::IgnoreFile { .. }));
    }

    #[test]
    fn an_ignore_file_linking_out_of_the_context_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir(&ctx).unwrap();
        fs::write(t.path().join("host-file"), "secret\n").unwrap();
        std::os::unix::fs::symlink("../host-file", ctx.join(".dockerignore")).unwrap();
        let err = dockerignore_for(&ctx, &ctx.join("Dockerfile")).unwrap_err();
        assert!(matches!(err, Error::IgnoreFileOutside { .. }), "{err}");
        // A link that stays inside is read.
        fs::remove_file(ctx.join(".dockerignore")).unwrap();
        fs::write(ctx.join("ignore"), "x\n").unwrap();
        std::os::unix::fs::symlink("ignore", ctx.join(".dockerignore")).unwrap();
        let file = dockerignore_for(&ctx, &ctx.join("Dockerfile"))
            .unwrap()
            .unwrap();
        assert_eq!(file.patterns(), ["x"]);
    }
}
