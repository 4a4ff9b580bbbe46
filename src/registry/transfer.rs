//! What pulls and pushes share: progress events (blob states, and bytes moved while a
//! blob streams, through a [`Meter`] that [`metered`] samples), and running blob
//! transfers on a few threads at once (the first failure stops the others from starting
//! new work).

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

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
    /// Bytes of a moving blob sent or received so far (sampled a few times a second,
    /// between its `Started` and its `Done`; a retried transfer starts again from 0).
    Bytes {
        digest: &'a Digest,
        done: u64,
        total: u64,
    },
}

/// Receives progress events (from several threads).
pub type Progress<'a> = dyn Fn(TransferEvent<'_>) + Sync + 'a;

/// How often a moving blob's byte count is reported.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Counts the bytes of one blob transfer; shared with the reader that moves them (an
/// upload's body is read on the HTTP client's own thread, hence the `Arc`).
#[derive(Clone, Default)]
pub struct Meter(Arc<AtomicU64>);

impl Meter {
    /// Bytes counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the count (an upload resuming at an offset, a retry starting over).
    pub fn set(&self, bytes: u64) {
        self.0.store(bytes, Ordering::Relaxed);
    }

    /// `inner`, counting every byte read from it.
    pub fn reader<R: Read>(&self, inner: R) -> MeteredReader<R> {
        MeteredReader {
            inner,
            meter: self.clone(),
        }
    }
}

/// A reader that counts what passes through it into a [`Meter`].
pub struct MeteredReader<R> {
    inner: R,
    meter: Meter,
}

impl<R: Read> Read for MeteredReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Runs `work` with a fresh [`Meter`] while a watcher thread reports its count as
/// [`TransferEvent::Bytes`] of blob `digest` (`total` bytes) every [`SAMPLE_EVERY`]
/// when it moved. The watcher ends with `work`.
pub fn metered<T>(
    digest: &Digest,
    total: u64,
    progress: &Progress<'_>,
    work: impl FnOnce(&Meter) -> T,
) -> T {
    let meter = Meter::default();
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let watched = meter.clone();
        scope.spawn(move || {
            let mut reported = 0;
            // Disconnected (the sender dropped): the work is over.
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(SAMPLE_EVERY) {
                let done = watched.get();
                if done != reported {
                    reported = done;
                    progress(TransferEvent::Bytes {
                        digest,
                        done,
                        total,
                    });
                }
            }
        });
        let result = work(&meter);
        drop(stop);
        result
    })
}

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

    #[test]
    fn a_metered_transfer_reports_its_bytes_while_it_moves() {
        let digest = Digest::of(b"blob");
        let seen = Mutex::new(Vec::new());
        let progress = |event: TransferEvent<'_>| {
            if let TransferEvent::Bytes { done, total, .. } = event {
                seen.lock().unwrap().push((done, total));
            }
        };
        let counted = metered(&digest, 6, &progress, |meter| {
            let mut out = Vec::new();
            meter.reader(&b"abc"[..]).read_to_end(&mut out).unwrap();
            // Polls until the watcher has reported the first half.
            while !seen.lock().unwrap().contains(&(3, 6)) {
                std::thread::sleep(Duration::from_millis(5));
            }
            meter.reader(&b"def"[..]).read_to_end(&mut out).unwrap();
            meter.get()
        });
        assert_eq!(counted, 6);
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.first(), Some(&(3, 6)), "{seen:?}");
        assert!(seen.iter().all(|&(d, t)| d <= t && t == 6), "{seen:?}");
    }
}
