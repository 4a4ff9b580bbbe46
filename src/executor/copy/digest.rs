//! The identity of what a COPY/ADD reads, for its cache key: exactly the entries the
//! copy would select (sources, wildcards, directory contents, `--exclude`, and
//! `.dockerignore` through the context index), each as `TYPE MODE OWNER WHAT`:
//! `f 644 - sha256:...` (content digest), `l 777 - TARGET`, `d 755 - -`. The owner is
//! `-` unless the copy keeps owners (`COPY --from` without `--chown`). Modification
//! times are not part of it: touching a file keeps the key.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::source::{ContextIndex, SourceTree};
use super::{keeper, select, CopyRequest};
use crate::context::Stat;
use crate::digest::Digest;
use crate::executor::error::{ExecError, Result};

/// Gives the content digest of the regular context file at a path relative to the
/// context (as the walk named it, and exact: a name that is not UTF-8 is opened by the
/// latter) with the metadata the walk read (through the stat cache).
pub type FileDigest<'a> = dyn FnMut(&str, &Path, &Stat) -> std::io::Result<Digest> + 'a;

/// `(name, value)` inputs for what `req` selects in the context `index`: one
/// `file:PATH` per entry, named by the path the Dockerfile gives it (wildcards
/// expanded) and, below a directory, by the path inside the tree. URL sources are set
/// apart whether or not the op is an ADD, and not covered (the caller keys them by
/// checksum or fetched content).
///
/// Entries are read from the index where they are (a COPY of 100k files makes no
/// per-file node or host path).
pub fn source_inputs(
    index: &ContextIndex,
    req: &CopyRequest<'_>,
    digest: &mut FileDigest<'_>,
) -> Result<Vec<(String, String)>> {
    let keep = keeper(req)?;
    let selection = select(&SourceTree::Context(index), req, true, &keep)?;
    let mut inputs = Inputs {
        index,
        owner: req.attrs.keep_owner && req.attrs.owner.is_none(),
        keep: &keep,
        digest,
        out: Vec::new(),
    };
    for selected in &selection.nodes {
        let node = &selected.node;
        let item = Item {
            rel: &node.rel,
            meta: &node.meta,
            exact: node.host.strip_prefix(index.root()).unwrap_or(&node.host),
        };
        inputs.entry(&selected.rel, item)?;
    }
    Ok(inputs.out)
}

/// The last component of a context entry's path as its input names it (`walked`: the
/// `/`-separated path the walk gave, lossy; `exact`: the path): itself when UTF-8;
/// else `/` and its bytes, `%XX` for each byte that is not printable ASCII or is `%`.
/// A walked path never holds `//` nor starts with `/`, so the input of a name that is
/// not UTF-8 is the input of no other name (two such names differ in their escapes).
fn input_base<'a>(walked: &'a str, exact: &Path) -> Cow<'a, str> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = exact
        .file_name()
        .map(OsStrExt::as_bytes)
        .unwrap_or_default();
    if std::str::from_utf8(bytes).is_ok() {
        return Cow::Borrowed(walked.rsplit('/').next().unwrap_or_default());
    }
    let mut out = String::from("/");
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Cow::Owned(out)
}

/// A context entry as the inputs read it, borrowed from the index.
#[derive(Clone, Copy)]
struct Item<'a> {
    /// The `/`-separated path the walk gave it.
    rel: &'a str,
    meta: &'a Stat,
    /// The exact path relative to the context (names that are not UTF-8 included).
    exact: &'a Path,
}

struct Inputs<'a, 'd> {
    index: &'a ContextIndex,
    /// Whether the copy keeps owners (`COPY --from` without `--chown`).
    owner: bool,
    keep: &'a (dyn Fn(&str) -> Result<bool> + Sync),
    digest: &'a mut FileDigest<'d>,
    out: Vec<(String, String)>,
}

impl Inputs<'_, '_> {
    /// Adds `item` as input `file:NAME` (`file:.` for the root), then, for a
    /// directory, its children.
    fn entry(&mut self, name: &str, item: Item<'_>) -> Result<()> {
        let Some(value) = self.value(item)? else {
            return Ok(()); // sockets, fifos and devices are not copied from a context
        };
        let mut input = String::with_capacity(6 + name.len());
        input.push_str("file:");
        input.push_str(if name.is_empty() { "." } else { name });
        self.out.push((input, value));
        if !item.meta.is_dir() {
            return Ok(());
        }
        let index = self.index;
        for child in index.child_entries(item.rel) {
            if !(self.keep)(child.path_str())? {
                continue;
            }
            let base = input_base(child.path_str(), child.path());
            let child_name = if name.is_empty() {
                base.into_owned()
            } else {
                format!("{name}/{base}")
            };
            let child = Item {
                rel: child.path_str(),
                meta: child.metadata(),
                exact: child.path(),
            };
            self.entry(&child_name, child)?;
        }
        Ok(())
    }

    /// `TYPE MODE OWNER WHAT` of `item`; `None` for what a copy leaves out.
    fn value(&mut self, item: Item<'_>) -> Result<Option<String>> {
        let meta = item.meta;
        let kind = if meta.is_dir() {
            'd'
        } else if meta.is_symlink() {
            'l'
        } else if meta.is_file() {
            'f'
        } else {
            return Ok(None);
        };
        let mut value = String::with_capacity(96);
        // Writing to a String cannot fail.
        let _ = write!(value, "{kind} {:o} ", meta.mode() & 0o7777);
        if self.owner {
            let _ = write!(value, "{}:{}", meta.uid(), meta.gid());
        } else {
            value.push('-');
        }
        // The host path only for a link or an error: not one allocation per file.
        let host = |index: &ContextIndex| index.root().join(item.exact);
        match kind {
            'd' => value.push_str(" -"),
            'l' => {
                let host = host(self.index);
                let target =
                    std::fs::read_link(&host).map_err(ExecError::fs("cannot read link", &host))?;
                let _ = write!(value, " {}", target.display());
            }
            _ => {
                let d = (self.digest)(item.rel, item.exact, meta)
                    .map_err(|e| ExecError::fs("cannot read", host(self.index))(e))?;
                let _ = write!(value, " {d}");
            }
        }
        Ok(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{BuildContext, Filter};
    use crate::executor::copy::{Attrs, ContextIndex};
    use crate::plan::CopyOp;

    fn request(op: &CopyOp) -> CopyRequest<'_> {
        CopyRequest {
            op,
            attrs: Attrs::default(),
            created: 0,
            cancel: None,
            backing: None,
            reuse: None,
        }
    }

    #[test]
    fn inputs_follow_content_and_mode_not_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.rs"), "fn a() {}").unwrap();
        std::fs::write(root.join("src/skip.tmp"), "x").unwrap();
        std::fs::write(root.join("ignored.log"), "x").unwrap();
        let filter = Filter::from_patterns::<&str>(&[], &["*.log"]).unwrap();
        let index = ContextIndex::new(&BuildContext::new(root).with_filter(filter)).unwrap();
        let op = CopyOp {
            sources: vec!["src".to_owned(), "*.log".to_owned()],
            options: crate::parser::instructions::CopyOptions {
                exclude: vec!["**/*.tmp".to_owned()],
                ..Default::default()
            },
            dest: "/app/".to_owned(),
            ..CopyOp::default()
        };
        let req = request(&op);
        let mut hashed = 0;
        let mut digest = |rel: &str, _: &Path, _: &Stat| {
            hashed += 1;
            crate::cache::hash_file(&root.join(rel))
        };
        let inputs = source_inputs(&index, &req, &mut digest).unwrap();
        assert_eq!(hashed, 1);
        let names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["file:src", "file:src/a.rs"]);
        assert!(
            inputs[1].1.starts_with("f 644 - sha256:"),
            "{:?}",
            inputs[1]
        );
    }
}
