//! The context and Dockerfile arguments of `rbuild build` turned into a directory and
//! a file: a local directory as it is; `-`, a git URL or an http(s) URL fetched into
//! the store's work directory (removed when the build ends, or by the next `rbuild`
//! after a crash); `-f -` read from standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::context::source::{git, ContextArg};
use crate::executor::copy::{archive, fetch};
use crate::parser::instructions::values::redact_url_credentials;
use crate::store::Store;

/// The names a Dockerfile is looked up by, in order, when `-f` does not name one:
/// docker's `Dockerfile`, podman's `Containerfile`, and docker's lower-case fallback.
const DEFAULT_NAMES: [&str; 3] = ["Dockerfile", "Containerfile", "dockerfile"];

/// A context directory and Dockerfile ready to build, and what keeps fetched ones.
pub struct Prepared {
    /// The context directory (absolute).
    pub context: PathBuf,
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// The store whose work directory holds fetched inputs (dropped after the build).
    _work: Option<Store>,
}

/// What the user passed: the context argument, `-f`, and whether to keep `.git`.
pub struct Request<'a> {
    pub context: &'a str,
    pub file: Option<&'a Path>,
    pub keep_git_dir: bool,
}

/// Prepares the context and Dockerfile of `request`, fetching into store `root`.
pub fn prepare(request: &Request<'_>, root: &Path) -> anyhow::Result<Prepared> {
    let stdin_file = request.file.is_some_and(|f| f == Path::new("-"));
    let arg = ContextArg::parse(request.context)
        .with_context(|| format!("invalid build context {}", request.context))?;
    if stdin_file && arg == ContextArg::Stdin {
        bail!("the Dockerfile (-f -) and the context (-) cannot both come from standard input");
    }
    let ContextArg::Dir(dir) = &arg else {
        let work = Store::open(root)?;
        let (context, dockerfile) = fetch_context(&arg, request, &work)?;
        return Ok(Prepared {
            context,
            dockerfile,
            _work: Some(work),
        });
    };
    let context = local_dir(dir)?;
    if stdin_file {
        let work = Store::open(root)?;
        let dockerfile = stdin_dockerfile(&work, &mut std::io::stdin().lock())?;
        return Ok(Prepared {
            context,
            dockerfile,
            _work: Some(work),
        });
    }
    let dockerfile = match request.file {
        Some(file) => file.to_owned(),
        None => default_dockerfile(&context)?,
    };
    Ok(Prepared {
        context,
        dockerfile,
        _work: None,
    })
}

/// A local context directory, made absolute (bind mounts hand context paths to the
/// sandbox, which takes absolute paths only); it must exist.
fn local_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("build context {} does not exist", dir.display()))?;
    if !meta.is_dir() {
        bail!(
            "build context {} is not a directory (a context is a directory, `-`, or a git or http(s) URL)",
            dir.display()
        );
    }
    std::path::absolute(dir).with_context(|| format!("build context {}", dir.display()))
}

/// Fetches a remote or standard-input context into the work directory of `work`;
/// `-f` names a file inside it, as docker reads it for remote contexts.
fn fetch_context(
    arg: &ContextArg,
    request: &Request<'_>,
    work: &Store,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dest = work.temp_path("context");
    let context = match arg {
        ContextArg::Git(url) => {
            git::fetch(url, &dest, request.keep_git_dir).with_context(|| {
                let shown = redact_url_credentials(request.context);
                format!("cannot fetch the git context {shown}")
            })?
        }
        ContextArg::Url(url) => {
            let download = fetch::fetch(url, None, work.work_dir())
                .with_context(|| format!("cannot download the context {url}"))?;
            match unpack(download.file.path(), &dest)? {
                Some(dir) => dir,
                None => return dockerfile_only(download.file.path(), request, &dest),
            }
        }
        ContextArg::Stdin => {
            let spooled = spool_stdin(work)?;
            match unpack(spooled.path(), &dest)? {
                Some(dir) => dir,
                None => return dockerfile_only(spooled.path(), request, &dest),
            }
        }
        ContextArg::Dir(dir) => local_dir(dir)?,
    };
    let dockerfile = match request.file {
        Some(file) if file.is_absolute() => file.to_owned(),
        Some(file) => context.join(file),
        None => default_dockerfile(&context)?,
    };
    Ok((context, dockerfile))
}

/// Extracts `file` into `dest` when it is a tar archive (plain or compressed);
/// `None` when it is not one (then it is a Dockerfile).
pub(super) fn unpack(file: &Path, dest: &Path) -> anyhow::Result<Option<PathBuf>> {
    let open =
        || std::fs::File::open(file).map_err(crate::executor::ExecError::fs("cannot open", file));
    let Some(kind) = archive::detect(&open, file)? else {
        return Ok(None);
    };
    std::fs::create_dir(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    archive::extract(&open, file, kind, dest)
        .with_context(|| format!("cannot extract {}", file.display()))?;
    Ok(Some(dest.to_owned()))
}

/// A Dockerfile without a context (`rbuild build - < Dockerfile`, or a URL of a
/// Dockerfile): the context is an empty directory.
fn dockerfile_only(
    file: &Path,
    request: &Request<'_>,
    dest: &Path,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    if let Some(named) = request.file {
        bail!(
            "the context {} is a Dockerfile, not an archive: -f {} cannot name another file in it",
            request.context,
            named.display()
        );
    }
    let context = dest.join("context");
    std::fs::create_dir_all(&context)
        .with_context(|| format!("cannot create {}", context.display()))?;
    let dockerfile = dest.join("Dockerfile");
    std::fs::rename(file, &dockerfile)
        .or_else(|_| std::fs::copy(file, &dockerfile).map(|_| ()))
        .with_context(|| format!("cannot write {}", dockerfile.display()))?;
    Ok((context, dockerfile))
}

/// Standard input in a temporary file of the work directory (read once; the archive
/// check and the extraction read the file).
pub(super) fn spool_stdin(work: &Store) -> anyhow::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::NamedTempFile::new_in(work.work_dir())
        .context("cannot create a file in the store's work directory")?;
    std::io::copy(&mut std::io::stdin().lock(), &mut file).context("cannot read standard input")?;
    Ok(file)
}

/// `-f -`: the Dockerfile read from `input` into the work directory.
fn stdin_dockerfile(work: &Store, input: &mut dyn Read) -> anyhow::Result<PathBuf> {
    let dir = work.temp_path("stdin");
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("Dockerfile");
    let mut text = Vec::new();
    input
        .read_to_end(&mut text)
        .context("cannot read the Dockerfile from standard input")?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The Dockerfile of `context` when `-f` names none: the first of [`DEFAULT_NAMES`]
/// that exists, unless it is a symlink that leads out of the context (a context is
/// often someone else's, a CI checkout of a pull request, and following such a link
/// would read a host file and print its first line in a parse error). Named with `-f`,
/// any file is the user's choice.
pub fn default_dockerfile(context: &Path) -> anyhow::Result<PathBuf> {
    let Some(path) = DEFAULT_NAMES
        .iter()
        .map(|name| context.join(name))
        .find(|p| std::fs::symlink_metadata(p).is_ok())
    else {
        bail!(
            "no Dockerfile in {} (looked for {}): name one with -f",
            context.display(),
            DEFAULT_NAMES.join(", ")
        );
    };
    let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return Ok(path);
    }
    let inside = match (std::fs::canonicalize(context), std::fs::canonicalize(&path)) {
        (Ok(ctx), Ok(target)) => target.starts_with(&ctx),
        _ => false,
    };
    if !inside {
        bail!(
            "{} is a symlink out of the context: refusing to read it (name it with -f to use it)",
            path.display()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dockerfile_is_looked_up_as_docker_and_podman_do() {
        let t = tempfile::tempdir().unwrap();
        let err = default_dockerfile(t.path()).unwrap_err().to_string();
        assert!(
            err.contains("looked for Dockerfile, Containerfile"),
            "{err}"
        );
        std::fs::write(t.path().join("dockerfile"), "FROM scratch\n").unwrap();
        assert!(default_dockerfile(t.path())
            .unwrap()
            .ends_with("dockerfile"));
        std::fs::write(t.path().join("Containerfile"), "FROM scratch\n").unwrap();
        assert!(default_dockerfile(t.path())
            .unwrap()
            .ends_with("Containerfile"));
        std::fs::write(t.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        assert!(default_dockerfile(t.path())
            .unwrap()
            .ends_with("Dockerfile"));
    }

    #[test]
    fn a_missing_context_says_so() {
        let err = local_dir(Path::new("/nonexistent/ctx")).unwrap_err();
        assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
    }
}
