//! Benchmark driver for `rbuild::layers` (used by `benches/layer.sh`).
//!
//! ```text
//! layer_bench gen-files DIR COUNT TOTAL_BYTES   many files of semi-compressible data
//! layer_bench gen-big FILE BYTES                one file of the same data
//! layer_bench write DIR none|gzip1|gzip6|zstd   tar+compress+digest DIR to a counting sink
//! ```
//!
//! `write` prints one line: `tar_bytes blob_bytes seconds MB/s digest`.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use rbuild::layers::{write_layer, Changes, Compression, WriteOptions};

/// Deterministic text-like bytes (xorshift over a small vocabulary with some noise), which
/// gzip -1 compresses to roughly a third, like a mix of binaries and text.
struct Gen(u64);

impl Gen {
    fn fill(&mut self, out: &mut Vec<u8>, len: usize) {
        const WORDS: [&[u8]; 8] = [
            b"layer ",
            b"overlay ",
            b"rbuild ",
            b"tar\n",
            b"0123 ",
            b"sha256 ",
            b"usr/lib/",
            b"x",
        ];
        out.clear();
        while out.len() < len {
            let x = &mut self.0;
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            if (*x).is_multiple_of(4) {
                out.extend_from_slice(&x.to_le_bytes()[..5]);
            } else {
                out.extend_from_slice(WORDS[(*x % 8) as usize]);
            }
        }
        out.truncate(len);
    }
}

fn gen_files(dir: &Path, count: u64, total: u64) -> io::Result<()> {
    let (mut g, mut buf) = (Gen(0x9E37_79B9_7F4A_7C15), Vec::new());
    let per = (total / count) as usize;
    for i in 0..count {
        let sub = dir.join(format!("d{:03}", i % 1000));
        if i < 1000 {
            fs::create_dir_all(&sub)?;
        }
        g.fill(&mut buf, per);
        fs::write(sub.join(format!("file-{i:06}.dat")), &buf)?;
    }
    Ok(())
}

fn gen_big(file: &Path, total: u64) -> io::Result<()> {
    if let Some(parent) = file.parent() {
        fs::create_dir_all(parent)?;
    }
    let (mut g, mut buf) = (Gen(0x1234_5678_9ABC_DEF1), Vec::new());
    let mut out = BufWriter::new(fs::File::create(file)?);
    let mut left = total;
    while left > 0 {
        let n = left.min(1 << 20);
        g.fill(&mut buf, n as usize);
        out.write_all(&buf)?;
        left -= n;
    }
    out.flush()
}

/// Counts bytes and throws them away.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write(dir: &Path, mode: &str) -> Result<(), Box<dyn std::error::Error>> {
    let compression = match mode {
        "none" => Compression::None,
        "gzip1" => Compression::Gzip { level: 1 },
        "gzip6" => Compression::Gzip { level: 6 },
        "zstd" => Compression::zstd(),
        other => return Err(format!("unknown compression {other}").into()),
    };
    let start = Instant::now();
    // Measure the tar size in the same pass: the blob of an uncompressed layer is it.
    let opts = WriteOptions {
        compression,
        ..WriteOptions::default()
    };
    let mut sink = Count(0);
    let blob = write_layer(Changes::Tree(dir), &opts, &mut sink)?;
    let secs = start.elapsed().as_secs_f64();
    let tar_bytes = tar_size(dir)?;
    println!(
        "{tar_bytes} {} {secs:.3} {:.1} {}",
        blob.size,
        tar_bytes as f64 / secs / 1e6,
        blob.digest
    );
    Ok(())
}

/// The uncompressed tar size (a second, uncompressed pass; not timed).
fn tar_size(dir: &Path) -> Result<u64, Box<dyn std::error::Error>> {
    let opts = WriteOptions {
        compression: Compression::None,
        ..WriteOptions::default()
    };
    Ok(write_layer(Changes::Tree(dir), &opts, Count(0))?.size)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |s: &String| s.parse::<u64>();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["gen-files", dir, _, _] => gen_files(Path::new(dir), num(&args[2])?, num(&args[3])?)?,
        ["gen-big", file, _] => gen_big(Path::new(file), num(&args[2])?)?,
        ["write", dir, mode] => write(Path::new(dir), mode)?,
        _ => return Err(
            "usage: layer_bench gen-files DIR COUNT BYTES | gen-big FILE BYTES | write DIR MODE"
                .into(),
        ),
    }
    Ok(())
}
