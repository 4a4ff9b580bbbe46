//! Where COPY/ADD read: the build context (filtered by `.dockerignore`) or another
//! stage's or image's root filesystem. Both answer the same questions: look a path up
//! (following symlinks *inside* the tree), list a directory, expand a wildcard.

use std::path::{Path, PathBuf};

use crate::context::{BuildContext, Entry, Stat};
use crate::executor::error::{ExecError, Result};
use crate::layers::resolve_in_root;
use crate::parser::ignore::legacy_matches;

/// Symlinks followed before giving up.
const MAX_HOPS: usize = 40;

/// A file, directory or link of a source tree.
#[derive(Debug, Clone)]
pub struct Node {
    /// Path relative to the tree root, `/`-separated, `""` for the root.
    pub rel: String,
    /// The host path to read.
    pub host: PathBuf,
    /// Its metadata (not following a final symlink).
    pub meta: Stat,
}

/// The build context, walked once (filtered, sorted) and indexed by path.
pub struct ContextIndex {
    root: PathBuf,
    /// The context directory, opened once: files are opened below it.
    root_fd: std::fs::File,
    /// Sorted bytewise by path: a directory's descendants are one run (`below`). A
    /// sorted vector rather than a map keyed by a copy of the path: a third less memory
    /// for 100k files, and no second copy while it is built.
    entries: Vec<Entry>,
    root_meta: Stat,
    filtered: bool,
}

impl ContextIndex {
    /// Walks `context` once.
    pub fn new(context: &BuildContext) -> Result<Self> {
        // The walk is depth-first (`a`, `a/b`, `a-c`); lookups want bytewise order
        // (`a`, `a-c`, `a/b`), where a directory's descendants are contiguous.
        let mut entries = Vec::new();
        context.walk(&mut |e: Entry| entries.push(e))?;
        entries.sort_unstable_by(|a, b| a.path_str().cmp(b.path_str()));
        entries.shrink_to_fit();
        let root = context.root().to_path_buf();
        let root_meta =
            std::fs::metadata(&root).map_err(ExecError::fs("cannot stat build context", &root))?;
        let root_fd = std::fs::File::open(&root)
            .map_err(ExecError::fs("cannot open build context", &root))?;
        Ok(ContextIndex {
            root_fd,
            root,
            entries,
            root_meta: root_meta.into(),
            filtered: context.is_filtered(),
        })
    }

    /// How many entries the context has (after filtering).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the context is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Whether a filter (`.dockerignore`) may hide part of the directory, so that the
    /// directory on disk is not what a step may see.
    pub fn is_filtered(&self) -> bool {
        self.filtered
    }

    /// Opens the regular file `node` for reading: below the context directory, never
    /// through a symlink, and only if it is still the file the walk saw.
    pub fn open(&self, node: &Node) -> Result<std::fs::File> {
        self.open_io(node)
            .map_err(ExecError::fs("cannot read context file", &node.host))
    }

    /// [`ContextIndex::open`] with a plain I/O error.
    pub fn open_io(&self, node: &Node) -> std::io::Result<std::fs::File> {
        let rel = node.host.strip_prefix(&self.root).unwrap_or(&node.host);
        self.open_rel(rel, &node.meta)
    }

    /// Every entry strictly below directory `rel`, sorted by path (parents first).
    pub fn descendants(&self, rel: &str) -> Vec<Node> {
        self.below(rel)
    }
}

/// A tree COPY reads from.
pub enum SourceTree<'a> {
    /// The build context.
    Context(&'a ContextIndex),
    /// A root filesystem (a stage's or an image's), read-only.
    Root(&'a Path),
}

/// Whether a COPY source uses wildcards (`*`, `?`, `[` not escaped).
pub fn has_wildcards(pattern: &str) -> bool {
    let mut escaped = false;
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Cleans a source path to a root-relative form. `None` when it climbs out of the root.
pub fn clean_relative(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

impl SourceTree<'_> {
    /// Opens regular file `node` for reading (a context file only if it is still the
    /// one the walk saw, see [`ContextIndex::open`]).
    pub fn open_file(&self, node: &Node) -> Result<std::fs::File> {
        match self {
            SourceTree::Context(index) => index.open(node),
            SourceTree::Root(_) => {
                std::fs::File::open(&node.host).map_err(ExecError::fs("cannot open", &node.host))
            }
        }
    }

    /// Describes the tree in errors.
    pub fn origin(&self) -> String {
        match self {
            SourceTree::Context(_) => "the build context".into(),
            SourceTree::Root(p) => format!("the source filesystem {}", p.display()),
        }
    }

    /// Looks `rel` up; with `follow`, a final symlink is followed inside the tree.
    pub fn lookup(&self, rel: &str, follow: bool) -> Result<Option<Node>> {
        match self {
            SourceTree::Context(index) => index.lookup(rel, follow),
            SourceTree::Root(root) => {
                let host = resolve_in_root(root, Path::new(rel), follow)?;
                match std::fs::symlink_metadata(&host) {
                    Ok(meta) => {
                        let rel = host
                            .strip_prefix(root)
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        Ok(Some(Node {
                            rel,
                            host,
                            meta: meta.into(),
                        }))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) if e.raw_os_error() == Some(20) => Ok(None), // ENOTDIR
                    Err(e) => Err(ExecError::fs("cannot stat", host)(e)),
                }
            }
        }
    }

    /// The entries directly inside directory `rel`, sorted by name.
    pub fn children(&self, rel: &str) -> Result<Vec<Node>> {
        match self {
            SourceTree::Context(index) => Ok(index.children(rel)),
            SourceTree::Root(root) => {
                let dir = root.join(rel);
                let mut out = Vec::new();
                let read = std::fs::read_dir(&dir)
                    .map_err(ExecError::fs("cannot read directory", &dir))?;
                for entry in read {
                    let entry = entry.map_err(ExecError::fs("cannot read directory", &dir))?;
                    let host = entry.path();
                    let meta = std::fs::symlink_metadata(&host)
                        .map_err(ExecError::fs("cannot stat", &host))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let rel = if rel.is_empty() {
                        name
                    } else {
                        format!("{rel}/{name}")
                    };
                    out.push(Node {
                        rel,
                        host,
                        meta: meta.into(),
                    });
                }
                out.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
                Ok(out)
            }
        }
    }

    /// Expands `pattern` (root-relative, cleaned) component by component with Go's
    /// `filepath.Match`; the matches are sorted.
    pub fn glob(&self, pattern: &str) -> Result<Vec<Node>> {
        let mut current: Vec<String> = vec![String::new()];
        let components: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
        let mut matched: Vec<Node> = Vec::new();
        for (i, component) in components.iter().enumerate() {
            let last = i + 1 == components.len();
            let mut next = Vec::new();
            for dir in &current {
                let Some(node) = self.lookup(dir, true)? else {
                    continue;
                };
                if !node.meta.is_dir() {
                    continue;
                }
                for child in self.children(&node.rel)? {
                    let name = child.rel.rsplit('/').next().unwrap_or_default().to_owned();
                    let hit = if has_wildcards(component) {
                        legacy_matches(&name, [*component]).map_err(|e| ExecError::BadPattern {
                            pattern: pattern.to_owned(),
                            reason: e.to_string(),
                        })?
                    } else {
                        name == *component
                    };
                    if hit {
                        if last {
                            matched.push(child);
                        } else {
                            next.push(child.rel);
                        }
                    }
                }
            }
            current = next;
        }
        Ok(matched)
    }
}

impl ContextIndex {
    fn node(&self, rel: &str) -> Option<Node> {
        if rel.is_empty() {
            return Some(Node {
                rel: String::new(),
                host: self.root.clone(),
                meta: self.root_meta,
            });
        }
        let i = self
            .entries
            .binary_search_by(|e| e.path_str().cmp(rel))
            .ok()?;
        Some(self.node_of(rel, &self.entries[i]))
    }

    fn node_of(&self, rel: &str, entry: &Entry) -> Node {
        Node {
            rel: rel.to_owned(),
            host: self.root.join(entry.path()),
            meta: *entry.metadata(),
        }
    }

    /// Looks `rel` up, following symlinks lexically inside the context; a link that
    /// leads out of the context is an error.
    fn lookup(&self, rel: &str, follow: bool) -> Result<Option<Node>> {
        let mut path = rel.to_owned();
        for _ in 0..MAX_HOPS {
            // Resolve symlinks in the parent components first.
            let mut resolved = String::new();
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let mut restart = None;
            for (i, part) in parts.iter().enumerate() {
                let candidate = if resolved.is_empty() {
                    (*part).to_owned()
                } else {
                    format!("{resolved}/{part}")
                };
                let is_last = i + 1 == parts.len();
                let Some(node) = self.node(&candidate) else {
                    return Ok(None);
                };
                if node.meta.file_type().is_symlink() && (!is_last || follow) {
                    let target = std::fs::read_link(&node.host)
                        .map_err(ExecError::fs("cannot read link", &node.host))?;
                    let target = target.to_string_lossy().into_owned();
                    let base = if target.starts_with('/') {
                        String::new()
                    } else {
                        resolved.clone()
                    };
                    let joined = format!("{base}/{target}/{}", parts[i + 1..].join("/"));
                    let next = clean_relative(&joined)
                        .filter(|_| !target.starts_with('/'))
                        .ok_or_else(|| ExecError::OutsideContext {
                            source_path: rel.to_owned(),
                        })?;
                    restart = Some(next);
                    break;
                }
                resolved = candidate;
            }
            match restart {
                Some(next) => path = next,
                None => return Ok(self.node(&resolved)),
            }
        }
        Err(ExecError::OutsideContext {
            source_path: rel.to_owned(),
        })
    }

    fn children(&self, rel: &str) -> Vec<Node> {
        self.child_entries(rel)
            .into_iter()
            .map(|e| self.node_of(e.path_str(), e))
            .collect()
    }

    /// The entries directly inside directory `rel`, sorted by name, borrowed: a
    /// subdirectory's own run of descendants is stepped over with one search, so a
    /// listing costs its children, not everything below them.
    pub fn child_entries(&self, rel: &str) -> Vec<&Entry> {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let mut i = self
            .entries
            .partition_point(|e| e.path_str() < prefix.as_str());
        let mut out = Vec::new();
        while let Some(e) = self.entries.get(i) {
            let Some(tail) = e.path_str().strip_prefix(prefix.as_str()) else {
                break;
            };
            match tail.find('/') {
                None => {
                    out.push(e);
                    i += 1;
                }
                Some(slash) => {
                    // Below child `tail[..slash]`: its run ends before `child0`
                    // (`0` is the byte after `/`).
                    let end = format!("{prefix}{}0", &tail[..slash]);
                    i += self.entries[i..].partition_point(|e| e.path_str() < end.as_str());
                }
            }
        }
        out
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// [`ContextIndex::open_io`] for an entry known by its path and walked metadata.
    /// `rel` is the exact path (a name that is not UTF-8 included).
    pub fn open_rel(&self, rel: &Path, walked: &Stat) -> std::io::Result<std::fs::File> {
        crate::context::open_unchanged(&self.root_fd, rel, walked)
    }

    /// Every entry under directory `rel`.
    fn below(&self, rel: &str) -> Vec<Node> {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let start = self
            .entries
            .partition_point(|e| e.path_str() < prefix.as_str());
        self.entries[start..]
            .iter()
            .take_while(|e| e.path_str().starts_with(&prefix))
            .map(|e| self.node_of(e.path_str(), e))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_lists_its_own_children_beside_names_that_sort_between() {
        // Depth-first walk order (`a`, `a/b`, `a-c`) is not bytewise order (`a`, `a-c`,
        // `a/b`): lookups and listings must not mix the two.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/sub")).unwrap();
        for f in ["a/b", "a/sub/x", "a-c", "a.txt", "a0"] {
            std::fs::write(root.join(f), f).unwrap();
        }
        let index = ContextIndex::new(&BuildContext::new(root)).unwrap();
        let tree = SourceTree::Context(&index);
        let names = |rel: &str| -> Vec<String> {
            tree.children(rel)
                .unwrap()
                .into_iter()
                .map(|n| n.rel)
                .collect()
        };
        assert_eq!(names("a"), ["a/b", "a/sub"]);
        assert_eq!(names(""), ["a", "a-c", "a.txt", "a0"]);
        assert_eq!(names("a/sub"), ["a/sub/x"]);
        for rel in ["a-c", "a/sub/x", "a0"] {
            let node = tree.lookup(rel, false).unwrap().expect(rel);
            assert_eq!(node.rel, rel);
        }
        assert!(tree.lookup("a/c", false).unwrap().is_none());
        assert_eq!(index.len(), 7);
    }

    #[test]
    fn cleans_and_detects() {
        assert_eq!(clean_relative("/a/./b/../c/").as_deref(), Some("a/c"));
        assert_eq!(clean_relative("../x"), None);
        assert_eq!(clean_relative(".").as_deref(), Some(""));
        assert!(has_wildcards("src/*.rs"));
        assert!(!has_wildcards("a\\*b"));
    }
}
