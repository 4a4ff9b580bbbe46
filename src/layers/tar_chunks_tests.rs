use super::*;

/// A tar of `files` (name, size) with `fill`ed contents, written by the layer writer's
/// header code is not needed here: the headers are built by hand, valid USTAR.
fn tar(files: &[(String, usize)], fill: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (name, size)) in files.iter().enumerate() {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend((0..*size).map(|j| fill(i, j)));
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

fn files(n: usize, size: usize) -> Vec<(String, usize)> {
    (0..n)
        .map(|i| (format!("d{:02}/f{i:05}", i / 1000), size))
        .collect()
}

/// The chunks of `stream` as byte ranges.
fn ranges(stream: &[u8], piece: usize) -> Vec<(u64, u64)> {
    let mut at = 0;
    let mut out = Vec::new();
    for cut in cuts(stream, piece).into_iter().chain([stream.len() as u64]) {
        out.push((at, cut));
        at = cut;
    }
    out
}

#[test]
fn cuts_fall_on_entry_boundaries_whatever_the_write_sizes() {
    let t = tar(&files(3000, 1024), |i, j| (i * 31 + j) as u8);
    let a = cuts(&t, 1);
    assert_eq!(a, cuts(&t, 4096));
    assert_eq!(a, cuts(&t, 1_000_003));
    assert!(a.len() >= 2, "{a:?}");
    for (i, &cut) in a.iter().enumerate() {
        // Every entry here is 1536 bytes: a boundary is a multiple of it.
        assert_eq!(cut % 1536, 0, "{a:?}");
        let before = if i == 0 { 0 } else { a[i - 1] };
        assert!(cut - before >= MIN_CHUNK && cut - before <= MAX_CHUNK);
    }
}

#[test]
fn a_changed_file_changes_only_its_chunk() {
    let names = files(6000, 1024);
    let t = tar(&names, |i, j| (i * 7 + j * 13) as u8);
    let old = ranges(&t, 65536);
    // File 3000 grows by 700 bytes (two more blocks) and changes.
    let mut grown = names.clone();
    grown[3000].1 = 1724;
    let t2 = tar(&grown, |i, j| {
        if i == 3000 {
            0xee
        } else {
            (i * 7 + j * 13) as u8
        }
    });
    let new = ranges(&t2, 4096);
    let at = 3000 * 1536;
    let shift = 1024;
    let same_before = new.iter().filter(|r| r.1 <= at && old.contains(r)).count();
    let same_after = new
        .iter()
        .filter(|r| r.0 > at && old.contains(&(r.0 - shift, r.1 - shift)))
        .count();
    // All but the chunk holding the file (and at most its neighbour, where a cut's
    // decision reads the file's length) are the same bytes as before.
    assert!(
        same_before + same_after + 2 >= new.len(),
        "{old:?}\n{new:?}"
    );
}

#[test]
fn big_files_are_cut_inside_and_garbage_every_target() {
    let t = tar(&[("big".into(), 9 << 20), ("small".into(), 10)], |_, j| {
        j as u8
    });
    let c = cuts(&t, 100_000);
    assert_eq!(&c[..2], &[MAX_CHUNK, 2 * MAX_CHUNK]);
    let garbage = vec![7u8; 3 * TARGET_CHUNK as usize + 5];
    assert_eq!(
        cuts(&garbage, 333),
        vec![TARGET_CHUNK, 2 * TARGET_CHUNK, 3 * TARGET_CHUNK]
    );
}

#[test]
fn pax_size_overrides_and_fields_parse() {
    assert_eq!(pax_size(b"16 size=1234567\n"), Some(1_234_567));
    assert_eq!(pax_size(b"13 path=abcd\n"), None);
    assert_eq!(pax_size(b"garbage"), None);
    assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
    assert_eq!(octal(b"  0644 \0"), Some(0o644));
    assert_eq!(octal(b"\0\0\0"), None);
    assert!(parse_header(&[0u8; BLOCK]).is_none());
}
