//! Lazy blob records (`cache/lazy/<hex>.json`): a sound one whose blob is absent is
//! what a build from a registry cache leaves by design and is counted, not a finding
//! (images reaching it are then whole); one whose blob has arrived since is a
//! leftover; one that does not parse or names another digest is damage (images
//! reaching it find the blob missing), removed by repair.

use super::{Finding, Report};
use crate::store::Store;

pub(super) fn check(store: &Store, repair: bool, report: &mut Report) {
    for digest in store.lazy_digests() {
        let path = store.lazy_path(&digest);
        let finding = if store.has_blob(&digest) {
            let problem = "lazy record of a blob that is in the store".to_owned();
            Finding::leftover("lazy", digest.to_string(), &path, problem)
        } else if let Some(lazy) = store.lazy_blob(&digest) {
            report.lazy.insert(digest, lazy.size);
            report.checked.lazy += 1;
            continue;
        } else {
            let problem = "lazy record that does not parse or names another blob".to_owned();
            Finding::damage("lazy", digest.to_string(), &path, problem)
        };
        let finding = if repair {
            finding.repaired(super::removal(&path))
        } else {
            finding
        };
        report.findings.push(finding);
    }
}
