//! Tests of the stat cache: reuse, racily clean entries, the file format.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use super::entry::{earlier, Entry, Stamp, Time, RACY_MARGIN};
use super::format::{decode, encode, MAGIC, MOMENT};
use super::table::Entries;
use super::*;

/// A store and a context directory holding `a.txt` = `content`.
fn setup(content: &str) -> (tempfile::TempDir, Store, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir(&ctx).unwrap();
    let file = ctx.join("a.txt");
    fs::write(&file, content).unwrap();
    (dir, store, ctx, file)
}

const T0: Time = (1_700_000_000, 250_000_000);

fn at(t: Time, secs: i64) -> Time {
    (t.0 + secs, t.1)
}

/// A stamp of a 3-byte file with these times.
fn stamp(mtime: Time, ctime: Time) -> Stamp {
    Stamp {
        size: 3,
        mtime,
        ctime,
        ino: 42,
        dev: 9,
    }
}

#[test]
fn digests_are_reused_until_the_file_changes() {
    let (_dir, store, ctx, file) = setup("one");
    let meta = fs::symlink_metadata(&file).unwrap();
    let written = (meta.ctime(), meta.ctime_nsec() as u32);
    // Recorded by a build an hour after the file was written.
    let mut cache = StatCache::load_at(&store, &ctx, at(written, 3600));
    let d1 = cache.digest("a.txt", &file, &meta).unwrap();
    assert_eq!(d1, Digest::of(b"one"));
    assert_eq!(cache.hashed, 1);
    cache.save(&store).unwrap();

    let mut again = StatCache::load_at(&store, &ctx, at(written, 7200));
    assert_eq!(again.digest("a.txt", &file, &meta).unwrap(), d1);
    assert_eq!(again.hashed, 0, "unchanged: not read again");

    fs::write(&file, "two").unwrap();
    let meta = fs::symlink_metadata(&file).unwrap();
    assert_eq!(
        again.digest("a.txt", &file, &meta).unwrap(),
        Digest::of(b"two")
    );
    assert_eq!(again.hashed, 1);
}

#[test]
fn a_file_rewritten_in_the_tick_it_was_read_is_hashed_again() {
    // A file written while the build that reads it runs: on a filesystem with coarse
    // timestamps, a rewrite with the same size in the same tick keeps its stamp. The
    // walk's metadata from before the rewrite stands for that stamp here (ctime
    // cannot be set back); the mtime is restored exactly, nanoseconds included.
    let (_dir, store, ctx, file) = setup("");
    let mut cache = StatCache::load(&store, &ctx);
    fs::write(&file, "one").unwrap();
    let meta = fs::symlink_metadata(&file).unwrap();
    assert_eq!(
        cache.digest("a.txt", &file, &meta).unwrap(),
        Digest::of(b"one")
    );
    cache.save(&store).unwrap();

    fs::write(&file, "two").unwrap();
    let times = fs::FileTimes::new().set_modified(meta.modified().unwrap());
    File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_times(times)
        .unwrap();
    let now = fs::symlink_metadata(&file).unwrap();
    assert_eq!(now.modified().unwrap(), meta.modified().unwrap());
    let mut next = StatCache::load(&store, &ctx);
    assert_eq!(
        next.digest("a.txt", &file, &meta).unwrap(),
        Digest::of(b"two"),
        "racily clean: read again"
    );
    assert_eq!(next.hashed, 1);
}

#[test]
fn mtime_or_ctime_near_the_moment_makes_an_entry_racy() {
    let old = at(T0, -3600);
    assert!(!stamp(old, old).is_racy(T0));
    assert!(stamp(T0, old).is_racy(T0), "mtime in the same second");
    assert!(stamp(old, T0).is_racy(T0), "ctime in the same second");
    assert!(stamp(at(T0, 60), old).is_racy(T0), "mtime in the future");
    // The margin, to the nanosecond.
    let edge = earlier(T0, RACY_MARGIN);
    assert_eq!(edge, (T0.0 - 3, T0.1));
    assert!(stamp(edge, old).is_racy(T0));
    assert!(!stamp(earlier(edge, Duration::from_nanos(1)), old).is_racy(T0));
    assert!(stamp(old, edge).is_racy(T0));
    assert_eq!(
        earlier((5, 100), Duration::from_nanos(200)),
        (4, 999_999_900)
    );
}

#[test]
fn a_racy_entry_is_read_again_then_trusted_once_old_enough() {
    let (_dir, store, ctx, file) = setup("one");
    // mtime set (touch -d) into the second the entry is recorded in; ctime old.
    let s = stamp(T0, at(T0, -3600));
    let mut first = StatCache::load_at(&store, &ctx, at(T0, 0));
    assert_eq!(
        first
            .digest_stamped("a.txt", s, || File::open(&file))
            .unwrap(),
        Digest::of(b"one")
    );
    first.save(&store).unwrap();

    // Rewritten with the same size and the same stamp.
    fs::write(&file, "two").unwrap();
    let mut second = StatCache::load_at(&store, &ctx, at(T0, 60));
    assert_eq!(
        second
            .digest_stamped("a.txt", s, || File::open(&file))
            .unwrap(),
        Digest::of(b"two")
    );
    assert_eq!(second.hashed, 1, "racy: read again");
    second.save(&store).unwrap();

    // Recorded a minute after its stamp: trusted, not read.
    let mut third = StatCache::load_at(&store, &ctx, at(T0, 120));
    assert_eq!(
        third
            .digest_stamped("a.txt", s, || File::open(&file))
            .unwrap(),
        Digest::of(b"two")
    );
    assert_eq!(third.hashed, 0, "old enough: trusted");
}

#[test]
fn racy_entries_not_read_again_are_not_saved_under_a_later_moment() {
    let (_dir, store, ctx, file) = setup("one");
    let b = ctx.join("b.txt");
    fs::write(&b, "bbb").unwrap();
    let racy = stamp(T0, T0);
    let mut first = StatCache::load_at(&store, &ctx, T0);
    first
        .digest_stamped("a.txt", racy, || File::open(&file))
        .unwrap();
    first
        .digest_stamped("b.txt", stamp(T0, T0), || File::open(&b))
        .unwrap();
    first.save(&store).unwrap();

    // A later build that needs only b.txt (changed) saves the cache again...
    let mut second = StatCache::load_at(&store, &ctx, at(T0, 60));
    second
        .digest_stamped("b.txt", stamp(at(T0, 30), at(T0, 30)), || File::open(&b))
        .unwrap();
    second.save(&store).unwrap();

    // ...without a.txt's racy entry, which its moment would make look trusted.
    fs::write(&file, "two").unwrap();
    let mut third = StatCache::load_at(&store, &ctx, at(T0, 120));
    assert_eq!(
        third
            .digest_stamped("a.txt", racy, || File::open(&file))
            .unwrap(),
        Digest::of(b"two")
    );
    assert_eq!(third.hashed, 1);
}

#[test]
fn encoding_round_trips_and_rejects_garbage() {
    let mut entries = Entries::default();
    let entry = |stamp, trusted| Entry {
        stamp,
        digest: Digest::of(b"x"),
        trusted,
    };
    let old = stamp((-5, 7), (1_600_000_000, 999_999_999));
    entries.insert("dir/ü.txt".to_owned(), entry(old, true));
    entries.insert("racy".to_owned(), entry(stamp(T0, T0), true));
    entries.insert("untrusted".to_owned(), entry(old, false));
    let bytes = encode(T0, &entries);
    let (moment, mut back) = decode(&bytes).unwrap();
    assert_eq!(moment, T0);
    assert_eq!(back.len(), 2, "an untrusted entry is not written");
    assert_eq!(back.get("dir/ü.txt"), Some(&entry(old, true)));
    assert_eq!(
        back.get("racy"),
        Some(&entry(stamp(T0, T0), false)),
        "racy at its moment"
    );
    assert!(decode(b"nope").is_none());
    assert!(decode(&bytes[..bytes.len() - 1]).is_none(), "truncated");
    assert!(decode(&bytes[..MAGIC.len() + 4]).is_none(), "no moment");
    // The records again after themselves: out of order, so not a file this cache wrote.
    let records = &bytes[MAGIC.len() + MOMENT..];
    assert!(
        decode(&[&bytes[..], records].concat()).is_none(),
        "out of order"
    );
    let v1 = [
        b"rbuild-stat-v1\n".as_slice(),
        &bytes[MAGIC.len() + MOMENT..],
    ]
    .concat();
    assert!(decode(&v1).is_none(), "an older format is a miss");
}
