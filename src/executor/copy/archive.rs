//! `ADD` of a local archive: a tar file, plain or compressed with gzip, bzip2, xz or
//! zstd, is extracted into the destination (BuildKit's behaviour); anything else is
//! copied as a file. Extraction goes through the layer applier, which refuses entries
//! that would land outside the destination.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::executor::error::{ExecError, Result};
use crate::layers::{apply_layer, ApplyOptions, Compression, WhiteoutMode};

/// The compression of an archive ADD extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

fn compression_of(head: &[u8]) -> Option<ArchiveKind> {
    match head {
        [0x1f, 0x8b, ..] => Some(ArchiveKind::Gzip),
        [b'B', b'Z', b'h', ..] => Some(ArchiveKind::Bzip2),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some(ArchiveKind::Xz),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(ArchiveKind::Zstd),
        _ => None,
    }
}

/// Whether a 512-byte block is a tar header (a non-zero block with a valid checksum).
fn is_tar_header(block: &[u8]) -> bool {
    block.len() >= 512 && !block.iter().all(|&b| b == 0) && crate::layers::header_checksum_ok(block)
}

/// Opens the decompressed stream of `path` for `kind`.
fn decompressed(open: Opener<'_>, path: &Path, kind: ArchiveKind) -> Result<Box<dyn Read + Send>> {
    let file = BufReader::new(open()?);
    Ok(match kind {
        ArchiveKind::Tar => Box::new(file),
        ArchiveKind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        ArchiveKind::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(file)),
        ArchiveKind::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(file)
                .map_err(ExecError::fs("cannot read zstd archive", path))?,
        ),
        ArchiveKind::Xz => xz_reader(file),
    })
}

/// lzma-rs decodes into a writer; a thread and a pipe turn that into a reader.
fn xz_reader(mut input: BufReader<File>) -> Box<dyn Read + Send> {
    match std::io::pipe() {
        Ok((reader, mut writer)) => {
            std::thread::spawn(move || {
                // A decode error ends the stream early; the tar reader then reports a
                // truncated archive, which names the file.
                let _ = lzma_rs::xz_decompress(&mut input, &mut writer);
            });
            Box::new(reader)
        }
        Err(_) => Box::new(std::io::empty()),
    }
}

/// Opens the archive for reading (again for each pass); `path` names it in errors.
pub type Opener<'a> = &'a dyn Fn() -> Result<File>;

/// The archive kind of `path` if ADD should extract it.
pub fn detect(open: Opener<'_>, path: &Path) -> Result<Option<ArchiveKind>> {
    let mut head = [0u8; 6];
    let n = open()?
        .read(&mut head)
        .map_err(ExecError::fs("cannot read", path))?;
    let kind = compression_of(&head[..n]).unwrap_or(ArchiveKind::Tar);
    let mut block = vec![0u8; 512];
    let mut reader = decompressed(open, path, kind)?;
    let mut filled = 0;
    while filled < block.len() {
        match reader.read(&mut block[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => filled += k,
        }
    }
    Ok(is_tar_header(&block[..filled]).then_some(kind))
}

/// Extracts archive `path` into the existing host directory `dest`.
pub fn extract(open: Opener<'_>, path: &Path, kind: ArchiveKind, dest: &Path) -> Result<()> {
    let reader = decompressed(open, path, kind)?;
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
        compression: Some(Compression::None),
    };
    apply_layer(reader, dest, &opts).map_err(|source| ExecError::Extract {
        path: path.to_owned(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn opener(path: &Path) -> impl Fn() -> Result<File> + '_ {
        move || File::open(path).map_err(ExecError::fs("cannot open", path))
    }

    #[test]
    fn detects_and_extracts_every_compression() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("d/f.txt"), "hello").unwrap();
        let tar = dir.path().join("a.tar");
        let ok = Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(&src)
            .arg("d")
            .status()
            .unwrap();
        assert!(ok.success());
        assert_eq!(detect(&opener(&tar), &tar).unwrap(), Some(ArchiveKind::Tar));
        for (tool, kind) in [
            ("gzip", ArchiveKind::Gzip),
            ("bzip2", ArchiveKind::Bzip2),
            ("xz", ArchiveKind::Xz),
            ("zstd", ArchiveKind::Zstd),
        ] {
            if Command::new(tool).arg("--version").output().is_err() {
                eprintln!("skipping {tool}: not installed");
                continue;
            }
            let out = dir.path().join(format!("a.tar.{tool}"));
            let data = Command::new(tool)
                .arg("-c")
                .arg(&tar)
                .output()
                .unwrap()
                .stdout;
            std::fs::write(&out, data).unwrap();
            assert_eq!(detect(&opener(&out), &out).unwrap(), Some(kind), "{tool}");
            let dest = dir.path().join(format!("x-{tool}"));
            std::fs::create_dir(&dest).unwrap();
            extract(&opener(&out), &out, kind, &dest).unwrap();
            assert_eq!(
                std::fs::read_to_string(dest.join("d/f.txt")).unwrap(),
                "hello",
                "{tool}"
            );
        }
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, "not an archive, but long enough? no").unwrap();
        assert_eq!(detect(&opener(&plain), &plain).unwrap(), None);
    }
}
