//! Blobs: every file in `blobs/sha256/` must be named by the SHA-256 of its content.
//! Each is streamed through the hasher (bounded memory); a damaged one cannot be
//! trusted for anything, so repair removes it.

use std::fs::{self, File};
use std::io::{BufReader, Read};

use super::{removal, BlobStatus, Finding, Report};
use crate::digest::{Digest, Hasher};
use crate::fs_error::FsError;
use crate::store::error::{Error, Result};
use crate::store::layout::BLOBS_DIR;
use crate::store::Store;

pub(super) fn check(store: &Store, repair: bool, report: &mut Report) -> Result<()> {
    let dir = store.root().join(BLOBS_DIR);
    let mut entries = Vec::new();
    for entry in fs::read_dir(&dir).map_err(Error::fs("read directory", &dir))? {
        entries.push(entry.map_err(Error::fs("read directory", &dir))?);
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let digest = format!("sha256:{name}").parse::<Digest>().ok();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        let (Some(digest), true) = (digest, is_file) else {
            let mut f = Finding::damage(
                "blob",
                name,
                &path,
                "not a blob: blobs/sha256/ holds only files named by their digest".to_owned(),
            );
            if repair {
                f = f.repaired(removal(&path));
            }
            report.findings.push(f);
            continue;
        };
        report.checked.blobs += 1;
        let (actual, size) = match hash_file(&path) {
            Ok(found) => found,
            Err(e) => {
                report.blobs.insert(digest, BlobStatus::Bad);
                let problem = format!("cannot read: {e}");
                report
                    .findings
                    .push(Finding::damage("blob", digest.to_string(), &path, problem));
                continue;
            }
        };
        if actual == digest {
            report.blobs.insert(digest, BlobStatus::Good(size));
            continue;
        }
        let problem = format!("content does not match its name: its {size} bytes hash to {actual}");
        let mut f = Finding::damage("blob", digest.to_string(), &path, problem);
        if repair {
            f = f.repaired(removal(&path));
        } else {
            report.blobs.insert(digest, BlobStatus::Bad);
        }
        report.findings.push(f);
    }
    Ok(())
}

/// SHA-256 and length of a file, streamed.
pub(crate) fn hash_file(path: &std::path::Path) -> std::io::Result<(Digest, u64)> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut hasher = Hasher::new(std::io::sink());
    std::io::copy(&mut reader.by_ref(), &mut hasher)?;
    let (digest, size, _) = hasher.finish();
    Ok((digest, size))
}
