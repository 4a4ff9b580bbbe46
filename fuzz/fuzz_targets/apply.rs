//! Any bytes as a layer, applied into a fresh root in both whiteout modes: the applier
//! may refuse the layer but must never panic, and must never create, change or remove
//! anything outside the root.
//!
//! The first input byte chooses how the rest is used:
//! - bit 0: whiteout mode (`Delete`, as the local/tar exports use, or `Overlay`);
//! - bits 1-2: the rest as raw layer bytes (compression detected from its magic), the
//!   rest gzip-compressed, or the rest as a list of entries the target turns into a tar
//!   with valid checksums (raw names and link targets: `..`, `.wh.`, absolute paths),
//!   uncompressed or gzip-compressed (see `entries_tar`).
//!
//! The root lives in a private directory beside a canary file and an `outside`
//! directory; the root holds symlinks to `outside` and to the canary (relative ones,
//! which stay inside the private directory even if followed), so escapes have
//! somewhere to go. After each input the private directory must hold exactly what it
//! held before, with the same content.
//!
//! Run it as root (device nodes, owners, `trusted.*` xattrs), with the seeds and the
//! dictionary, and a small ASan quarantine (freed 256 KiB buffers otherwise count
//! against `-rss_limit_mb`):
//! `ASAN_OPTIONS=quarantine_size_mb=16 RUSTC_BOOTSTRAP=1 cargo fuzz run apply
//! fuzz/corpus/apply fuzz/seeds/apply -- -dict=fuzz/apply.dict -rss_limit_mb=256`
//! from the repository root.
#![no_main]

use std::fs;
use std::io::Write;
use std::path::Path;

use rbuild::layers::{apply_layer, ApplyOptions, Compression, WhiteoutMode};

const CANARY: &[u8] = b"canary";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let whiteouts = if sel & 1 == 0 {
        WhiteoutMode::Delete
    } else {
        WhiteoutMode::Overlay
    };
    let (layer, compression) = match (sel >> 1) & 3 {
        0 => (rest.to_vec(), None),
        1 => (gzip(rest), Some(Compression::default())),
        2 => (entries_tar(rest), Some(Compression::None)),
        _ => (gzip(&entries_tar(rest)), None),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    fs::create_dir(&root).expect("root");
    fs::create_dir(&outside).expect("outside");
    fs::write(dir.path().join("canary"), CANARY).expect("canary");
    fs::create_dir(root.join("d")).expect("d");
    fs::write(root.join("d/f"), b"f").expect("d/f");
    std::os::unix::fs::symlink("../outside", root.join("out")).expect("symlink");
    std::os::unix::fs::symlink("../canary", root.join("can")).expect("symlink");
    let opts = ApplyOptions {
        whiteouts,
        compression,
    };
    let _ = apply_layer(&layer[..], &root, &opts);
    check_outside(dir.path());
});

/// The private directory holds `canary` (unchanged), an empty `outside` and `root`.
fn check_outside(dir: &Path) {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read the private directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["canary", "outside", "root"],
        "wrote beside the root"
    );
    let canary = fs::symlink_metadata(dir.join("canary")).expect("canary");
    assert!(canary.is_file() && canary.len() == CANARY.len() as u64);
    assert_eq!(fs::read(dir.join("canary")).expect("canary"), CANARY);
    assert!(fs::symlink_metadata(dir.join("outside"))
        .expect("outside")
        .is_dir());
    assert_eq!(
        fs::read_dir(dir.join("outside")).expect("outside").count(),
        0,
        "wrote into outside"
    );
    assert!(fs::symlink_metadata(dir.join("root"))
        .expect("root")
        .is_dir());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

/// Reads fuzz bytes as entries `KIND \n NAME \n LINK \n DATA \0` (delimited, so inserted
/// tokens such as `.wh...` or `../` stay where they land) and writes them as a tar with
/// valid checksums, so that the applier, not the checksum test, sees them. KIND picks
/// the type flag and, in its high bits, the mode, owner and mtime.
fn entries_tar(input: &[u8]) -> Vec<u8> {
    const KINDS: &[u8] = b"0125346xgLK7S";
    let mut input = input;
    let mut out = Vec::new();
    while !input.is_empty() {
        // KIND is the first byte of its line (the rest of the line is ignored).
        let k = field(&mut input, b'\n', 1).first().copied().unwrap_or(0);
        let name = field(&mut input, b'\n', 100);
        let link = field(&mut input, b'\n', 100);
        let data = field(&mut input, 0, 8192);
        let kind = KINDS[usize::from(k) % KINDS.len()];
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::new(kind));
        h.as_old_mut().name[..name.len()].copy_from_slice(&name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(&link);
        let mode = if kind == b'5' { 0o755 } else { 0o644 };
        h.set_mode(mode | (u32::from(k >> 4 & 1) * 0o4000));
        h.set_size(data.len() as u64);
        h.set_uid(u64::from(k >> 5 & 1) * 1000);
        h.set_gid(0);
        h.set_mtime(u64::from(k >> 6));
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The bytes of `input` up to `end` (at most `max` of them); `input` moves past `end`.
fn field(input: &mut &[u8], end: u8, max: usize) -> Vec<u8> {
    let n = input.iter().position(|&b| b == end).unwrap_or(input.len());
    let value = input[..n.min(max)].to_vec();
    *input = &input[(n + 1).min(input.len())..];
    value
}
