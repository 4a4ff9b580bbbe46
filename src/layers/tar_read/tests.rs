//! Tests of the tar reader: meta headers, numeric fields, PAX records and times,
//! truncated, corrupt and oversized archives.

use super::fields::header_checksum;
use super::*;
use crate::layers::tar_write::pax_record;

#[test]
fn pax_records_with_binary_values() {
    let mut data = pax_record(b"SCHILY.xattr.security.capability", b"\x01\n\x00=\n");
    data.extend(pax_record(b"path", b"a/b"));
    let recs = parse_pax(&data).unwrap();
    assert_eq!(recs[0].1, b"\x01\n\x00=\n");
    assert_eq!(recs[1], (b"path".to_vec(), b"a/b".to_vec()));
    assert!(parse_pax(b"5 a=b\n").is_err());
    assert!(parse_pax(b"x a=b\n").is_err());
}

#[test]
fn numeric_fields_read_as_go_reads_them() {
    let ok = || Ok(99);
    assert_eq!(numeric(b"0000644\0", ok()), Some(0o644));
    assert_eq!(numeric(b"  644 \0", ok()), Some(0o644));
    assert_eq!(numeric(b"\0\0\0\0\0\0\0\0", ok()), Some(0), "unset: 0");
    assert_eq!(numeric(b"        ", ok()), Some(0));
    assert_eq!(numeric(b"0009\0", ok()), None, "not octal");
    assert_eq!(numeric(b"\x80\0\0\x01", ok()), Some(99), "base-256");
}

#[test]
fn pax_times() {
    assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
    assert_eq!(parse_pax_time(b"-1.25"), Some((-2, 750_000_000)));
    assert_eq!(parse_pax_time(b"7"), Some((7, 0)));
    assert_eq!(parse_pax_time(b"x"), None);
    assert_eq!(parse_pax_time(b"1.x"), None);
}

#[test]
fn truncated_and_corrupt_archives_are_errors() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("f").unwrap();
    h.set_size(600);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, &[7u8; 600][..]).unwrap();
    let tar = b.into_inner().unwrap();
    let mut r = TarReader::new(&tar[..]);
    let e = r.next_entry().unwrap().unwrap();
    assert_eq!((e.name.as_slice(), e.size), (&b"f"[..], 600));
    assert!(r.next_entry().unwrap().is_none());
    let mut r = TarReader::new(&tar[..700]);
    r.next_entry().unwrap();
    assert!(r.next_entry().is_err());
    let mut bad = tar.clone();
    bad[0] = b'g';
    assert!(TarReader::new(&bad[..]).next_entry().is_err());
}

fn header(kind: u8, name: &str, size: usize) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_path(name).unwrap();
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A meta or file entry: header, data, padding.
fn entry(kind: u8, name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = header(kind, name, data.len());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn first(tar: &[u8]) -> Result<Option<EntryHeader>> {
    TarReader::new(tar).next_entry()
}

/// As Go's archive/tar: a later `x` header replaces an earlier one's records
/// (they do not pile up); `g` records are not applied to entries (containerd
/// ignores global headers).
#[test]
fn consecutive_pax_headers_replace_each_other() {
    let tar = [
        entry(b'g', "global", &pax_record(b"SCHILY.xattr.user.g", b"1")),
        entry(
            b'x',
            "PaxHeaders/f",
            &pax_record(b"SCHILY.xattr.user.a", b"1"),
        ),
        entry(
            b'x',
            "PaxHeaders/f",
            &pax_record(b"SCHILY.xattr.user.b", b"2"),
        ),
        entry(b'0', "f", b"data"),
        entry(b'0', "g", b""),
    ]
    .concat();
    let mut r = TarReader::new(&tar[..]);
    let f = r.next_entry().unwrap().unwrap();
    assert_eq!(f.xattrs, [(b"user.b".to_vec(), b"2".to_vec())]);
    let g = r.next_entry().unwrap().unwrap();
    assert_eq!((g.name.as_slice(), g.xattrs.len()), (&b"g"[..], 0));
}

/// Go's `maxSpecialFileSize`: a PAX header or GNU long name over 1 MiB is refused
/// before it is read, naming the header; exactly 1 MiB is accepted.
#[test]
fn meta_entries_over_one_mib_are_refused() {
    for kind in [b'x', b'g', b'L', b'K'] {
        let tar = header(kind, "meta-header", (1 << 20) + 1);
        let err = first(&tar).unwrap_err().to_string();
        assert!(
            err.contains("`meta-header`") && err.contains("1 MiB"),
            "{err}"
        );
    }
    let mut name = vec![b'n'; 1 << 20];
    name[0] = b'/';
    let tar = [
        entry(b'L', "././@LongLink", &name),
        entry(b'0', "short", b""),
    ]
    .concat();
    assert_eq!(first(&tar).unwrap().unwrap().name, name);
}

/// Sizes over `i64::MAX` (a PAX `size` record, a base-256 field) are refused as Go
/// refuses them, not overflowed while skipping the entry.
#[test]
fn huge_sizes_are_errors() {
    let tar = [
        entry(
            b'x',
            "PaxHeaders/f",
            &pax_record(b"size", u64::MAX.to_string().as_bytes()),
        ),
        entry(b'0', "f", b""),
    ]
    .concat();
    let err = first(&tar).unwrap_err().to_string();
    assert!(err.contains("`f`") && err.contains("size"), "{err}");
    let mut base256 = entry(b'0', "big", b"");
    base256[124..136].copy_from_slice(&[0xff; 12]);
    let sum = header_checksum(&base256);
    base256[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let err = first(&base256).unwrap_err().to_string();
    assert!(err.contains("`big`") && err.contains("size"), "{err}");
    assert_eq!(parse_pax_time(b"-9223372036854775808.5"), None);
}
