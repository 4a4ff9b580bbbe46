//! The deterministic layer tar writer: a [`ChangeSet`] in, USTAR+PAX bytes out.
//!
//! Format decisions (each one for reproducibility or for what BuildKit/containerd emit):
//! - entries in change-set order (see `changes.rs`); directory names end with `/`; paths
//!   are relative, without a `./` prefix; the root itself is not an entry;
//! - numeric uid/gid only (empty user/group names); mode keeps setuid/setgid/sticky;
//! - mtime in whole seconds, clamped to `SOURCE_DATE_EPOCH` when given; no atime/ctime;
//! - a PAX `x` header, keys sorted, precedes an entry when its name or link name is over
//!   100 bytes, its uid/gid or size overflow the octal fields, its mtime is negative or
//!   huge, or it has xattrs (`SCHILY.xattr.*`; overlayfs' `trusted.overlay.*` skipped);
//! - hardlinks: the second and later names of an inode (nlink > 1, not a directory and
//!   not a 0:0 char device, since overlay whiteouts share one inode) become link entries
//!   pointing to the first name written in this layer;
//! - deletions are empty regular files `.wh.NAME` and opaque directories get an empty
//!   `DIR/.wh..wh..opq` right after the directory, owner 0:0, mtime
//!   `SOURCE_DATE_EPOCH` or 0 (OCI image-spec `layer.md`, "Whiteouts"); a whiteout has
//!   mode 0600 and an opaque marker its directory's permissions, as BuildKit writes
//!   them;
//! - a name starting with `.wh.` is refused (it would read as a whiteout);
//! - file content is streamed, exactly as many bytes as the header says, or an error;
//! - the archive ends with two zero blocks (no padding to a 10 KiB record, like Go).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, CWD};
use rustix::io::Errno;

use super::changes::{is_whiteout, Change, ChangeKind, ChangeSet, Seen};
use super::error::{Error, Result};
use super::sys;
use crate::fs_error::FsError;

/// Options of the tar writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarOptions {
    /// Clamp every mtime to at most this many seconds since the epoch.
    pub source_date_epoch: Option<i64>,
}

const BLOCK: usize = 512;
/// Largest value of an 8-byte octal field (uid, gid, mode, device numbers).
const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value of a 12-byte octal field (size, mtime).
const MAX_OCTAL_12: u64 = 0o77777777777;
/// The opaque-directory marker's name (OCI image-spec `layer.md`).
pub(crate) const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The mode of a whiteout entry: what BuildKit and containerd write.
const WHITEOUT_MODE: u32 = 0o600;

/// The prefix of a whiteout's name.
pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";

/// Entries an earlier layer holds byte for byte (a layer patch: `patch.rs`).
pub(crate) trait Unchanged {
    /// If the regular file `name` (inode `ino`) is one the earlier layer holds as it
    /// is, writes that entry's bytes to `out` and returns true.
    fn copy(&mut self, name: &[u8], ino: u64, out: &mut dyn Write) -> io::Result<bool>;
    /// The entry `name` is written afresh: the earlier layer's entry of that name, if
    /// it is the next one, is passed over.
    fn pass(&mut self, name: &[u8]) -> io::Result<()>;
}

/// Writes the tar of `set` to `out` (which should be buffered).
pub fn write_tar(set: &ChangeSet, opts: &TarOptions, out: &mut impl Write) -> Result<()> {
    write_tar_with(set, opts, out, None)
}

/// [`write_tar`], copying the entries `unchanged` has from an earlier layer.
pub(crate) fn write_tar_with(
    set: &ChangeSet,
    opts: &TarOptions,
    out: &mut impl Write,
    mut unchanged: Option<&mut dyn Unchanged>,
) -> Result<()> {
    check_names(set)?;
    let root_dev = match unchanged {
        Some(_) => fs::metadata(set.root())
            .map_err(Error::fs("stat", set.root()))?
            .dev(),
        None => 0,
    };
    let mut w = TarWriter {
        out,
        opts,
        links: HashMap::new(),
        link_names: Vec::new(),
        buf: vec![0u8; 256 * 1024],
        dir: None,
    };
    let patch_error = |source| Error::ReadLayer { source };
    for change in set.changes() {
        let rel = change.path.as_os_str().as_bytes();
        if let Some(u) = unchanged.as_deref_mut() {
            if w.copied(u, change, root_dev).map_err(patch_error)? {
                continue;
            }
            let name = match (change.kind, change.seen) {
                (ChangeKind::Delete, _) => whiteout_name(rel),
                (_, Seen::Dir) => [rel, b"/"].concat(),
                _ => rel.to_vec(),
            };
            u.pass(&name).map_err(patch_error)?;
            if change.kind == ChangeKind::Opaque {
                u.pass(&[rel, b"/", OPAQUE_MARKER.as_bytes()].concat())
                    .map_err(patch_error)?;
            }
        }
        match change.kind {
            ChangeKind::Add => {
                w.add(set.root(), &change.path, change.seen)?;
            }
            ChangeKind::Opaque => {
                let mode = w.add(set.root(), &change.path, change.seen)?;
                let marker = [rel, b"/", OPAQUE_MARKER.as_bytes()].concat();
                w.marker(&marker, mode & 0o7777)?;
            }
            ChangeKind::Delete => w.marker(&whiteout_name(rel), WHITEOUT_MODE)?,
        }
    }
    w.out
        .write_all(&[0u8; 2 * BLOCK])
        .map_err(|source| Error::WriteBlob { source })
}

/// The whiteout entry's name for the deleted path `rel`.
fn whiteout_name(rel: &[u8]) -> Vec<u8> {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => [&rel[..=i], WHITEOUT_PREFIX.as_bytes(), &rel[i + 1..]].concat(),
        None => [WHITEOUT_PREFIX.as_bytes(), rel].concat(),
    }
}

/// Refuses, before anything is written, a change set with a name starting with `.wh.`:
/// any reader of the layer would take it for a whiteout.
fn check_names(set: &ChangeSet) -> Result<()> {
    for change in set.changes() {
        let base = change.path.file_name().map(OsStrExt::as_bytes);
        if base.is_some_and(|b| b.starts_with(WHITEOUT_PREFIX.as_bytes())) {
            return Err(Error::WhiteoutPrefix {
                path: Path::new("/").join(&change.path),
                deleted: change.kind == ChangeKind::Delete,
            });
        }
    }
    Ok(())
}

struct TarWriter<'a, W: Write> {
    out: &'a mut W,
    opts: &'a TarOptions,
    /// (dev, ino) -> tar name of the first occurrence in this layer.
    links: HashMap<(u64, u64), (usize, usize)>,
    /// The first names of `links`, one after another (`links` holds each one's start
    /// and length): one allocation, not one per name. Every file of a COPY that links
    /// its unchanged files from the last snapshot has two links or more, and is here.
    link_names: Vec<u8>,
    buf: Vec<u8>,
    /// The directory of the last regular file opened (relative to the root) and a
    /// descriptor of it: a directory's files are opened by name, one path walk per
    /// directory instead of one per file.
    dir: Option<(PathBuf, OwnedFd)>,
}

/// What goes into one header (after PAX overflow decisions).
struct Fields<'n> {
    name: &'n [u8],
    link: &'n [u8],
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    dev: (u64, u64),
}

impl<W: Write> TarWriter<'_, W> {
    /// Whether `change`, a regular file, was written as the earlier layer's entry: it
    /// must be the first name of its inode in this layer (a later name is a link entry
    /// to it), which it then becomes.
    fn copied(&mut self, u: &mut dyn Unchanged, change: &Change, dev: u64) -> io::Result<bool> {
        let key = (dev, change.ino);
        let candidate = change.kind == ChangeKind::Add
            && change.seen == Seen::File
            && change.ino != 0
            && !self.links.contains_key(&key);
        let name = change.path.as_os_str().as_bytes();
        if !candidate || !u.copy(name, change.ino, &mut *self.out)? {
            return Ok(false);
        }
        self.links.insert(key, (self.link_names.len(), name.len()));
        self.link_names.extend_from_slice(name);
        Ok(true)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|source| Error::WriteBlob { source })
    }

    fn epoch_time(&self) -> i64 {
        self.opts.source_date_epoch.unwrap_or(0)
    }

    /// An empty marker file (whiteout or opaque marker).
    fn marker(&mut self, name: &[u8], mode: u32) -> Result<()> {
        let f = Fields {
            name,
            link: b"",
            typeflag: b'0',
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: self.epoch_time(),
            dev: (0, 0),
        };
        self.header(&f, &BTreeMap::new(), Path::new(""))
    }

    /// The entry for `root/rel` as it is on disk (`seen` as the walk saw it); returns
    /// the mode it was given.
    fn add(&mut self, root: &Path, rel: &Path, seen: Seen) -> Result<u32> {
        let host = root.join(rel);
        let mut opened = match seen {
            Seen::File => self.open_in_dir(root, rel, &host)?,
            Seen::Dir | Seen::Other => None,
        };
        let mut meta = match &opened {
            Some((_, meta)) => meta.clone(),
            None => fs::symlink_metadata(&host).map_err(Error::fs("stat", &host))?,
        };
        let t = meta.file_type();
        let mut name = rel.as_os_str().as_bytes().to_vec();
        let mut records = BTreeMap::new();
        let xattrs = match &opened {
            Some((file, _)) => sys::list_fd_xattrs(file.as_fd()),
            None => sys::list_xattrs(&host),
        };
        for (k, v) in xattrs.map_err(Error::fs("read xattrs of", &host))? {
            records.insert([b"SCHILY.xattr.".as_slice(), &k].concat(), v);
        }
        let mut file = None;
        let (typeflag, link, size, dev) = if t.is_dir() {
            name.push(b'/');
            (b'5', Vec::new(), 0, (0, 0))
        } else if let Some(first) = self.first_link(&meta, &name) {
            (b'1', first, 0, (0, 0))
        } else if t.is_file() {
            let (opened, fstat) = match opened.take() {
                Some(done) => done,
                None => open_regular(CWD, &host, &host)?.ok_or_else(|| {
                    Error::fs("archive", &host)(io::Error::other("no longer a regular file"))
                })?,
            };
            meta = fstat;
            file = Some(opened);
            (b'0', Vec::new(), meta.len(), (0, 0))
        } else if t.is_symlink() {
            let target = fs::read_link(&host).map_err(Error::fs("read symlink", &host))?;
            (b'2', target.into_os_string().into_vec(), 0, (0, 0))
        } else if t.is_char_device() || t.is_block_device() {
            let flag = if t.is_char_device() { b'3' } else { b'4' };
            let rdev = meta.rdev();
            let dev = (
                rustix::fs::major(rdev) as u64,
                rustix::fs::minor(rdev) as u64,
            );
            (flag, Vec::new(), 0, dev)
        } else if t.is_fifo() {
            (b'6', Vec::new(), 0, (0, 0))
        } else {
            // Sockets cannot be archived; tar and BuildKit skip them too.
            return Ok(0);
        };
        let mtime = match self.opts.source_date_epoch {
            Some(epoch) => meta.mtime().min(epoch),
            None => meta.mtime(),
        };
        let fields = Fields {
            name: &name,
            link: &link,
            typeflag,
            mode: meta.mode() & 0o7777,
            uid: meta.uid() as u64,
            gid: meta.gid() as u64,
            size,
            mtime,
            dev,
        };
        self.header(&fields, &records, &host)?;
        if let Some(file) = file {
            self.content(file, size, &host)?;
        }
        Ok(fields.mode)
    }

    /// Opens `root/rel` (`host`) if it is a regular file, by name in a descriptor of its
    /// directory (see [`open_regular`]).
    fn open_in_dir(
        &mut self,
        root: &Path,
        rel: &Path,
        host: &Path,
    ) -> Result<Option<(File, fs::Metadata)>> {
        let (Some(parent), Some(base)) = (rel.parent(), rel.file_name()) else {
            return open_regular(CWD, host, host);
        };
        let (_, fd) = match &mut self.dir {
            Some(cached) if cached.0 == parent => cached,
            slot => {
                let dir = root.join(parent);
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::open(&dir, flags, Mode::empty())
                    .map_err(|e| Error::fs("open directory", &dir)(e.into()))?;
                slot.insert((parent.to_path_buf(), fd))
            }
        };
        open_regular(fd.as_fd(), Path::new(base), host)
    }

    /// For the second and later names of a multiply-linked inode, the first name.
    fn first_link(&mut self, meta: &fs::Metadata, name: &[u8]) -> Option<Vec<u8>> {
        if meta.nlink() < 2 || meta.is_dir() || is_whiteout(meta) {
            return None;
        }
        let key = (meta.dev(), meta.ino());
        if let Some(&(start, len)) = self.links.get(&key) {
            return self.link_names.get(start..start + len).map(<[u8]>::to_vec);
        }
        self.links.insert(key, (self.link_names.len(), name.len()));
        self.link_names.extend_from_slice(name);
        None
    }

    /// Streams exactly `size` bytes of `file`, then the padding.
    fn content(&mut self, file: File, size: u64, host: &Path) -> Result<()> {
        let mut left = size;
        let mut reader = file.take(size);
        while left > 0 {
            let n = match reader.read(&mut self.buf) {
                Ok(0) => {
                    return Err(Error::FileChanged {
                        path: host.to_path_buf(),
                        expected: size,
                        actual: size - left,
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::fs("read", host)(e)),
            };
            left -= n as u64;
            let buf = std::mem::take(&mut self.buf);
            let r = self.put(&buf[..n]);
            self.buf = buf;
            r?;
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.put(&[0u8; BLOCK][..pad])
    }

    /// Writes the PAX header (if needed) and the USTAR header of one entry.
    fn header(
        &mut self,
        f: &Fields<'_>,
        records: &BTreeMap<Vec<u8>, Vec<u8>>,
        host: &Path,
    ) -> Result<()> {
        let mut pax = records.clone();
        let mut block = [0u8; BLOCK];
        if f.name.len() > 100 {
            pax.insert(b"path".to_vec(), f.name.to_vec());
        }
        put_bytes(&mut block[0..100], f.name);
        if f.link.len() > 100 {
            pax.insert(b"linkpath".to_vec(), f.link.to_vec());
        }
        put_bytes(&mut block[157..257], f.link);
        for (key, value, range, max) in [
            ("uid", f.uid, 108..116, MAX_OCTAL_8),
            ("gid", f.gid, 116..124, MAX_OCTAL_8),
            ("size", f.size, 124..136, MAX_OCTAL_12),
        ] {
            let fits = value <= max;
            if !fits {
                pax.insert(key.as_bytes().to_vec(), value.to_string().into_bytes());
            }
            put_octal(&mut block[range], if fits { value } else { 0 });
        }
        let mtime_fits = (0..=MAX_OCTAL_12 as i64).contains(&f.mtime);
        if !mtime_fits {
            pax.insert(b"mtime".to_vec(), f.mtime.to_string().into_bytes());
        }
        put_octal(
            &mut block[136..148],
            if mtime_fits { f.mtime as u64 } else { 0 },
        );
        put_octal(&mut block[100..108], f.mode as u64);
        if f.dev.0 > MAX_OCTAL_8 || f.dev.1 > MAX_OCTAL_8 {
            return Err(Error::Unencodable {
                field: "device number",
                path: host.to_path_buf(),
            });
        }
        put_octal(&mut block[329..337], f.dev.0);
        put_octal(&mut block[337..345], f.dev.1);
        block[156] = f.typeflag;
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        if !pax.is_empty() {
            self.pax(f.name, &pax)?;
        }
        finish_checksum(&mut block);
        self.put(&block)
    }

    /// A PAX extended header (`x`) with the given records, for the entry `name`.
    fn pax(&mut self, name: &[u8], records: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<()> {
        let mut data = Vec::new();
        for (k, v) in records {
            data.extend_from_slice(&pax_record(k, v));
        }
        let trimmed = name.strip_suffix(b"/").unwrap_or(name);
        let base = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => &trimmed[i + 1..],
            None => trimmed,
        };
        let pax_name = [b"PaxHeaders.0/".as_slice(), base].concat();
        let mut block = [0u8; BLOCK];
        put_bytes(&mut block[0..100], &pax_name);
        put_octal(&mut block[100..108], 0o644);
        put_octal(&mut block[108..116], 0);
        put_octal(&mut block[116..124], 0);
        put_octal(&mut block[124..136], data.len() as u64);
        put_octal(&mut block[136..148], 0);
        block[156] = b'x';
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        finish_checksum(&mut block);
        self.put(&block)?;
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        data.resize(data.len() + pad, 0);
        self.put(&data)
    }
}

/// Opens `name` in directory `dir` (`host` is its full path, for errors) if it is a
/// regular file, with its fstat: O_NOFOLLOW and O_NONBLOCK, so a name swapped for a
/// symlink or a FIFO since the walk is neither followed nor waited on, and the fstat
/// says what was opened. `None`: it is something else now (the caller looks at it with
/// lstat).
fn open_regular(
    dir: BorrowedFd<'_>,
    name: &Path,
    host: &Path,
) -> Result<Option<(File, fs::Metadata)>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let opened = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        // ELOOP: a symlink now; ENXIO: a socket.
        Err(Errno::LOOP | Errno::NXIO) => return Ok(None),
        Err(e) => return Err(Error::fs("open", host)(e.into())),
    };
    let meta = opened.metadata().map_err(Error::fs("stat", host))?;
    Ok(meta.is_file().then_some((opened, meta)))
}

/// One PAX record: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
pub(crate) fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut rec = len.to_string().into_bytes();
    rec.push(b' ');
    rec.extend_from_slice(key);
    rec.push(b'=');
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// Copies `value` into a NUL-padded field, truncating (PAX carries the full value).
fn put_bytes(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Writes `value` as zero-padded octal followed by a NUL, filling the field.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// Computes the header checksum (sum of bytes with the checksum field as spaces).
fn finish_checksum(block: &mut [u8; BLOCK]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(s.as_bytes());
}

#[cfg(test)]
#[path = "tar_write_tests.rs"]
mod tests;
