//! Test helpers shared by the `layers` tests: privilege checks, whiteout nodes, and a
//! tar lister built on the `tar` crate's reader (an implementation independent of ours).

use std::io::Read;
use std::path::Path;

/// Whether the test may run; without root it is skipped with a printed reason, except
/// under `CI=true`, where a missing prerequisite is a failure.
pub(crate) fn require_root(what: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run the layers tests as root ({what})"
    );
    // The library never prints; tests may.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("skipped: {what} needs root");
    }
    false
}

/// Creates a 0:0 character device (an overlay whiteout) at `path`.
pub(crate) fn mknod_whiteout(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
}

/// One tar entry as another reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub path: String,
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: String,
    pub data: Vec<u8>,
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub pax_keys: Vec<String>,
}

/// Lists an uncompressed tar with the `tar` crate.
pub(crate) fn list_tar(bytes: &[u8]) -> Vec<Listed> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut e = entry.unwrap();
        let mut xattrs = Vec::new();
        let mut pax_keys = Vec::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for ext in pax {
                let ext = ext.unwrap();
                let key = ext.key().unwrap().to_owned();
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
                }
                pax_keys.push(key);
            }
        }
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Listed {
            path: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            kind: h.entry_type().as_byte() as char,
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default(),
            data,
            xattrs,
            pax_keys,
        });
    }
    out
}

/// The names in a tar, in order.
pub(crate) fn names(bytes: &[u8]) -> Vec<String> {
    list_tar(bytes).into_iter().map(|l| l.path).collect()
}

/// Writes the uncompressed layer of `source`.
pub(crate) fn tar_of(source: super::Changes<'_>, epoch: Option<i64>) -> Vec<u8> {
    let opts = super::WriteOptions {
        compression: super::Compression::None,
        source_date_epoch: epoch,
        threads: 1,
    };
    let mut out = Vec::new();
    super::write_layer(source, &opts, &mut out).unwrap();
    out
}

/// GNU tar, an independent reader, lists the archive without complaint.
pub(crate) fn assert_gnu_tar_lists(tar: &[u8], expect_lines: usize) {
    let t = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(t.path(), tar).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(t.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "tar -tvf: {stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        expect_lines
    );
}
