//! [`Stat`]: what the walk keeps of an entry's `lstat`, in 72 bytes instead of the 176
//! of [`std::fs::Metadata`] (a 100k-file context keeps one per file for the whole
//! build). It answers the same questions with the same method names
//! ([`MetadataExt`] is implemented), so code written against `Metadata` reads it as is.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// An entry's type, from the mode bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind(u32);

impl Kind {
    fn is(self, bits: u32) -> bool {
        self.0 & libc::S_IFMT == bits
    }

    pub fn is_dir(self) -> bool {
        self.is(libc::S_IFDIR)
    }

    pub fn is_file(self) -> bool {
        self.is(libc::S_IFREG)
    }

    pub fn is_symlink(self) -> bool {
        self.is(libc::S_IFLNK)
    }

    pub fn is_fifo(self) -> bool {
        self.is(libc::S_IFIFO)
    }

    pub fn is_socket(self) -> bool {
        self.is(libc::S_IFSOCK)
    }

    pub fn is_block_device(self) -> bool {
        self.is(libc::S_IFBLK)
    }

    pub fn is_char_device(self) -> bool {
        self.is(libc::S_IFCHR)
    }
}

/// The `lstat` fields a build reads: type and mode, owner, size, device and inode, the
/// device number of a special file, modification and change times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    dev: u64,
    ino: u64,
    rdev: u64,
    size: u64,
    mtime: i64,
    ctime: i64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime_nsec: u32,
    ctime_nsec: u32,
    nlink: u32,
}

impl From<&Metadata> for Stat {
    fn from(m: &Metadata) -> Self {
        Stat {
            dev: m.dev(),
            ino: m.ino(),
            rdev: m.rdev(),
            size: m.size(),
            mtime: m.mtime(),
            ctime: m.ctime(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            // Nanoseconds are below 10^9, link counts of a build context far below 2^32.
            mtime_nsec: m.mtime_nsec() as u32,
            ctime_nsec: m.ctime_nsec() as u32,
            nlink: u32::try_from(m.nlink()).unwrap_or(u32::MAX),
        }
    }
}

impl From<Metadata> for Stat {
    fn from(m: Metadata) -> Self {
        Stat::from(&m)
    }
}

impl Stat {
    /// The entry's type.
    pub fn file_type(&self) -> Kind {
        Kind(self.mode)
    }

    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }

    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type().is_symlink()
    }

    /// The size in bytes.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether the size is zero.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

impl MetadataExt for Stat {
    fn dev(&self) -> u64 {
        self.dev
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn mode(&self) -> u32 {
        self.mode
    }
    fn nlink(&self) -> u64 {
        u64::from(self.nlink)
    }
    fn uid(&self) -> u32 {
        self.uid
    }
    fn gid(&self) -> u32 {
        self.gid
    }
    fn rdev(&self) -> u64 {
        self.rdev
    }
    fn size(&self) -> u64 {
        self.size
    }
    /// Not kept: nothing a build does depends on access times.
    fn atime(&self) -> i64 {
        0
    }
    fn atime_nsec(&self) -> i64 {
        0
    }
    fn mtime(&self) -> i64 {
        self.mtime
    }
    fn mtime_nsec(&self) -> i64 {
        i64::from(self.mtime_nsec)
    }
    fn ctime(&self) -> i64 {
        self.ctime
    }
    fn ctime_nsec(&self) -> i64 {
        i64::from(self.ctime_nsec)
    }
    /// Not kept.
    fn blksize(&self) -> u64 {
        0
    }
    /// Not kept.
    fn blocks(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn keeps_what_lstat_said() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink("f", &link).unwrap();
        for path in [
            dir.path(),
            file.as_path(),
            link.as_path(),
            Path::new("/dev/null"),
        ] {
            let m = std::fs::symlink_metadata(path).unwrap();
            let s = Stat::from(&m);
            let (ft, k) = (m.file_type(), s.file_type());
            assert_eq!(
                (
                    ft.is_dir(),
                    ft.is_file(),
                    ft.is_symlink(),
                    ft.is_char_device()
                ),
                (k.is_dir(), k.is_file(), k.is_symlink(), k.is_char_device()),
                "{path:?}"
            );
            assert_eq!(
                (s.dev(), s.ino(), s.rdev(), s.len()),
                (m.dev(), m.ino(), m.rdev(), m.len())
            );
            assert_eq!(
                (s.mode(), s.uid(), s.gid(), s.nlink()),
                (m.mode(), m.uid(), m.gid(), m.nlink())
            );
            assert_eq!((s.mtime(), s.mtime_nsec()), (m.mtime(), m.mtime_nsec()));
            assert_eq!((s.ctime(), s.ctime_nsec()), (m.ctime(), m.ctime_nsec()));
        }
        assert_eq!(std::mem::size_of::<Stat>(), 72);
    }

    use std::path::Path;
}
