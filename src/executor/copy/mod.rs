//! COPY and ADD into a step's root filesystem, with BuildKit's semantics: wildcards,
//! directory-contents copies, the trailing-slash destination rules, `--parents`,
//! `--exclude`, `--chown`/`--chmod`, inline heredoc files, `.dockerignore` (through the
//! context index), and sources that can never leave their tree. ADD's http(s) URLs are
//! downloaded here (`fetch`); its git repositories are added by [`add_git`] (`git`),
//! which [`copy`] leaves out.

pub mod archive;
mod digest;
pub mod fetch;
mod git;
mod reuse;
mod source;
mod write;

pub use digest::{source_inputs, FileDigest};
pub use fetch::url_identity;
pub use git::{add_git, GitPins};
pub use reuse::{changed_files, Reuse};
pub use source::{clean_relative, has_wildcards, ContextIndex, Node, SourceTree};
pub use write::{ensure_dir, host_path, set_mtime, write_stream, Attrs, Backing, How};

use std::path::Path;

use super::error::{ExecError, Result};
use crate::parser::ignore::IgnoreMatcher;
use crate::plan::CopyOp;

/// One COPY/ADD to carry out: the plan's op (sources, heredoc files, destination,
/// `--parents`, `--exclude`, what ADD does), with the ids and mode already resolved.
/// The op's `source` is not read: the caller passes the tree to read from.
#[derive(Debug, Clone)]
pub struct CopyRequest<'a> {
    pub op: &'a CopyOp,
    pub attrs: Attrs,
    /// mtime of heredoc files.
    pub created: i64,
    /// Checked before each entry: a set flag stops the copy with `Interrupted`.
    pub cancel: Option<&'a std::sync::atomic::AtomicBool>,
    /// The root's upperdir when it is an overlay (see [`Backing`]).
    pub backing: Option<Backing<'a>>,
    /// The step's last snapshot, whose unchanged files are linked rather than copied.
    pub reuse: Option<&'a Reuse>,
}

impl<'a> CopyRequest<'a> {
    /// How entries are written, with `keep` as the filter; `selected` (the source's
    /// path in its tree and its name) and `root` (the step root) place the links of
    /// [`Reuse`].
    fn how(
        &'a self,
        keep: &'a (dyn Fn(&str) -> Result<bool> + Sync),
        selected: Option<(&'a str, &'a str)>,
        root: &'a Path,
    ) -> How<'a> {
        let reuse = match (self.reuse, selected) {
            (Some(reuse), Some((tree_rel, name))) => Some(reuse::ReuseAt {
                reuse,
                base: self.backing.map_or(root, |b| b.upper),
                tree_rel,
                name,
            }),
            _ => None,
        };
        How {
            attrs: &self.attrs,
            keep,
            backing: self.backing,
            reuse,
        }
    }
}

impl CopyRequest<'_> {
    /// `ADD`: local tar archives are extracted (unless `--unpack=false`).
    fn extract_archives(&self) -> bool {
        self.op.is_add && self.op.options.unpack != Some(false)
    }

    /// `ADD`: URL sources are downloaded (COPY refuses them at parse time).
    fn urls(&self) -> bool {
        self.op.is_add
    }
}

struct Selected {
    node: source::Node,
    /// The path as the Dockerfile names it (after wildcard expansion): what the
    /// destination is named after, even when `node` is a followed symlink's target.
    rel: String,
}

/// What a request selects from its tree.
struct Selection<'r> {
    nodes: Vec<Selected>,
    /// Matches of wildcard sources (more than one makes the destination a directory).
    wildcard_hits: usize,
    /// URL sources of an ADD.
    downloads: Vec<&'r str>,
}

/// The `--exclude` filter of `req`, which also checks for cancellation on each entry.
fn keeper<'r>(req: &'r CopyRequest<'r>) -> Result<impl Fn(&str) -> Result<bool> + 'r> {
    let exclude =
        IgnoreMatcher::new(&req.op.options.exclude).map_err(|e| ExecError::BadPattern {
            pattern: req.op.options.exclude.join(","),
            reason: e.to_string(),
        })?;
    Ok(move |rel: &str| -> Result<bool> {
        if req
            .cancel
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(ExecError::Interrupted);
        }
        if exclude.is_empty() {
            return Ok(true);
        }
        let excluded = exclude.matches(rel).map_err(|e| ExecError::BadPattern {
            pattern: req.op.options.exclude.join(","),
            reason: e.to_string(),
        })?;
        Ok(!excluded)
    })
}

/// Resolves the sources of `req` in `tree`: literal paths, wildcard matches, and (with
/// `urls`) URLs, which are set apart.
fn select<'r>(
    tree: &SourceTree<'_>,
    req: &'r CopyRequest<'r>,
    urls: bool,
    keep: &(dyn Fn(&str) -> Result<bool> + Sync),
) -> Result<Selection<'r>> {
    let mut selected = Vec::new();
    let mut wildcard_hits = 0;
    let mut downloads = Vec::new();
    for src in &req.op.sources {
        if req.op.git_source(src).is_some() {
            continue; // a git repository: `add_git`
        }
        if urls && fetch::is_url(src) {
            downloads.push(src.as_str());
            continue;
        }
        let is_context = matches!(tree, SourceTree::Context(_));
        let rel = match clean_relative(src.trim_start_matches('/')) {
            Some(rel) => rel,
            None if is_context => {
                return Err(ExecError::OutsideContext {
                    source_path: src.clone(),
                })
            }
            None => String::new(),
        };
        if has_wildcards(&rel) {
            let hits = tree.glob(&rel)?;
            wildcard_hits += hits.len();
            for node in hits {
                if keep(&node.rel)? {
                    let rel = node.rel.clone();
                    let node = match tree.lookup(&rel, true)? {
                        Some(target) => target,
                        None => node,
                    };
                    selected.push(Selected { node, rel });
                }
            }
            continue;
        }
        match tree.lookup(&rel, true)? {
            Some(node) => selected.push(Selected { node, rel }),
            None => {
                return Err(ExecError::SourceNotFound {
                    source_path: src.clone(),
                    origin: tree.origin(),
                })
            }
        }
    }
    Ok(Selection {
        nodes: selected,
        wildcard_hits,
        downloads,
    })
}

/// Performs `req`, reading from `tree` and writing into the root filesystem at `root`
/// (all but git repository sources).
pub fn copy(tree: &SourceTree<'_>, req: &CopyRequest<'_>, root: &Path) -> Result<()> {
    let keep = keeper(req)?;
    let selection = select(tree, req, req.urls(), &keep)?;
    let op = req.op;
    if op.sources.len() + op.contents.len() > 1 && !op.dest.ends_with('/') {
        return Err(ExecError::DestNotDir);
    }
    let dest_is_dir = op.dest.ends_with('/') || selection.wildcard_hits > 1 || {
        let host = host_path(root, &op.dest, true)?;
        std::fs::metadata(host).is_ok_and(|m| m.is_dir())
    };
    for selected in &selection.nodes {
        copy_selected(tree, req, selected, dest_is_dir, &keep, root)?;
    }
    for url in selection.downloads {
        download(req, url, root)?;
    }
    write_contents(req, root)
}

/// Copies one selected source: a directory's contents, an archive ADD extracts, or an
/// entry named after the source.
fn copy_selected(
    tree: &SourceTree<'_>,
    req: &CopyRequest<'_>,
    Selected { node, rel }: &Selected,
    dest_is_dir: bool,
    keep: &(dyn Fn(&str) -> Result<bool> + Sync),
    root: &Path,
) -> Result<()> {
    let owner = req.attrs.owner.unwrap_or((0, 0));
    let dest_path = req.op.dest.trim_end_matches('/');
    if node.meta.is_dir() {
        let target = if req.op.options.parents && !rel.is_empty() {
            format!("{dest_path}/{rel}")
        } else {
            dest_path.to_owned()
        };
        let host = ensure_dir(root, &target, owner)?;
        let how = req.how(keep, Some((&node.rel, rel)), root);
        return write::copy_children(tree, node, &host, &how);
    }
    if req.extract_archives() && node.meta.is_file() {
        let open = || tree.open_file(node);
        if let Some(kind) = archive::detect(&open, &node.host)? {
            let host = ensure_dir(root, dest_path, owner)?;
            return archive::extract(&open, &node.host, kind, &host);
        }
    }
    let target = if dest_is_dir {
        let tail = if req.op.options.parents {
            rel.clone()
        } else {
            basename(rel).to_owned()
        };
        format!("{dest_path}/{tail}")
    } else {
        dest_path.to_owned()
    };
    let host = place(root, &target, owner)?;
    let how = req.how(keep, Some((&node.rel, rel)), root);
    write::copy_node(tree, node, &host, &how)
}

/// Fetches an ADD's URL source into the destination.
fn download(req: &CopyRequest<'_>, url: &str, root: &Path) -> Result<()> {
    let owner = req.attrs.owner.unwrap_or((0, 0));
    let tmp = root.parent().unwrap_or(root);
    let fetched = fetch::fetch(url, req.op.options.checksum.as_deref(), tmp)?;
    let target = fetch::target_for(&req.op.dest, &fetched.name);
    let host = place(root, &target.to_string_lossy(), owner)?;
    let mut data = std::fs::File::open(fetched.file.path())
        .map_err(ExecError::fs("cannot read", fetched.file.path()))?;
    let mode = req.attrs.mode.unwrap_or(0o600);
    write::write_stream(
        &host,
        &mut data,
        mode,
        owner,
        fetched.mtime.unwrap_or(req.created),
    )
}

/// Writes the op's heredoc files.
fn write_contents(req: &CopyRequest<'_>, root: &Path) -> Result<()> {
    let owner = req.attrs.owner.unwrap_or((0, 0));
    let dest_path = req.op.dest.trim_end_matches('/');
    for content in &req.op.contents {
        let target = if req.op.dest.ends_with('/') {
            format!("{dest_path}/{}", content.path)
        } else {
            dest_path.to_owned()
        };
        let host = place(root, &target, owner)?;
        let mode = req.attrs.mode.unwrap_or(0o644);
        write::write_file(&host, content.data.as_bytes(), mode, owner, req.created)?;
    }
    Ok(())
}

/// Makes the parent of image path `target` exist and returns the host path of
/// `target` itself (not following a final symlink: it is replaced).
fn place(root: &Path, target: &str, owner: (u32, u32)) -> Result<std::path::PathBuf> {
    let (parent, name) = target.rsplit_once('/').unwrap_or(("", target));
    let parent_host = ensure_dir(root, if parent.is_empty() { "/" } else { parent }, owner)?;
    Ok(parent_host.join(name))
}

fn basename(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::context::BuildContext;

    fn context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("src/sub")).unwrap();
        fs::write(p.join("a.txt"), "a").unwrap();
        fs::write(p.join("b.txt"), "b").unwrap();
        fs::write(p.join("src/main.rs"), "fn main() {}").unwrap();
        fs::write(p.join("src/sub/x.rs"), "x").unwrap();
        std::os::unix::fs::symlink("../../etc/passwd", p.join("escape")).unwrap();
        std::os::unix::fs::symlink("a.txt", p.join("alias")).unwrap();
        dir
    }

    fn run(
        ctx: &Path,
        sources: &[&str],
        dest: &str,
        parents: bool,
    ) -> (tempfile::TempDir, Result<()>) {
        let root = tempfile::tempdir().unwrap();
        let index = ContextIndex::new(&BuildContext::new(ctx)).unwrap();
        let op = CopyOp {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.to_owned(),
            options: crate::parser::instructions::CopyOptions {
                parents,
                ..Default::default()
            },
            ..CopyOp::default()
        };
        let req = CopyRequest {
            op: &op,
            attrs: Attrs::default(),
            created: 0,
            cancel: None,
            backing: None,
            reuse: None,
        };
        let result = copy(&SourceTree::Context(&index), &req, root.path());
        (root, result)
    }

    #[test]
    fn copies_directory_contents_and_files() {
        let ctx = context();
        let (root, r) = run(ctx.path(), &["src"], "/app/", false);
        r.unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("app/main.rs")).unwrap(),
            "fn main() {}"
        );
        assert!(root.path().join("app/sub/x.rs").is_file());
        let (root, r) = run(ctx.path(), &["a.txt"], "/renamed", false);
        r.unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("renamed")).unwrap(),
            "a"
        );
        let (root, r) = run(ctx.path(), &["alias"], "/d/", false);
        r.unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("d/alias")).unwrap(),
            "a",
            "a top-level link is followed"
        );
    }

    #[test]
    fn owners_modes_times_and_replaced_files_on_every_path() {
        let ctx = context();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(ctx.path().join("src/big.bin"), &big).unwrap();
        let suid = ctx.path().join("src/sub/x.rs");
        fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
        let mtime = filetime::FileTime::from_unix_time(1_600_000_000, 5);
        filetime::set_file_mtime(&suid, mtime).unwrap();
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("app")).unwrap();
        fs::write(root.path().join("app/main.rs"), "old").unwrap();
        let index = ContextIndex::new(&BuildContext::new(ctx.path())).unwrap();
        let op = CopyOp {
            sources: vec!["src".into()],
            dest: "/app/".into(),
            ..CopyOp::default()
        };
        let req = CopyRequest {
            op: &op,
            attrs: Attrs {
                owner: Some((1000, 1001)),
                ..Attrs::default()
            },
            created: 0,
            cancel: None,
            backing: None,
            reuse: None,
        };
        copy(&SourceTree::Context(&index), &req, root.path()).unwrap();
        let app = root.path().join("app");
        assert_eq!(
            fs::read_to_string(app.join("main.rs")).unwrap(),
            "fn main() {}"
        );
        assert_eq!(fs::read(app.join("big.bin")).unwrap(), big, "a large file");
        // `sub` is new: its files take the path that skips looking for an old entry.
        let meta = fs::symlink_metadata(app.join("sub/x.rs")).unwrap();
        assert_eq!(
            meta.mode() & 0o7777,
            0o4755,
            "set-id bits survive the chown"
        );
        assert_eq!((meta.uid(), meta.gid()), (1000, 1001));
        assert_eq!((meta.mtime(), meta.mtime_nsec()), (1_600_000_000, 5));
        // Copied again over itself: every entry exists now and is replaced.
        copy(&SourceTree::Context(&index), &req, root.path()).unwrap();
        assert_eq!(fs::read(app.join("big.bin")).unwrap(), big);
    }

    #[test]
    fn wildcards_and_parents() {
        let ctx = context();
        let (root, r) = run(ctx.path(), &["*.txt"], "/t", false);
        r.unwrap();
        assert!(root.path().join("t/a.txt").is_file() && root.path().join("t/b.txt").is_file());
        let (root, r) = run(ctx.path(), &["src/sub/x.rs"], "/p/", true);
        r.unwrap();
        assert!(root.path().join("p/src/sub/x.rs").is_file());
        let (_, r) = run(ctx.path(), &["*.none"], "/t/", false);
        r.unwrap();
    }

    #[test]
    fn refuses_escapes_and_missing_sources() {
        let ctx = context();
        assert!(matches!(
            run(ctx.path(), &["../x"], "/", false).1,
            Err(ExecError::OutsideContext { .. })
        ));
        assert!(matches!(
            run(ctx.path(), &["escape"], "/", false).1,
            Err(ExecError::OutsideContext { .. })
        ));
        assert!(matches!(
            run(ctx.path(), &["nope"], "/", false).1,
            Err(ExecError::SourceNotFound { .. })
        ));
        assert!(matches!(
            run(ctx.path(), &["a.txt", "b.txt"], "/x", false).1,
            Err(ExecError::DestNotDir)
        ));
    }

    #[test]
    fn destination_symlinks_stay_inside_the_root() {
        let ctx = context();
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let index = ContextIndex::new(&BuildContext::new(ctx.path())).unwrap();
        let op = CopyOp {
            sources: vec!["a.txt".to_owned()],
            dest: "/link/".to_owned(),
            ..CopyOp::default()
        };
        let req = CopyRequest {
            op: &op,
            attrs: Attrs {
                owner: Some((1000, 1000)),
                keep_owner: false,
                mode: Some(0o600),
            },
            created: 0,
            cancel: None,
            backing: None,
            reuse: None,
        };
        copy(&SourceTree::Context(&index), &req, root.path()).unwrap();
        assert!(
            !outside.path().join("a.txt").exists(),
            "nothing written through the link"
        );
        let inside = root
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("a.txt");
        let meta = fs::metadata(&inside).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.permissions().mode() & 0o777),
            (1000, 1000, 0o600)
        );
    }
}
