//! Comparing two directory trees entry by entry: what `rbuild store check` uses to
//! verify a snapshot made from a layer another tool wrote, whose tar rbuild's writer
//! cannot reproduce byte for byte, against the same layer applied again.
//!
//! Compared per entry, in sorted order: the relative path, file type, permission bits,
//! owner, device number, size, mtime (nanoseconds), symlink target, content, the
//! xattrs a layer carries, and overlayfs' opaque mark. A directory's own times are part
//! of it, since the applier sets them from the layer.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::sys;

/// The first difference between trees `a` and `b`, described for a report; `None` when
/// they are the same.
pub fn first_difference(a: &Path, b: &Path) -> io::Result<Option<String>> {
    compare_dir(a, b, Path::new(""))
}

fn sorted_names(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

fn compare_dir(a: &Path, b: &Path, rel: &Path) -> io::Result<Option<String>> {
    let (left, right) = (sorted_names(&a.join(rel))?, sorted_names(&b.join(rel))?);
    if left != right {
        let only = |x: &[OsString], y: &[OsString]| x.iter().find(|n| !y.contains(n)).cloned();
        let (name, side) = match only(&left, &right) {
            Some(n) => (n, "only in the first tree"),
            None => (
                only(&right, &left).unwrap_or_default(),
                "only in the second tree",
            ),
        };
        return Ok(Some(format!("{}: {side}", rel.join(name).display())));
    }
    for name in left {
        let path = rel.join(&name);
        if let Some(diff) = compare_entry(a, b, &path)? {
            return Ok(Some(format!("{}: {diff}", path.display())));
        }
        if fs::symlink_metadata(a.join(&path))?.is_dir() {
            if let Some(diff) = compare_dir(a, b, &path)? {
                return Ok(Some(diff));
            }
        }
    }
    Ok(None)
}

/// What differs between `a/rel` and `b/rel` themselves (not below them).
fn compare_entry(a: &Path, b: &Path, rel: &Path) -> io::Result<Option<String>> {
    let (pa, pb) = (a.join(rel), b.join(rel));
    let (ma, mb) = (fs::symlink_metadata(&pa)?, fs::symlink_metadata(&pb)?);
    let fields = |m: &fs::Metadata| {
        (
            m.mode(),
            m.uid(),
            m.gid(),
            m.rdev(),
            m.mtime(),
            m.mtime_nsec(),
        )
    };
    if fields(&ma) != fields(&mb) {
        return Ok(Some(format!(
            "metadata differs (mode, owner, device, mtime): {:?} vs {:?}",
            fields(&ma),
            fields(&mb)
        )));
    }
    if !ma.is_dir() && ma.len() != mb.len() {
        return Ok(Some(format!("size {} vs {}", ma.len(), mb.len())));
    }
    if ma.file_type().is_symlink() && fs::read_link(&pa)? != fs::read_link(&pb)? {
        return Ok(Some("symlink target differs".into()));
    }
    if sys::list_xattrs(&pa)? != sys::list_xattrs(&pb)? {
        return Ok(Some("xattrs differ".into()));
    }
    let opaque = |p: &Path| sys::get_xattr(p, sys::opaque_xattr().as_ref());
    if ma.is_dir() && opaque(&pa)? != opaque(&pb)? {
        return Ok(Some("opaque mark differs".into()));
    }
    if ma.is_file() && !same_content(&pa, &pb)? {
        return Ok(Some("content differs".into()));
    }
    Ok(None)
}

fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("d/e")).unwrap();
        fs::write(t.path().join("d/f"), b"hello").unwrap();
        std::os::unix::fs::symlink("f", t.path().join("d/l")).unwrap();
        t
    }

    fn same_times(a: &Path, b: &Path) {
        for rel in ["d/e", "d/f", "d", ""] {
            let m = fs::symlink_metadata(a.join(rel)).unwrap();
            let t = filetime::FileTime::from_last_modification_time(&m);
            filetime::set_symlink_file_times(b.join(rel), t, t).unwrap();
        }
        let m = fs::symlink_metadata(a.join("d/l")).unwrap();
        let t = filetime::FileTime::from_last_modification_time(&m);
        filetime::set_symlink_file_times(b.join("d/l"), t, t).unwrap();
    }

    #[test]
    fn equal_trees_and_each_kind_of_difference() {
        let (a, b) = (tree(), tree());
        same_times(a.path(), b.path());
        assert_eq!(first_difference(a.path(), b.path()).unwrap(), None);
        fs::write(b.path().join("d/f"), b"hellO").unwrap();
        same_times(a.path(), b.path());
        let diff = first_difference(a.path(), b.path()).unwrap().unwrap();
        assert_eq!(diff, "d/f: content differs");
        fs::write(b.path().join("d/f"), b"hello!").unwrap();
        same_times(a.path(), b.path());
        let diff = first_difference(a.path(), b.path()).unwrap().unwrap();
        assert!(diff.starts_with("d/f: size 5 vs 6"), "{diff}");
        fs::write(b.path().join("d/f"), b"hello").unwrap();
        fs::write(b.path().join("d/g"), b"").unwrap();
        same_times(a.path(), b.path());
        let diff = first_difference(a.path(), b.path()).unwrap().unwrap();
        assert_eq!(diff, "d/g: only in the second tree");
    }
}
