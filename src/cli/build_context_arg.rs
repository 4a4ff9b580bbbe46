//! `--build-context NAME=VALUE` flags read into the build's named contexts, as buildx
//! reads them (`ParseContextNames`, `loadInputs`): NAME is an image name, kept in the
//! form BuildKit looks names up by (`docker.io/library/alpine:latest` is `alpine`);
//! VALUE is classified by [`NamedSource::parse`]; a local directory must exist (made
//! absolute), an `oci-layout://` path must be a layout. Where buildx lets the last of
//! two flags for one name win, or keeps `scratch`/`context` contexts no Dockerfile can
//! reach, rbuild refuses: a flag is never silently ignored.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};

use crate::context::source::named::NamedSource;
use crate::registry::Reference;

/// The named contexts of `flags`, by key.
pub fn named_contexts(flags: &[String]) -> anyhow::Result<BTreeMap<String, NamedSource>> {
    let mut out = BTreeMap::new();
    let mut given: BTreeMap<String, &str> = BTreeMap::new();
    for flag in flags {
        let (key, source) = parse(flag)?;
        if let Some(first) = given.insert(key.clone(), flag) {
            bail!("--build-context {key} is given twice ({first:?} and {flag:?}): give each name once");
        }
        let source = checked(&key, source)?;
        out.insert(key, source);
    }
    Ok(out)
}

/// One flag: its key and what it names.
fn parse(flag: &str) -> anyhow::Result<(String, NamedSource)> {
    let Some((name, value)) = flag.split_once('=') else {
        bail!("invalid --build-context {flag:?}: expected NAME=VALUE, such as alpine=docker-image://alpine:3.20 or src=../src");
    };
    if name.is_empty() {
        bail!("invalid --build-context {flag:?}: the NAME before `=` is empty");
    }
    if value.is_empty() {
        bail!("invalid --build-context {flag:?}: the VALUE after `=` is empty");
    }
    if name.eq_ignore_ascii_case("scratch") || name.eq_ignore_ascii_case("context") {
        bail!("invalid --build-context {flag:?}: `{name}` is reserved (a Dockerfile's `{name}` is never a named context): choose another name");
    }
    let key = Reference::parse(name)
        .map(|r| r.context_name())
        .with_context(|| format!("invalid --build-context name {name:?}: a name is written as an image name is (lower case, such as alpine or team/base:1)"))?;
    let source =
        NamedSource::parse(value).with_context(|| format!("invalid --build-context {flag:?}"))?;
    Ok((key, source))
}

/// `source` with its local path checked and made absolute.
fn checked(key: &str, source: NamedSource) -> anyhow::Result<NamedSource> {
    Ok(match source {
        NamedSource::Dir(dir) => NamedSource::Dir(local_dir(key, &dir)?),
        NamedSource::Layout(mut layout) => {
            if !layout.path.join("index.json").is_file() {
                bail!(
                    "--build-context {key}: {} is not an OCI layout directory (it has no index.json)",
                    layout.path.display()
                );
            }
            layout.path = absolute(key, &layout.path)?;
            NamedSource::Layout(layout)
        }
        other => other,
    })
}

/// A named context's local directory, which must exist, made absolute.
fn local_dir(key: &str, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let meta = std::fs::metadata(dir).with_context(|| {
        format!(
            "--build-context {key}: directory {} does not exist",
            dir.display()
        )
    })?;
    if !meta.is_dir() {
        bail!(
            "--build-context {key}: {} is not a directory (a named context is a directory, docker-image://REF, oci-layout://PATH, a git URL or an http(s) URL)",
            dir.display()
        );
    }
    absolute(key, dir)
}

fn absolute(key: &str, path: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::path::absolute(path).with_context(|| format!("--build-context {key}: {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(flags: &[&str]) -> String {
        let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
        format!("{:#}", named_contexts(&flags).unwrap_err())
    }

    #[test]
    fn names_are_kept_as_buildkit_looks_them_up() {
        let flags = vec![
            "docker.io/library/alpine:latest=docker-image://busybox".to_owned(),
            "team/base:1=docker-image://busybox:1".to_owned(),
            "src=.".to_owned(),
        ];
        let contexts = named_contexts(&flags).unwrap();
        let keys: Vec<&str> = contexts.keys().map(String::as_str).collect();
        assert_eq!(keys, ["alpine", "src", "team/base:1"]);
        match &contexts["src"] {
            NamedSource::Dir(d) => assert!(d.is_absolute(), "{d:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_flags_say_what_is_wrong() {
        assert!(err(&["alpine"]).contains("expected NAME=VALUE"));
        assert!(err(&["=docker-image://a"]).contains("NAME before `=` is empty"));
        assert!(err(&["a="]).contains("VALUE after `=` is empty"));
        assert!(
            err(&["Alpine=docker-image://a"]).contains("invalid --build-context name \"Alpine\"")
        );
        assert!(err(&["a b=docker-image://a"]).contains("invalid --build-context name"));
        assert!(err(&["scratch=."]).contains("reserved"));
        assert!(err(&["x=foo://y"]).contains("foo:// is not a kind of build context"));
        let twice = err(&["alpine=.", "alpine:latest=docker-image://busybox"]);
        assert!(
            twice.contains("--build-context alpine is given twice"),
            "{twice}"
        );
        let missing = err(&["src=/nonexistent/dir"]);
        assert!(
            missing.contains("directory /nonexistent/dir does not exist"),
            "{missing}"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        let path = file.path().display().to_string();
        assert!(err(&[&format!("f={path}")]).contains("is not a directory"));
        let dir = tempfile::tempdir().unwrap();
        let layout = format!("l=oci-layout://{}:v1", dir.path().display());
        assert!(err(&[&layout]).contains("not an OCI layout directory"));
    }
}
