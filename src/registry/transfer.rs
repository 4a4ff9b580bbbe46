//! What pulls and pushes share: progress events, and running blob transfers on a few
//! threads at once (the first failure stops the others from starting new work).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::digest::Digest;

/// Blobs moved at once (what Docker and skopeo use by default, give or take).
pub const DEFAULT_CONCURRENCY: usize = 4;

/// What happened to one blob of a pull or push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    /// Already there (in the store, or in the registry): nothing moved.
    Exists,
    /// Mounted from another repository of the same registry: nothing moved.
    Mounted,
    /// Moving.
    Started,
    /// Moved and verified.
    Done,
}

/// A progress event of a pull or push.
#[derive(Debug, Clone, Copy)]
pub enum TransferEvent<'a> {
    /// A manifest (or index) was resolved / written.
    Manifest {
        reference: &'a str,
        digest: &'a Digest,
    },
    /// A blob changed state.
    Blob {
        digest: &'a Digest,
        size: u64,
        state: BlobState,
    },
}

/// Receives progress events (from several threads).
pub type Progress<'a> = dyn Fn(TransferEvent<'_>) + Sync + 'a;

/// Runs `work` on every item, up to `limit` at once; returns the first error (items
/// not yet started are skipped once one failed).
pub fn for_each_concurrently<T: Sync, E: Send>(
    items: &[T],
    limit: usize,
    work: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let threads = limit.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { return };
                if let Err(e) = work(item) {
                    failed.store(true, Ordering::Relaxed);
                    let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert(e);
                    return;
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_items_run_and_the_first_error_wins() {
        let seen = AtomicUsize::new(0);
        let items: Vec<u32> = (0..50).collect();
        for_each_concurrently(&items, 4, |_| {
            seen.fetch_add(1, Ordering::Relaxed);
            Ok::<(), String>(())
        })
        .unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 50);
        let err = for_each_concurrently(&items, 3, |&i| {
            if i == 7 {
                Err(format!("item {i}"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(err, "item 7");
        for_each_concurrently(&[] as &[u32], 4, |_| Err::<(), ()>(())).unwrap();
    }
}
