//! Tests with real overlay mounts (root only): many lowerdirs, unmounting, and the
//! whole step cycle: mount, change, diff the upperdir, apply, stack again.

use super::*;
use crate::layers::testutil::{list_tar, names, require_root, tar_of, Listed};
use crate::layers::{apply_layer, diff, ApplyOptions, Changes, WhiteoutMode};

fn is_mounted(target: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let t = target.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(t))
}

/// The super options of the mount on `target` (mountinfo's last field).
fn super_options(target: &Path) -> String {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let t = target.to_str().unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(t))
        .unwrap();
    line.rsplit(' ').next().unwrap().to_owned()
}

fn spec(base: &Path, lowerdirs: Vec<PathBuf>) -> OverlaySpec {
    OverlaySpec {
        lowerdirs,
        upperdir: base.join("upper"),
        workdir: base.join("work"),
    }
}

/// A tree listing without mtimes (overlay updates directory mtimes as it works).
fn listing(root: &Path) -> Vec<Listed> {
    let mut l = list_tar(&tar_of(Changes::Tree(root), None));
    for e in &mut l {
        e.mtime = 0;
    }
    l
}

#[test]
fn mounts_150_lowerdirs_with_both_apis() {
    if !require_root("overlay mounts") {
        return;
    }
    for api in [MountApi::Auto, MountApi::Legacy] {
        let t = tempfile::tempdir().unwrap();
        // Long names on purpose: 150 of them are far over one page of options.
        let lowers: Vec<PathBuf> = (0..150)
            .map(|i| {
                let d = t.path().join(format!("layer-{i:03}-{}", "l".repeat(60)));
                fs::create_dir(&d).unwrap();
                fs::write(d.join(format!("f{i}")), "").unwrap();
                fs::write(d.join("shared"), i.to_string()).unwrap();
                d
            })
            .collect();
        let target = t.path().join("merged");
        fs::create_dir(&target).unwrap();
        let m = OverlayMount::mount_with(&spec(t.path(), lowers), &target, api).unwrap();
        assert!(is_mounted(&target), "{api:?}");
        // No flush of the store's whole filesystem at fsync or unmount.
        let options = super_options(&target);
        // (shown as `fsync=volatile` since Linux 6.6)
        let volatile = |o: &str| o == "volatile" || o == "fsync=volatile";
        assert!(options.split(',').any(volatile), "{api:?}: {options}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 151);
        assert_eq!(
            fs::read_to_string(target.join("shared")).unwrap(),
            "0",
            "top layer wins"
        );
        fs::write(target.join("new"), "n").unwrap();
        drop(m);
        assert!(!is_mounted(&target), "{api:?}: dropped guard unmounts");
        assert_eq!(fs::read(t.path().join("upper/new")).unwrap(), b"n");
    }
}

#[test]
fn busy_mounts_are_detached_and_scratch_needs_no_overlay() {
    if !require_root("mounts") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("merged");
    fs::create_dir(&target).unwrap();
    let m = OverlayMount::mount(&spec(t.path(), Vec::new()), &target).unwrap();
    fs::write(target.join("f"), "x").unwrap();
    let busy = fs::File::open(target.join("f")).unwrap();
    m.unmount().unwrap(); // busy: detached lazily
    assert!(!is_mounted(&target));
    drop(busy);
    assert_eq!(fs::read(t.path().join("upper/f")).unwrap(), b"x");
    // Reusing a non-empty upperdir is refused.
    assert!(matches!(
        OverlayMount::mount(&spec(t.path(), Vec::new()), &target),
        Err(Error::MountOptions { .. })
    ));
}

#[test]
fn a_step_round_trips_through_upperdir_tar_and_apply() {
    if !require_root("overlay mounts") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let lower = t.path().join("lower");
    fs::create_dir_all(lower.join("etc")).unwrap();
    fs::write(lower.join("etc/passwd"), "root:x:0:0").unwrap();
    fs::write(lower.join("etc/group"), "root:x:0:").unwrap();
    fs::create_dir_all(lower.join("dir/sub")).unwrap();
    fs::write(lower.join("dir/a"), "a").unwrap();
    fs::create_dir_all(lower.join("replace")).unwrap();
    fs::write(lower.join("replace/x"), "x").unwrap();
    fs::write(lower.join("file"), "old").unwrap();

    let step = t.path().join("step");
    let target = t.path().join("merged");
    fs::create_dir(&target).unwrap();
    let m = OverlayMount::mount(&spec(&step, vec![lower.clone()]), &target).unwrap();
    fs::remove_file(target.join("etc/passwd")).unwrap(); // delete a lower file
    fs::remove_dir_all(target.join("dir")).unwrap(); // rm -rf dir && mkdir dir
    fs::create_dir(target.join("dir")).unwrap();
    fs::write(target.join("dir/new"), "n").unwrap();
    fs::remove_dir_all(target.join("replace")).unwrap(); // replace a dir with a file
    fs::write(target.join("replace"), "now a file").unwrap();
    fs::write(target.join("file"), "new").unwrap();
    let merged = listing(&target);
    m.unmount().unwrap();

    let tar = tar_of(Changes::Upperdir(&step.join("upper")), None);
    assert_eq!(
        names(&tar),
        [
            "dir/",
            "dir/.wh..wh..opq",
            "dir/new",
            "etc/",
            "etc/.wh.passwd",
            "file",
            "replace"
        ]
    );
    crate::layers::testutil::assert_gnu_tar_lists(&tar, 7);

    // Applied in overlay form, the layer stacks on the lower as the mount did.
    let snap = t.path().join("snap");
    fs::create_dir(&snap).unwrap();
    let overlay = ApplyOptions {
        whiteouts: WhiteoutMode::Overlay,
        compression: None,
    };
    apply_layer(&tar[..], &snap, &overlay).unwrap();
    let again = t.path().join("again");
    let target2 = t.path().join("merged2");
    fs::create_dir(&target2).unwrap();
    let m2 =
        OverlayMount::mount(&spec(&again, vec![snap.clone(), lower.clone()]), &target2).unwrap();
    assert_eq!(listing(&target2), merged);
    drop(m2);
    // The snapshot written back as an upperdir is the same layer, byte for byte.
    assert_eq!(tar_of(Changes::Upperdir(&snap), None), tar);

    // Applied with deletions onto a copy of the lower, it gives the merged tree too.
    let copy = t.path().join("copy");
    fs::create_dir(&copy).unwrap();
    let delete = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
        compression: None,
    };
    let base_tar = tar_of(Changes::Tree(&lower), None);
    apply_layer(&base_tar[..], &copy, &delete).unwrap();
    apply_layer(&tar[..], &copy, &delete).unwrap();
    assert_eq!(listing(&copy), merged);

    // The native differ finds the same step, as deletions instead of an opaque dir.
    // (Both trees come from tars, so their mtimes are whole seconds and same-size
    // files are told apart by content.)
    let base = t.path().join("base");
    fs::create_dir(&base).unwrap();
    apply_layer(&base_tar[..], &base, &delete).unwrap();
    let native = names(&tar_of(
        Changes::Diff {
            lower: &base,
            upper: &copy,
        },
        None,
    ));
    assert_eq!(
        native,
        [
            "dir/",
            "dir/.wh.a",
            "dir/.wh.sub",
            "dir/new",
            "etc/",
            "etc/.wh.passwd",
            "file",
            "replace"
        ]
    );
    assert_eq!(diff(&lower, &lower).unwrap().changes().len(), 0);
}
