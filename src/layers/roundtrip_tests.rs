//! Property test: random small trees survive write -> apply -> write byte for byte, for
//! every compression. 24 cases by default; `PROPTEST_CASES` raises the count.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::testutil::tar_of;
use super::{
    apply_layer, write_layer, ApplyOptions, Changes, Compression, WhiteoutMode, WriteOptions,
};

#[derive(Debug, Clone)]
enum Node {
    Dir { mode: u32 },
    File { data: Vec<u8>, mode: u32 },
    Symlink { target: String },
    Hardlink { to: usize },
    Fifo,
}

#[derive(Debug, Clone)]
struct Item {
    path: Vec<String>,
    node: Node,
    mtime: i64,
    xattr: Option<Vec<u8>>,
}

fn item() -> impl Strategy<Value = Item> {
    let name = prop::sample::select(vec!["a", "b", "c", "d-e", "f.g", "Z", "long"]);
    let path = prop::collection::vec(name, 1..4).prop_map(|v| {
        v.into_iter()
            .map(|s| {
                if s == "long" {
                    "n".repeat(120)
                } else {
                    s.to_owned()
                }
            })
            .collect::<Vec<_>>()
    });
    let node = prop_oneof![
        (0u32..0o7777).prop_map(|m| Node::Dir { mode: m | 0o700 }),
        (prop::collection::vec(any::<u8>(), 0..3000), 0u32..0o7777).prop_map(|(data, m)| {
            Node::File {
                data,
                mode: m | 0o400,
            }
        }),
        "[a-z./]{1,20}".prop_map(|target| Node::Symlink { target }),
        (0usize..8).prop_map(|to| Node::Hardlink { to }),
        Just(Node::Fifo),
    ];
    let xattr = prop::option::of(prop::collection::vec(any::<u8>(), 0..40));
    (path, node, 0i64..4_000_000_000, xattr).prop_map(|(path, node, mtime, xattr)| Item {
        path,
        node,
        mtime,
        xattr,
    })
}

/// Builds the items that fit (a later item whose path is taken, or whose parent is not a
/// directory, is skipped).
fn build(root: &Path, items: &[Item]) {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs: Vec<(PathBuf, i64)> = Vec::new();
    for it in items {
        let p = it.path.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        if !real_parents(root, &it.path) || fs::symlink_metadata(&p).is_ok() {
            continue;
        }
        match &it.node {
            Node::Dir { mode } => {
                fs::create_dir(&p).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
                dirs.push((p.clone(), it.mtime));
            }
            Node::File { data, mode } => {
                fs::write(&p, data).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
                files.push(p.clone());
            }
            Node::Symlink { target } => symlink(target, &p).unwrap(),
            Node::Hardlink { to } => match files.get(*to) {
                Some(f) => fs::hard_link(f, &p).unwrap(),
                None => continue,
            },
            Node::Fifo => rustix::fs::mknodat(
                rustix::fs::CWD,
                p.as_path(),
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o640),
                0,
            )
            .unwrap(),
        }
        // user.* xattrs exist only on regular files and directories.
        if let (Some(v), true) = (
            &it.xattr,
            matches!(it.node, Node::Dir { .. } | Node::File { .. }),
        ) {
            rustix::fs::lsetxattr(p.as_path(), "user.prop", v, rustix::fs::XattrFlags::empty())
                .unwrap();
        }
        let t = filetime::FileTime::from_unix_time(it.mtime, 0);
        filetime::set_symlink_file_times(&p, t, t).unwrap();
    }
    // Directory mtimes last, deepest first: creating children changed them.
    for (d, mtime) in dirs.iter().rev() {
        let t = filetime::FileTime::from_unix_time(*mtime, 0);
        filetime::set_symlink_file_times(d, t, t).unwrap();
    }
}

/// Creates the parents of `path` below `root`; false when one exists as a non-directory
/// (a symlink included: following one could lead out of the temporary directory).
fn real_parents(root: &Path, path: &[String]) -> bool {
    let mut dir = root.to_path_buf();
    for c in &path[..path.len() - 1] {
        dir.push(c);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return false,
            Err(_) => fs::create_dir(&dir).unwrap(),
        }
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24)))]

    #[test]
    fn random_trees_round_trip(
        items in prop::collection::vec(item(), 0..24),
        compression in prop_oneof![
            Just(Compression::None),
            Just(Compression::Gzip { level: 1 }),
            Just(Compression::zstd()),
        ],
        epoch in prop::option::of(0i64..4_000_000_000),
    ) {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        fs::create_dir(&src).unwrap();
        fs::create_dir(&dst).unwrap();
        build(&src, &items);
        let first = tar_of(Changes::Tree(&src), epoch);
        let opts = WriteOptions { compression, source_date_epoch: epoch, threads: 2 };
        let mut blob = Vec::new();
        let written = write_layer(Changes::Tree(&src), &opts, &mut blob).unwrap();
        let applied = apply_layer(&blob[..], &dst, &ApplyOptions {
            whiteouts: WhiteoutMode::Overlay,
            compression: None,
        }).unwrap();
        prop_assert_eq!(applied.diff_id, written.diff_id);
        let second = tar_of(Changes::Tree(&dst), epoch);
        prop_assert!(first == second, "tar changed after a round trip");
    }
}
