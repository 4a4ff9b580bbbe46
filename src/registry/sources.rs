//! Where blobs came from: `<store>/cache/sources/<hex>` lists the repositories
//! (`registry/repository`, one per line) a blob was pulled from or pushed to, so a push
//! to another repository of the same registry can mount it instead of uploading it.
//! Best effort: a missing or unreadable record only costs an upload.

use std::io::Write;

use crate::digest::Digest;
use crate::store::Store;

/// Lines kept per blob (the most recent).
const MAX_SOURCES: usize = 16;

fn path(store: &Store, digest: &Digest) -> std::path::PathBuf {
    store.cache_dir().join("sources").join(digest.hex())
}

/// Notes that `registry/repository` has blob `digest`.
pub fn record(store: &Store, digest: &Digest, registry: &str, repository: &str) {
    let line = format!("{registry}/{repository}");
    let mut lines = read(store, digest);
    if lines.contains(&line) {
        return;
    }
    lines.push(line);
    let keep = lines.len().saturating_sub(MAX_SOURCES);
    let text: String = lines[keep..].iter().map(|l| format!("{l}\n")).collect();
    let file = path(store, digest);
    let write = || -> std::io::Result<()> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut temp = tempfile::NamedTempFile::new_in(store.work_dir())?;
        temp.write_all(text.as_bytes())?;
        temp.persist(&file)?;
        Ok(())
    };
    let _ = write();
}

fn read(store: &Store, digest: &Digest) -> Vec<String> {
    std::fs::read_to_string(path(store, digest))
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Repositories of `registry` known to have blob `digest`.
pub fn repositories(store: &Store, digest: &Digest, registry: &str) -> Vec<String> {
    let prefix = format!("{registry}/");
    read(store, digest)
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_recorded_per_registry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        assert!(repositories(&store, &d, "r:5000").is_empty());
        record(&store, &d, "r:5000", "base/os");
        record(&store, &d, "r:5000", "base/os");
        record(&store, &d, "other:5000", "x");
        record(&store, &d, "r:5000", "team/app");
        assert_eq!(repositories(&store, &d, "r:5000"), ["base/os", "team/app"]);
        assert_eq!(repositories(&store, &d, "other:5000"), ["x"]);
    }
}
