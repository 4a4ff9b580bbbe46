//! The identity of what a COPY/ADD reads, for its cache key: exactly the entries the
//! copy would select (sources, wildcards, directory contents, `--exclude`, and
//! `.dockerignore` through the context index), each as `TYPE MODE OWNER WHAT`:
//! `f 644 - sha256:...` (content digest), `l 777 - TARGET`, `d 755 - -`. The owner is
//! `-` unless the copy keeps owners (`COPY --from` without `--chown`). Modification
//! times are not part of it: touching a file keeps the key.

use std::os::unix::fs::MetadataExt;

use super::source::{Node, SourceTree};
use super::{keeper, select, CopyRequest};
use crate::digest::Digest;
use crate::executor::error::{ExecError, Result};

/// Gives the content digest of a regular file (through the stat cache for the context).
pub type FileDigest<'a> = dyn FnMut(&Node) -> std::io::Result<Digest> + 'a;

/// `(name, value)` inputs for what `req` selects in `tree`: one `file:PATH` per entry,
/// named by the path the Dockerfile gives it (wildcards expanded) and, below a
/// directory, by the path inside the tree. URL sources are set apart whether or not
/// the op is an ADD, and not covered (the caller keys them by checksum or fetched
/// content).
pub fn source_inputs(
    tree: &SourceTree<'_>,
    req: &CopyRequest<'_>,
    digest: &mut FileDigest<'_>,
) -> Result<Vec<(String, String)>> {
    let keep = keeper(req)?;
    let selection = select(tree, req, true, &keep)?;
    let mut out = Vec::new();
    for selected in &selection.nodes {
        entry(
            tree,
            &selected.rel,
            &selected.node,
            req,
            &keep,
            digest,
            &mut out,
        )?;
    }
    Ok(out)
}

fn entry(
    tree: &SourceTree<'_>,
    name: &str,
    node: &Node,
    req: &CopyRequest<'_>,
    keep: &(dyn Fn(&str) -> Result<bool> + Sync),
    digest: &mut FileDigest<'_>,
    out: &mut Vec<(String, String)>,
) -> Result<()> {
    let meta = &node.meta;
    let ft = meta.file_type();
    let owner = if req.attrs.keep_owner && req.attrs.owner.is_none() {
        format!("{}:{}", meta.uid(), meta.gid())
    } else {
        "-".to_owned()
    };
    let mode = meta.mode() & 0o7777;
    let value = if ft.is_dir() {
        format!("d {mode:o} {owner} -")
    } else if ft.is_symlink() {
        let target = std::fs::read_link(&node.host)
            .map_err(ExecError::fs("cannot read link", &node.host))?;
        format!("l {mode:o} {owner} {}", target.display())
    } else if ft.is_file() {
        let d = digest(node).map_err(ExecError::fs("cannot read", &node.host))?;
        format!("f {mode:o} {owner} {d}")
    } else {
        return Ok(()); // sockets, fifos and devices are not copied from a context
    };
    out.push((
        format!("file:{}", if name.is_empty() { "." } else { name }),
        value,
    ));
    if ft.is_dir() {
        for child in tree.children(&node.rel)? {
            if !keep(&child.rel)? {
                continue;
            }
            let base = child.rel.rsplit('/').next().unwrap_or_default();
            let child_name = if name.is_empty() {
                base.to_owned()
            } else {
                format!("{name}/{base}")
            };
            entry(tree, &child_name, &child, req, keep, digest, out)?;
        }
    }
    Ok(())
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
        let mut digest = |n: &Node| {
            hashed += 1;
            crate::cache::hash_file(&n.host)
        };
        let inputs = source_inputs(&SourceTree::Context(&index), &req, &mut digest).unwrap();
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
