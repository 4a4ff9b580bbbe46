//! Writing copied entries into a step's root filesystem: every destination path is
//! resolved inside the root (a symlink in the image never leads out of it), parents are
//! created as needed, and mode, owner and mtime are set the way BuildKit sets them.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Timespec, Timestamps, CWD};

use super::source::{Node, SourceTree};
use crate::executor::error::{ExecError, Result};
use crate::layers::resolve_in_root;

/// How copied entries are owned and moded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrs {
    /// `--chown` ids; `None` keeps the source's (a stage) or uses 0:0 (the context).
    pub owner: Option<(u32, u32)>,
    /// Whether source owners are kept when there is no `--chown` (stage/image sources).
    pub keep_owner: bool,
    /// `--chmod`: replaces the permission bits of every copied entry.
    pub mode: Option<u32>,
}

impl Attrs {
    fn owner_of(&self, meta: &impl MetadataExt) -> (u32, u32) {
        match (self.owner, self.keep_owner) {
            (Some(o), _) => o,
            (None, true) => (meta.uid(), meta.gid()),
            (None, false) => (0, 0),
        }
    }

    fn mode_of(&self, meta: &impl MetadataExt) -> u32 {
        self.mode.unwrap_or(meta.mode() & 0o7777)
    }
}

/// The host path of image path `abs` inside `root`, symlinks in its parents followed
/// inside the root; the final component is followed too when `follow_final`.
pub fn host_path(root: &Path, abs: &str, follow_final: bool) -> Result<PathBuf> {
    Ok(resolve_in_root(root, Path::new(abs), follow_final)?)
}

/// `mkdir -p` of image path `abs` inside `root` (symlinks followed inside the root);
/// created directories get mode 0755 and `owner`. Returns the host path.
pub fn ensure_dir(root: &Path, abs: &str, owner: (u32, u32)) -> Result<PathBuf> {
    let host = host_path(root, abs, true)?;
    // Every existing prefix of the resolved path is a real directory (symlinks were
    // resolved), so only missing components remain to be made.
    let rel = host
        .strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut current = root.to_path_buf();
    for part in rel.components() {
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                let err = io::Error::from(io::ErrorKind::NotADirectory);
                return Err(ExecError::fs(
                    "cannot create directory over a file",
                    &current,
                )(err));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&current)
                    .map_err(ExecError::fs("cannot create directory", &current))?;
                fs::set_permissions(&current, fs::Permissions::from_mode(0o755))
                    .map_err(ExecError::fs("cannot set mode of", &current))?;
                chown(&current, owner)?;
            }
            Err(e) => return Err(ExecError::fs("cannot stat", current)(e)),
        }
    }
    Ok(host)
}

fn chown(path: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(ExecError::chown(path, uid, gid))
}

/// Gives `path` the modification time of `meta` (as both times; symlinks themselves).
pub fn set_mtime(path: &Path, meta: &impl MetadataExt) -> Result<()> {
    rfs::utimensat(CWD, path, &times_of(meta), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| ExecError::fs("cannot set times of", path)(e.into()))
}

/// The modification time of `meta`, as both times.
fn times_of(meta: &impl MetadataExt) -> Timestamps {
    let ts = Timespec {
        tv_sec: meta.mtime(),
        tv_nsec: meta.mtime_nsec(),
    };
    Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

/// Removes whatever non-directory is at `host` so a new entry can take its place.
fn clear(host: &Path) -> Result<()> {
    match fs::symlink_metadata(host) {
        Ok(m) if m.is_dir() => Err(ExecError::DirOntoFile {
            source_path: String::new(),
            dest: host.display().to_string(),
        }),
        Ok(_) => fs::remove_file(host).map_err(ExecError::fs("cannot replace", host)),
        Err(_) => Ok(()),
    }
}

/// An overlay step root and its upperdir. Below a directory this copy made, nothing
/// of the lower layers shows and the overlay has looked nothing up, so its contents are
/// written straight into the upperdir: a file created through overlayfs costs about 1.7
/// times one created on the filesystem below (100k-file COPYs). The overlay is
/// unmounted before the upperdir is read, and never sees those entries.
#[derive(Debug, Clone, Copy)]
pub struct Backing<'a> {
    /// The step root (the overlay's mount point).
    pub merged: &'a Path,
    /// The overlay's upperdir.
    pub upper: &'a Path,
}

impl Backing<'_> {
    /// Where a directory made through the overlay at `dest` is, if `dest` is in it.
    fn real(backing: Option<&Self>, dest: &Path) -> PathBuf {
        backing
            .and_then(|b| Some(b.upper.join(dest.strip_prefix(b.merged).ok()?)))
            .unwrap_or_else(|| dest.to_path_buf())
    }
}

/// What is known of a destination path before writing to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// Something may be there (the step's root had it, or an earlier source wrote it).
    MayExist,
    /// Nothing is: its parent directory was created by this copy (no lookup needed).
    Absent,
}

/// Copies one node (recursively for directories) to host path `dest`, whose parent
/// exists. `keep` filters descendants by their tree-relative path.
pub fn copy_node(tree: &SourceTree<'_>, node: &Node, dest: &Path, how: &How<'_>) -> Result<()> {
    write_node(tree, node, dest, how, Dest::MayExist)
}

/// Copies the contents of directory `node` into existing host directory `dest`.
pub fn copy_children(tree: &SourceTree<'_>, node: &Node, dest: &Path, how: &How<'_>) -> Result<()> {
    write_children(tree, node, dest, how, Dest::MayExist)
}

/// How a copy writes: owners and modes, which descendants it keeps, and the backing
/// directory of an overlay root.
pub struct How<'a> {
    pub attrs: &'a Attrs,
    /// Filters descendants by their tree-relative path.
    pub keep: &'a (dyn Fn(&str) -> Result<bool> + Sync),
    pub backing: Option<Backing<'a>>,
    /// Where unchanged files can be linked from (see [`super::Reuse`]).
    pub reuse: Option<super::reuse::ReuseAt<'a>>,
}

/// Subdirectories of one directory are written on up to this many threads.
const WRITERS: usize = 4;

fn write_children(
    tree: &SourceTree<'_>,
    node: &Node,
    dest: &Path,
    how: &How<'_>,
    state: Dest,
) -> Result<()> {
    let mut subdirs = Vec::new();
    for child in tree.children(&node.rel)? {
        if !(how.keep)(&child.rel)? {
            continue;
        }
        // The exact name (`rel` is lossy for a name that is not UTF-8).
        let child_dest = match child.host.file_name() {
            Some(name) => dest.join(name),
            None => dest.join(child.rel.rsplit('/').next().unwrap_or_default()),
        };
        if child.meta.is_dir() {
            subdirs.push((child, child_dest));
        } else {
            write_node(tree, &child, &child_dest, how, state)?;
        }
    }
    write_subdirs(tree, &subdirs, how, state)
}

/// Writes the subtrees of sibling directories, on several threads when there are
/// several: each subtree is its own set of paths, and creating files is most of a
/// large COPY (the kernel's work, which two cores share).
fn write_subdirs(
    tree: &SourceTree<'_>,
    subdirs: &[(Node, PathBuf)],
    how: &How<'_>,
    state: Dest,
) -> Result<()> {
    let threads = crate::cpus::available().min(WRITERS).min(subdirs.len());
    if threads < 2 || !PARALLEL.with(|p| p.get()) {
        return subdirs
            .iter()
            .try_for_each(|(child, dest)| write_node(tree, child, dest, how, state));
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let work = || -> Result<()> {
        // Below here each thread writes its subtrees alone.
        PARALLEL.with(|p| p.set(false));
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some((child, dest)) = subdirs.get(i) else {
                return Ok(());
            };
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(());
            }
            if let Err(e) = write_node(tree, child, dest, how, state) {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(e);
            }
        }
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut result = work();
        PARALLEL.with(|p| p.set(true));
        for helper in helpers {
            let joined = helper
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            result = result.and(joined);
        }
        result
    })
}

thread_local! {
    /// Whether this thread may still split a directory's subtrees over threads (only
    /// the outermost split does: one level of threads, no nesting).
    static PARALLEL: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

fn write_node(
    tree: &SourceTree<'_>,
    node: &Node,
    dest: &Path,
    how: &How<'_>,
    state: Dest,
) -> Result<()> {
    let (ft, attrs) = (node.meta.file_type(), how.attrs);
    if ft.is_dir() {
        let children = make_dir(node, dest, state)?;
        chown(dest, attrs.owner_of(&node.meta))?;
        fs::set_permissions(dest, fs::Permissions::from_mode(attrs.mode_of(&node.meta)))
            .map_err(ExecError::fs("cannot set mode of", dest))?;
        let inside = match children {
            Dest::Absent => Backing::real(how.backing.as_ref(), dest),
            Dest::MayExist => dest.to_path_buf(),
        };
        write_children(tree, node, &inside, how, children)?;
        return set_mtime(dest, &node.meta);
    }
    if state == Dest::MayExist {
        clear(dest)?;
    }
    if ft.is_file() {
        let owner = attrs.owner_of(&node.meta);
        let mode = attrs.mode_of(&node.meta);
        if how.reuse.is_some_and(|r| r.link(node, dest, owner, mode)) {
            return Ok(());
        }
        return copy_file(tree.open_file(node)?, dest, &node.meta, owner, mode);
    }
    if ft.is_symlink() {
        let target =
            fs::read_link(&node.host).map_err(ExecError::fs("cannot read link", &node.host))?;
        std::os::unix::fs::symlink(&target, dest)
            .map_err(ExecError::fs("cannot create symlink", dest))?;
    } else {
        make_special(&node.meta, dest)?;
    }
    chown(dest, attrs.owner_of(&node.meta))?;
    set_mtime(dest, &node.meta)
}

/// Makes directory `dest` for directory `node` unless one is there; returns what is
/// known of the paths inside it.
fn make_dir(node: &Node, dest: &Path, state: Dest) -> Result<Dest> {
    if state == Dest::MayExist {
        match fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => return Ok(Dest::MayExist),
            Ok(_) => {
                return Err(ExecError::DirOntoFile {
                    source_path: node.rel.clone(),
                    dest: dest.display().to_string(),
                });
            }
            Err(_) => {}
        }
    }
    fs::create_dir(dest).map_err(ExecError::fs("cannot create directory", dest))?;
    Ok(Dest::Absent)
}

/// Files up to this size are copied with one read and one write through a buffer; larger
/// ones by the kernel (`copy_file_range`, else `sendfile`).
const SMALL_FILE: u64 = 64 * 1024;

/// Copies a regular file into new file `dest` and gives it `owner`, `mode` and the
/// mtime of `meta`, through the new file's descriptor (no path lookups: in a 100k-file
/// COPY those are a third of the system time).
fn copy_file(
    mut input: File,
    dest: &Path,
    meta: &impl MetadataExt,
    (uid, gid): (u32, u32),
    mode: u32,
) -> Result<()> {
    let mut output = create_new(dest)?;
    let copied = if meta.size() <= SMALL_FILE {
        copy_small(&mut input, &mut output)
    } else {
        io::copy(&mut input, &mut output).map(drop)
    };
    copied.map_err(ExecError::fs("cannot copy to", dest))?;
    let failed = |what: &'static str| {
        move |e: rustix::io::Errno| ExecError::fs(what, dest)(io::Error::from(e))
    };
    // Owner before mode: a chown clears set-id bits.
    rfs::fchown(
        &output,
        Some(rfs::Uid::from_raw(uid)),
        Some(rfs::Gid::from_raw(gid)),
    )
    .map_err(|e| ExecError::chown(dest, uid, gid)(e.into()))?;
    rfs::fchmod(&output, rfs::Mode::from_raw_mode(mode)).map_err(failed("cannot set mode of"))?;
    rfs::futimens(&output, &times_of(meta)).map_err(failed("cannot set times of"))
}

/// Reads `input` to its end (whatever its size is by now) through a stack buffer.
fn copy_small(input: &mut File, output: &mut File) -> io::Result<()> {
    use io::{Read, Write};
    let mut buf = [0u8; SMALL_FILE as usize];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => output.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Creates `dest` (which must not exist; never through a symlink), mode 0600 until the
/// caller sets the final mode.
fn create_new(dest: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc_o_nofollow())
        .mode(0o600)
        .open(dest)
        .map_err(ExecError::fs("cannot create", dest))
}

/// Writes `data` to a new file at host path `dest`.
pub fn write_file(
    dest: &Path,
    data: &[u8],
    mode: u32,
    owner: (u32, u32),
    mtime: i64,
) -> Result<()> {
    write_stream(dest, &mut &data[..], mode, owner, mtime)
}

/// Streams `data` into a new file at host path `dest`, then sets owner, mode and mtime.
pub fn write_stream(
    dest: &Path,
    data: &mut dyn io::Read,
    mode: u32,
    owner: (u32, u32),
    mtime: i64,
) -> Result<()> {
    clear(dest)?;
    let mut out = create_new(dest)?;
    io::copy(data, &mut out).map_err(ExecError::fs("cannot write", dest))?;
    chown(dest, owner)?;
    fs::set_permissions(dest, fs::Permissions::from_mode(mode))
        .map_err(ExecError::fs("cannot set mode of", dest))?;
    let ts = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rfs::utimensat(
        CWD,
        dest,
        &Timestamps {
            last_access: ts,
            last_modification: ts,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| ExecError::fs("cannot set times of", dest)(e.into()))
}

fn make_special(meta: &impl MetadataExt, dest: &Path) -> Result<()> {
    let mode = meta.mode();
    let kind = rfs::FileType::from_raw_mode(mode);
    rfs::mknodat(
        CWD,
        dest,
        kind,
        rfs::Mode::from_raw_mode(mode & 0o7777),
        meta.rdev(),
    )
    .map_err(|e| ExecError::fs("cannot create special file", dest)(e.into()))
}

const fn libc_o_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}
