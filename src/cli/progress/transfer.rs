//! Blob transfers of `rbuild push`, `rbuild pull` and `build --push` on stderr: on a
//! terminal a byte bar per blob that moves (`=> sha256:abcd… [=====>   ] 1.2 MB / 3.4 MB`),
//! elsewhere a line per blob once it is settled, with `-q` nothing. A bar is replaced by
//! a line printed for good once its blob is settled (`done`, `mounted`, or `stopped`
//! when the transfer failed): what the screen keeps never depends on the bars' last
//! redraw.

use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::{short_digest, write_err, ProgressMode};
use crate::cli::store_cmds::human_size;
use crate::registry::{BlobState, TransferEvent};

/// How transfers are shown.
pub enum TransferView {
    /// A bar per moving blob (a terminal).
    Bars(Bars),
    /// A line per blob.
    Lines,
    /// Nothing.
    Quiet,
}

/// The bars of a transfer under way, by blob digest.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<Vec<(String, ProgressBar)>>,
}

impl TransferView {
    /// Nothing for `-q`; else bars on a terminal and lines elsewhere.
    pub fn new(quiet: bool) -> TransferView {
        match quiet {
            true => TransferView::Quiet,
            false => TransferView::for_mode(ProgressMode::Auto),
        }
    }

    /// As a build's `--progress` shows things (`build --push`).
    pub fn for_mode(mode: ProgressMode) -> TransferView {
        match mode.resolved() {
            ProgressMode::Tty => TransferView::Bars(Bars {
                multi: MultiProgress::new(),
                bars: Mutex::new(Vec::new()),
            }),
            ProgressMode::Quiet => TransferView::Quiet,
            _ => TransferView::Lines,
        }
    }

    /// Whether nothing is shown (summaries are left out too).
    pub fn is_quiet(&self) -> bool {
        matches!(self, TransferView::Quiet)
    }

    /// Shows one event (from any of the transfer's threads).
    pub fn event(&self, event: TransferEvent<'_>) {
        match self {
            TransferView::Bars(bars) => bars.event(event),
            TransferView::Lines => {
                if let Some(line) = transfer_line(event) {
                    write_err(&line);
                }
            }
            TransferView::Quiet => {}
        }
    }

    /// Ends the view: a bar still moving (the transfer failed) becomes a line saying
    /// where it stopped.
    pub fn finish(&self) {
        let TransferView::Bars(bars) = self else {
            return;
        };
        let open: Vec<String> = {
            let held = bars.bars.lock().unwrap_or_else(|p| p.into_inner());
            held.iter().map(|(d, _)| d.clone()).collect()
        };
        for digest in open {
            if let Some(bar) = bars.remove(&digest) {
                let done = human_size(bar.position());
                let total = human_size(bar.length().unwrap_or_default());
                let short = short_digest(&digest);
                bars.line(format!(" => {short} {done} / {total} stopped"));
            }
        }
    }
}

/// The line of `event` when bars are not drawn: `<12 hex digits>: what (size)` once a
/// blob is settled, `reference: digest` for a manifest.
fn transfer_line(event: TransferEvent<'_>) -> Option<String> {
    let line = match event {
        TransferEvent::Manifest { reference, digest } => format!("{reference}: {digest}"),
        TransferEvent::Blob {
            digest,
            size,
            state,
        } => {
            let what = match state {
                BlobState::Started => return None,
                BlobState::Exists => "already there",
                BlobState::Mounted => "mounted",
                BlobState::Done => "done",
            };
            let short = digest.hex().get(..12).unwrap_or_default().to_owned();
            format!("{short}: {what} ({})", human_size(size))
        }
        TransferEvent::Bytes { .. } => return None,
    };
    Some(line)
}

impl Bars {
    fn event(&self, event: TransferEvent<'_>) {
        match event {
            TransferEvent::Manifest { digest, .. } => self.line(format!(" => manifest {digest}")),
            TransferEvent::Blob {
                digest,
                size,
                state,
            } => {
                let name = digest.to_string();
                let settled = match state {
                    BlobState::Started => return self.start(name, size),
                    BlobState::Done => "done",
                    BlobState::Mounted => "mounted",
                    BlobState::Exists => "already there",
                };
                self.remove(&name);
                let short = short_digest(&name);
                self.line(format!(" => {short} {} {settled}", human_size(size)));
            }
            TransferEvent::Bytes { digest, done, .. } => {
                let name = digest.to_string();
                let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((_, bar)) = bars.iter().find(|(d, _)| *d == name) {
                    bar.set_position(done);
                }
            }
        }
    }

    /// A line above the bars, for good.
    fn line(&self, text: String) {
        let _ = self.multi.println(text);
    }

    fn start(&self, digest: String, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size));
        let template = " => {prefix} [{bar:20}] {decimal_bytes} / {decimal_total_bytes}";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(short_digest(&digest).to_owned());
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.push((digest, bar));
    }

    /// Takes the bar of `digest` off the screen; returns it.
    fn remove(&self, digest: &str) -> Option<ProgressBar> {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let pos = bars.iter().position(|(d, _)| d == digest)?;
        let (_, bar) = bars.remove(pos);
        bar.finish_and_clear();
        self.multi.remove(&bar);
        Some(bar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    #[test]
    fn lines_are_written_once_a_blob_is_settled() {
        let digest = Digest::of(b"layer");
        let short = digest.hex().get(..12).unwrap().to_owned();
        let blob = |state| TransferEvent::Blob {
            digest: &digest,
            size: 2048,
            state,
        };
        assert_eq!(transfer_line(blob(BlobState::Started)), None);
        let bytes = TransferEvent::Bytes {
            digest: &digest,
            done: 1,
            total: 2048,
        };
        assert_eq!(transfer_line(bytes), None);
        assert_eq!(
            transfer_line(blob(BlobState::Done)),
            Some(format!("{short}: done (2.05kB)"))
        );
        assert_eq!(
            transfer_line(blob(BlobState::Exists)),
            Some(format!("{short}: already there (2.05kB)"))
        );
    }
}
