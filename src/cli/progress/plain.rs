//! Plain lines, as `docker build --progress=plain` prints them (`#STAGE.STEP` first, so
//! the lines of parallel stages can be told apart), and JSON lines for tools. Tests
//! and scripts read both: new events add lines or objects, existing ones keep theirs.

use super::{first_line, label, short_digest, tag, write_err, StageCount};
use crate::cli::store_cmds::human_size;
use crate::executor::{BuildEvent, Reporter};

/// One line (or a few) per event.
#[derive(Default)]
pub struct PlainReporter {
    stages: StageCount,
}

impl Reporter for PlainReporter {
    fn event(&self, event: BuildEvent) {
        self.stages.observe(&event);
        // One `writeln!` on the locked stderr per event: lines never mix.
        if let Some(line) = plain_line(event, self.stages.get()) {
            write_err(&line);
        }
    }
}

/// The plain line for `event` in a build of `stages` stages; `None` for events only
/// the terminal view and JSON show (the plan's size, bytes of a blob as they move,
/// the start of an export).
fn plain_line(event: BuildEvent, stages: usize) -> Option<String> {
    let line = match event {
        BuildEvent::Planned { .. }
        | BuildEvent::BlobProgress { .. }
        | BuildEvent::ExportStarted { .. } => return None,
        BuildEvent::StepStarted { id } | BuildEvent::StepMetadata { id } => {
            format!("#{}.{} {}", id.stage, id.step, label(&id, stages))
        }
        BuildEvent::StepCached { id, from } => format!(
            "#{}.{} {}\n#{}.{} CACHED{}",
            id.stage,
            id.step,
            label(&id, stages),
            id.stage,
            id.step,
            from.map(|f| format!(" ({f})")).unwrap_or_default()
        ),
        BuildEvent::CacheMiss { id, reasons } => format!(
            "#{}.{} cache miss: {}",
            id.stage,
            id.step,
            reasons.join("; ")
        ),
        BuildEvent::StepLog { id, line } => {
            format!("#{}.{} {} {line}", id.stage, id.step, tag(&id, stages))
        }
        BuildEvent::StepFinished {
            id,
            elapsed,
            layer,
            commit,
            patched,
        } => {
            // What making the layer took, of the step's time.
            let note = match (layer, commit) {
                (true, Some(c)) => match patched {
                    Some(p) => format!(
                        " (layer {:.2}s, {} of {} gzip chunks from the last build)",
                        c.as_secs_f64(),
                        p.copied,
                        p.chunks
                    ),
                    None => format!(" (layer {:.2}s)", c.as_secs_f64()),
                },
                (false, _) if !id.is_from() => " (no layer)".to_owned(),
                _ => String::new(),
            };
            format!(
                "#{}.{} DONE {:.2}s{note}",
                id.stage,
                id.step,
                elapsed.as_secs_f64()
            )
        }
        BuildEvent::StepFailed { id, error } => {
            format!("#{}.{} ERROR: {}", id.stage, id.step, first_line(&error))
        }
        BuildEvent::StepCancelled { id } => format!("#{}.{} CANCELED", id.stage, id.step),
        BuildEvent::ImageWritten { name, id, .. } => match name {
            Some(n) => format!("naming to {n} done ({id})"),
            None => format!("writing image {id} done"),
        },
        BuildEvent::LayerUnpacking { digest, size } => {
            format!("unpacking {} ({})", short_digest(&digest), human_size(size))
        }
        BuildEvent::LayerUnpacked { digest, elapsed } => format!(
            "unpacked {} in {:.2}s",
            short_digest(&digest),
            elapsed.as_secs_f64()
        ),
        BuildEvent::PullStarted { reference } => format!("pulling {reference}"),
        BuildEvent::PullFinished {
            reference,
            digest,
            blobs,
            bytes,
            ..
        } => format!("pulled {reference}: {digest} ({blobs} blobs, {bytes} bytes downloaded)"),
        BuildEvent::ExportFinished { what, .. } => format!("exported {what}"),
        BuildEvent::Note { message } => message,
    };
    Some(line)
}

/// One JSON object per line.
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn event(&self, event: BuildEvent) {
        if let Ok(text) = serde_json::to_string(&event) {
            write_err(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::progress::tests::id;

    fn line(event: BuildEvent) -> String {
        plain_line(event, 2).unwrap_or_default()
    }

    #[test]
    fn plain_lines_name_their_stage_and_step() {
        let build = id(Some("build"), 2, "RUN make");
        let started = line(BuildEvent::StepStarted { id: build.clone() });
        assert_eq!(started, "#1.2 [build 3/4] RUN make");
        let log = line(BuildEvent::StepLog {
            id: build.clone(),
            line: "cc -o app".into(),
        });
        assert_eq!(log, "#1.2 [build 3/4] cc -o app");
        let done = line(BuildEvent::StepFinished {
            id: build.clone(),
            elapsed: Duration::from_millis(1500),
            layer: false,
            commit: None,
            patched: None,
        });
        assert_eq!(done, "#1.2 DONE 1.50s (no layer)");
        let done = line(BuildEvent::StepFinished {
            id: build,
            elapsed: Duration::from_millis(1500),
            layer: true,
            commit: Some(Duration::from_millis(320)),
            patched: None,
        });
        assert_eq!(done, "#1.2 DONE 1.50s (layer 0.32s)");
        let patched = line(BuildEvent::StepFinished {
            id: id(Some("build"), 2, "COPY . /"),
            elapsed: Duration::from_millis(900),
            layer: true,
            commit: Some(Duration::from_millis(410)),
            patched: Some(crate::executor::Patched {
                copied: 118,
                chunks: 121,
            }),
        });
        assert_eq!(
            patched,
            "#1.2 DONE 0.90s (layer 0.41s, 118 of 121 gzip chunks from the last build)"
        );
        let unnamed = line(BuildEvent::StepLog {
            id: id(None, 2, "RUN x"),
            line: "out".into(),
        });
        assert_eq!(unnamed, "#1.2 [stage-1 3/4] out");
    }

    #[test]
    fn the_from_and_metadata_steps_have_their_lines() {
        let from = id(Some("b"), 0, "FROM busybox");
        assert_eq!(
            line(BuildEvent::StepStarted { id: from.clone() }),
            "#1.0 [b 1/4] FROM busybox"
        );
        let done = BuildEvent::StepFinished {
            id: from,
            elapsed: Duration::from_millis(20),
            layer: false,
            commit: None,
            patched: None,
        };
        assert_eq!(line(done), "#1.0 DONE 0.02s");
        let env = BuildEvent::StepMetadata {
            id: id(Some("b"), 1, "ENV A=1"),
        };
        assert_eq!(line(env), "#1.1 [b 2/4] ENV A=1");
    }

    #[test]
    fn an_imported_hit_says_where_it_came_from_in_plain_and_json() {
        let cached = |from: Option<&str>| BuildEvent::StepCached {
            id: id(Some("b"), 1, "RUN make"),
            from: from.map(str::to_owned),
        };
        assert_eq!(line(cached(None)), "#1.1 [b 2/4] RUN make\n#1.1 CACHED");
        assert_eq!(
            line(cached(Some("registry r:5000/app:cache"))),
            "#1.1 [b 2/4] RUN make\n#1.1 CACHED (registry r:5000/app:cache)"
        );
        let json = serde_json::to_value(cached(Some("local /c"))).unwrap();
        assert_eq!(json["from"], "local /c");
        let json = serde_json::to_value(cached(None)).unwrap();
        assert!(json.get("from").is_none(), "{json}");
    }

    #[test]
    fn pulls_and_exports_keep_their_lines_and_bytes_stay_out() {
        let pulled = BuildEvent::PullFinished {
            reference: "r:5000/busybox:latest".into(),
            digest: "sha256:ab".into(),
            blobs: 2,
            bytes: 10,
            elapsed: Duration::ZERO,
        };
        assert_eq!(
            line(pulled),
            "pulled r:5000/busybox:latest: sha256:ab (2 blobs, 10 bytes downloaded)"
        );
        let bytes = BuildEvent::BlobProgress {
            digest: "sha256:ab".into(),
            done: 1,
            total: 2,
        };
        assert_eq!(plain_line(bytes, 1), None);
        let exported = BuildEvent::ExportFinished {
            what: "OCI layout to out".into(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(line(exported), "exported OCI layout to out");
    }
}
