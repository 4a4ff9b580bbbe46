//! Work dirs: `tmp/<id>/` of processes that died (their lock is free). They are what
//! a killed build leaves by design and the next `Store::open` removes, so they are
//! leftovers, not damage; repair removes them the way `Store::open` does.

use super::{Finding, Report};
use crate::store::error::Result;
use crate::store::layout::TMP_DIR;
use crate::store::{workdir, Store};

pub(super) fn check(store: &Store, repair: bool, report: &mut Report) -> Result<()> {
    let tmp = store.root().join(TMP_DIR);
    let stale = workdir::list_stale(&tmp)?;
    if stale.is_empty() {
        return Ok(());
    }
    if repair {
        workdir::clean_stale(&tmp)?;
    }
    for path in stale {
        let object = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let problem = "work dir of a process that is gone".to_owned();
        let mut f = Finding::leftover("temp", object, &path, problem);
        if repair {
            f = f.repaired(if path.exists() {
                "still there"
            } else {
                "removed"
            });
        }
        report.findings.push(f);
    }
    Ok(())
}
