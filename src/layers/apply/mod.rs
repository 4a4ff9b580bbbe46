//! Applying a layer (plain, gzip or zstd tar) to a directory, as root.
//!
//! Security invariants (the tar is untrusted input):
//! - every name is normalised by `resolve::normalize`: absolute names become relative,
//!   a `..` that climbs above the target refuses the entry;
//! - every write goes through a directory descriptor opened by `resolve::DirWalker`,
//!   which never follows a symlink, and through `*at` calls on the final name that do
//!   not follow it either (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `unlinkat` before
//!   create); a parent that is a symlink refuses the entry;
//! - hardlink targets are normalised and walked the same way;
//! - a whiteout must name one entry of its directory: `.wh.`, `.wh..` and `.wh...` are
//!   refused (containerd: "invalid whiteout name"), and every removal goes through
//!   `resolve::remove_beneath`/`unlink_beneath`/`remove_tree`, which act on one entry of
//!   a directory opened beneath the root, never on `.`, `..` or a path;
//! - meta headers are bounded per entry by the tar reader (1 MiB each, as Go's
//!   `archive/tar`), so memory stays bounded whatever the layer;
//! - `trusted.overlay.*` and `trusted.rbuild.*` xattrs from the tar are never applied (they
//!   would steer overlayfs or the native snapshotter).
//!
//! Semantics follow containerd's `archive/tar.go`: an existing directory is kept and
//! its metadata updated when the entry is a directory, anything else at the path is
//! removed first; missing parents are created 0755; directory mtimes are set after all
//! entries, deepest first. Whiteouts follow [`WhiteoutMode`].

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

mod meta;
mod whiteout;
mod writers;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec};
use rustix::io::Errno;

use super::compress::{decoder, Compression};
use super::error::{Error, Result, UnsafeReason};
use super::resolve::{normalize, remove_tree, unlink_beneath, DirWalker, WalkError};
use super::tar_read::{EntryHeader, TarReader};
use super::tar_write::WHITEOUT_PREFIX;
use crate::digest::{Digest, Hasher};
use crate::fs_error::FsError;
use meta::{finish_node, set_owner_mode_xattrs, times, Meta};
use writers::{write_file, Writers};

/// What to do with whiteout entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Keep them in overlayfs form, so the target can be an overlay lowerdir: `.wh.NAME`
    /// becomes a 0:0 character device `NAME`, `.wh..wh..opq` sets
    /// `trusted.overlay.opaque=y` on its directory.
    Overlay,
    /// Carry them out on the target: remove `NAME`; remove what an opaque directory held
    /// before this layer (native snapshots, `--output type=local`).
    Delete,
}

/// How to apply a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Whiteout handling.
    pub whiteouts: WhiteoutMode,
    /// The layer's compression (e.g. from its media type); `None` detects it from the
    /// magic bytes.
    pub compression: Option<Compression>,
}

/// What applying read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Digest of the layer stream as read (compressed): check it against the manifest.
    pub digest: Digest,
    /// Digest of the uncompressed tar: check it against the config's diff IDs.
    pub diff_id: Digest,
    /// Bytes read from the layer stream.
    pub size: u64,
    /// Tar entries seen.
    pub entries: u64,
}

/// Applies the layer read from `layer` to the directory `target`.
///
/// The layer stream is read, hashed and decompressed on a thread of its own
/// (`inflate`), which hands the tar to this one in 256 KiB pieces: on an empty
/// store, decompressing a base layer and creating its files (this thread and the
/// writers') then overlap instead of taking turns.
pub fn apply_layer(layer: impl Read + Send, target: &Path, opts: &ApplyOptions) -> Result<Applied> {
    let read_err = |source| Error::ReadLayer { source };
    let walker = DirWalker::new(target).map_err(Error::fs("open", target))?;
    let compression = opts.compression;
    let (entries, diff_id, raw) = std::thread::scope(|scope| {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let inflating = scope.spawn(move || inflate(layer, compression, &tx));
        let mut reader = TarReader::new(HashRead::new(Chunks::new(rx)));
        let applied = apply_entries(&mut reader, walker, opts.whiteouts, scope);
        // Hash what follows the end-of-archive blocks too: the digests cover every byte.
        let rest = applied.and_then(|entries| {
            let mut tar_stream = reader.into_inner();
            io::copy(&mut tar_stream, &mut io::sink()).map_err(read_err)?;
            Ok((entries, tar_stream.finish().0))
        });
        // On an error the receiver is gone by now (dropped with `reader`), so the
        // inflating thread stops at its next chunk.
        let raw = match inflating.join() {
            Ok(raw) => raw,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        rest.map(|(entries, diff_id)| (entries, diff_id, raw))
    })?;
    let (digest, size) = raw.map_err(read_err)?;
    Ok(Applied {
        digest,
        diff_id,
        size,
        entries,
    })
}

/// Pieces of decompressed tar handed from [`inflate`] to the applier.
const CHUNK: usize = 256 * 1024;
/// Pieces in flight at most (memory: `IN_FLIGHT + 2` pieces).
const IN_FLIGHT: usize = 4;

/// Applies every entry of `reader` with the writer threads of `scope`; the entry count.
fn apply_entries<'s, R: Read>(
    reader: &mut TarReader<R>,
    walker: DirWalker,
    mode: WhiteoutMode,
    scope: &'s std::thread::Scope<'s, '_>,
) -> Result<u64> {
    let mut ap = Applier {
        walker,
        mode,
        written: HashSet::new(),
        dirs: Vec::new(),
        writers: Writers::start(scope),
    };
    let mut entries = 0;
    while let Some(header) = reader.next_entry()? {
        ap.entry(&header, reader)?;
        entries += 1;
    }
    ap.finish()?;
    Ok(entries)
}

/// Reads `layer` to its end, hashing it, and sends its decompressed bytes to `tx` in
/// pieces of [`CHUNK`]; a read or decompression error is sent as the last piece. The
/// layer's digest and size, once every byte was read (also those after the compressed
/// stream), or the error; stops early, with an error, when the receiver is gone.
fn inflate(
    layer: impl Read,
    compression: Option<Compression>,
    tx: &SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<(Digest, u64)> {
    let mut raw = HashRead::new(layer);
    if let Err(e) = send_decompressed(&mut raw, compression, tx) {
        // The applier sees the error where the tar stops (a copy: the error is ours too).
        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
        return Err(e);
    }
    io::copy(&mut raw, &mut io::sink())?;
    Ok(raw.finish())
}

/// Sends the decompressed stream of `raw` to `tx`, piece by piece, to its end.
fn send_decompressed(
    raw: &mut impl Read,
    compression: Option<Compression>,
    tx: &SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<()> {
    let mut decompressed = decoder(raw, compression)?;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        (&mut decompressed)
            .take(CHUNK as u64)
            .read_to_end(&mut chunk)?;
        if chunk.is_empty() {
            return Ok(());
        }
        tx.send(Ok(chunk))
            .map_err(|_| io::Error::other("the layer's reader stopped"))?;
    }
}

/// The receiving end of [`inflate`] as a reader.
struct Chunks {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Chunks {
    fn new(rx: Receiver<io::Result<Vec<u8>>>) -> Self {
        Chunks {
            rx,
            chunk: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.chunk = next?;
                    self.pos = 0;
                }
                Err(_) => return Ok(0), // the stream ended
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A reader that hashes what it reads.
struct HashRead<R> {
    inner: R,
    hasher: Hasher<io::Sink>,
}

impl<R: Read> HashRead<R> {
    fn new(inner: R) -> Self {
        HashRead {
            inner,
            hasher: Hasher::new(io::sink()),
        }
    }

    fn finish(self) -> (Digest, u64) {
        let (d, n, _) = self.hasher.finish();
        (d, n)
    }
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.write_all(&buf[..n])?;
        Ok(n)
    }
}

struct Applier {
    walker: DirWalker,
    mode: WhiteoutMode,
    /// Paths this layer wrote (only tracked in `Delete` mode, for opaque directories).
    written: HashSet<Vec<OsString>>,
    /// Directories whose mtime is set at the end.
    dirs: Vec<(Vec<OsString>, Timespec)>,
    /// Small regular files are written on these threads (`writers.rs`).
    writers: Writers,
}

impl Applier {
    fn entry<R: Read>(&mut self, h: &EntryHeader, content: &mut TarReader<R>) -> Result<()> {
        let name = String::from_utf8_lossy(&h.name).into_owned();
        let unsafe_entry = |reason| Error::UnsafeEntry {
            entry: name.clone(),
            reason,
        };
        let comps = normalize(&h.name).ok_or_else(|| unsafe_entry(UnsafeReason::EscapesRoot))?;
        let meta = Meta::of(h, &name)?;
        let Some((base, parent_comps)) = comps.split_last() else {
            if h.kind == b'5' {
                let root = self
                    .walker
                    .root()
                    .try_clone()
                    .map_err(Error::apply("open", &name))?;
                self.dirs.push((Vec::new(), meta.mtime));
                return set_owner_mode_xattrs(&root, &meta, &name);
            }
            return Err(unsafe_entry(UnsafeReason::ReplacesRoot));
        };
        if let Some(rest) = base.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            self.writers.settle()?;
            return self.whiteout(parent_comps, base, rest, &name);
        }
        // Nothing looks at a path a writer thread may still be creating.
        self.writers.clear_path(&comps)?;
        let parent = self.parent(parent_comps, true, &name)?;
        match h.kind {
            b'5' => self.dir(&parent, &comps, &meta, &name)?,
            b'0' | b'7' => {
                self.replace(&parent, base, false, &name)?;
                if self.writers.takes(h.size) {
                    let mut data = Vec::with_capacity(h.size as usize); // at most SMALL_FILE
                    content
                        .read_to_end(&mut data)
                        .map_err(|source| Error::ReadLayer { source })?;
                    let meta = meta.into_owned();
                    self.writers
                        .queue(&comps, parent, data, meta, name.clone())?;
                } else {
                    write_file(&parent, base, content, &meta, &name)?;
                }
            }
            b'1' => self.hardlink(&h.link, &parent, base, &name)?,
            b'2' => {
                self.replace(&parent, base, false, &name)?;
                rfs::symlinkat(OsStr::from_bytes(&h.link), &parent, base.as_os_str())
                    .map_err(|e| Error::apply("create symlink", &name)(e.into()))?;
                finish_node(&parent, base, &meta, false, &name)?;
            }
            b'3' | b'4' | b'6' => {
                let ft = match h.kind {
                    b'3' => FileType::CharacterDevice,
                    b'4' => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = rfs::makedev(h.dev.0, h.dev.1);
                self.replace(&parent, base, false, &name)?;
                rfs::mknodat(&parent, base.as_os_str(), ft, Mode::empty(), dev)
                    .map_err(|e| Error::apply("create device node", &name)(e.into()))?;
                finish_node(&parent, base, &meta, true, &name)?;
            }
            other => {
                return Err(Error::UnsupportedEntry {
                    entry: name,
                    kind: other as char,
                })
            }
        }
        if self.mode == WhiteoutMode::Delete {
            // Implicitly created parents belong to this layer too.
            for i in 1..comps.len() {
                self.written.insert(comps[..i].to_vec());
            }
            self.written.insert(comps);
        }
        Ok(())
    }

    /// Opens the parent directory of an entry, refusing symlinked parents.
    fn parent(&mut self, comps: &[OsString], create: bool, name: &str) -> Result<OwnedFd> {
        self.walker
            .open_dir(comps, create)
            .map_err(|e| walk_error(e, name))
    }

    /// A directory entry: keep an existing directory, else replace what is there.
    fn dir(&mut self, parent: &OwnedFd, comps: &[OsString], meta: &Meta, name: &str) -> Result<()> {
        let base = comps.last().map(OsString::as_os_str).unwrap_or_default();
        let exists_as_dir = self.replace(parent, base, true, name)?;
        if !exists_as_dir {
            rfs::mkdirat(parent, base, Mode::from_raw_mode(0o700))
                .map_err(|e| Error::apply("create directory", name)(e.into()))?;
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(parent, base, flags, Mode::empty())
            .map_err(|e| Error::apply("open directory", name)(e.into()))?;
        set_owner_mode_xattrs(&fd, meta, name)?;
        self.dirs.push((comps.to_vec(), meta.mtime));
        Ok(())
    }

    /// Removes whatever is at `parent/base` unless it is a directory and `keep_dir`;
    /// returns whether a directory was kept.
    fn replace(
        &mut self,
        parent: &OwnedFd,
        base: &OsStr,
        keep_dir: bool,
        name: &str,
    ) -> Result<bool> {
        let st = match rfs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(Error::apply("stat existing path", name)(e.into())),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory && keep_dir {
            return Ok(true);
        }
        // A removal waits for the files being written (one may be below it).
        self.writers.settle()?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            self.walker.invalidate();
            remove_tree(parent, base).map_err(Error::apply("remove existing directory", name))?;
        } else {
            unlink_beneath(parent, base).map_err(Error::apply("remove existing file", name))?;
        }
        Ok(false)
    }

    fn hardlink(
        &mut self,
        target: &[u8],
        parent: &OwnedFd,
        base: &OsStr,
        name: &str,
    ) -> Result<()> {
        let target_name = String::from_utf8_lossy(target).into_owned();
        let missing = || Error::MissingLinkTarget {
            entry: name.to_owned(),
            target: target_name.clone(),
        };
        let tcomps = normalize(target).ok_or_else(|| Error::UnsafeEntry {
            entry: name.to_owned(),
            reason: UnsafeReason::LinkEscapesRoot,
        })?;
        let Some((tbase, tparent_comps)) = tcomps.split_last() else {
            return Err(missing());
        };
        self.writers.clear_path(&tcomps)?;
        let tparent = match self.walker.open_dir(tparent_comps, false) {
            Ok(fd) => fd,
            Err(WalkError::NotFound) => return Err(missing()),
            Err(e) => return Err(walk_error(e, name)),
        };
        let tst = match rfs::statat(&tparent, tbase, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Err(missing()),
            Err(e) => return Err(Error::apply("stat hardlink target", name)(e.into())),
        };
        if let Ok(st) = rfs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW) {
            if st.st_dev == tst.st_dev && st.st_ino == tst.st_ino {
                return Ok(()); // already this inode
            }
        }
        self.replace(parent, base, false, name)?;
        rfs::linkat(&tparent, tbase, parent, base, AtFlags::empty())
            .map_err(|e| Error::apply("create hardlink", name)(e.into()))
    }

    /// Waits for the files being written, then sets directory mtimes, deepest first
    /// (children changed them while applying).
    fn finish(&mut self) -> Result<()> {
        self.writers.settle()?;
        for (comps, mtime) in std::mem::take(&mut self.dirs).into_iter().rev() {
            let shown = comps.join(OsStr::new("/")).to_string_lossy().into_owned();
            let ts = times(mtime);
            let Some((base, parent_comps)) = comps.split_last() else {
                rfs::futimens(self.walker.root(), &ts)
                    .map_err(|e| Error::apply("set mtime", &shown)(e.into()))?;
                continue;
            };
            let parent = match self.walker.open_dir(parent_comps, false) {
                Ok(fd) => fd,
                Err(WalkError::NotFound) => continue, // removed by a later whiteout
                Err(e) => return Err(walk_error(e, &shown)),
            };
            match rfs::utimensat(&parent, base, &ts, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(Error::apply("set mtime", &shown)(e.into())),
            }
        }
        Ok(())
    }
}

/// Maps a walk failure to the error naming the entry.
fn walk_error(e: WalkError, name: &str) -> Error {
    let unsafe_entry = |reason| Error::UnsafeEntry {
        entry: name.to_owned(),
        reason,
    };
    match e {
        WalkError::Symlink => unsafe_entry(UnsafeReason::ThroughSymlink),
        WalkError::NotDir => unsafe_entry(UnsafeReason::ParentNotDirectory),
        WalkError::NotFound => Error::apply("open parent directory", name)(Errno::NOENT.into()),
        WalkError::Io(e) => Error::apply("open parent directory", name)(e),
    }
}

#[cfg(test)]
mod tests;
