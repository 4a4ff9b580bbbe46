//! `rbuild history IMAGE`: the image's history entries, newest first, as
//! `docker history` prints them.

use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use super::store_cmds::{
    digest_text, human_size, open, print, relative_time, render_table, resolve,
};
use crate::image::{media_types, History};
use crate::publish::{read_config, read_manifest};

/// Arguments of `rbuild history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The image (a name, or an image ID or manifest digest, whole or a unique prefix).
    name: String,
    /// Print whole digests and whole `CREATED BY` commands.
    #[arg(long)]
    no_trunc: bool,
    /// Print only the image IDs (`<missing>` for entries that are not images).
    #[arg(short, long)]
    quiet: bool,
    /// Sizes and times for people (`--human=false`: bytes and RFC 3339 times).
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set,
          value_name = "BOOL")]
    human: bool,
}

/// One row: `IMAGE CREATED CREATED-BY SIZE COMMENT`.
type Row = [String; 5];

/// `rbuild history IMAGE`.
pub fn run_history(root: &Path, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let store = open(root)?;
    let descriptor = resolve(&store, &args.name)?;
    if !media_types::is_manifest(&descriptor.media_type) {
        bail!(
            "{} is a multi-platform index: name one of its platform manifests by digest (see `rbuild inspect {}`)",
            args.name,
            args.name
        );
    }
    let what = || format!("cannot read the history of {}", args.name);
    let manifest = read_manifest(&store, &descriptor.digest).with_context(what)?;
    let config = read_config(&store, &manifest.config.digest).with_context(what)?;
    let sizes: Vec<u64> = manifest.layers.iter().map(|l| l.size).collect();
    let id = digest_text(&manifest.config.digest, args.no_trunc);
    let rows = rows(&config.history, &sizes, &id, args);
    let mut out = String::new();
    if args.quiet {
        for row in &rows {
            out.push_str(&row[0]);
            out.push('\n');
        }
    } else {
        let mut table =
            vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from)];
        table.extend(rows);
        out = render_table(&table);
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The rows, newest first: the image ID on the newest, `<missing>` below (as docker
/// shows images built by BuildKit); each entry that made a layer gets that layer's
/// size (compressed, as stored), the others `0B`.
fn rows(history: &[History], sizes: &[u64], id: &str, args: &HistoryArgs) -> Vec<Row> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut layers = sizes.iter();
    let mut rows: Vec<Row> = history
        .iter()
        .map(|h| {
            let size = if h.empty_layer {
                0
            } else {
                layers.next().copied().unwrap_or(0)
            };
            let created = h.created.clone().unwrap_or_default();
            [
                "<missing>".to_owned(),
                if args.human {
                    relative_time(&created, now)
                } else {
                    created
                },
                created_by(&h.created_by, args.no_trunc),
                if args.human {
                    human_size(size)
                } else {
                    size.to_string()
                },
                h.comment.clone(),
            ]
        })
        .collect();
    rows.reverse();
    if let Some(newest) = rows.first_mut() {
        newest[0] = id.to_owned();
    }
    rows
}

/// `CREATED BY` on one line, cut to 45 characters with `…` as docker does.
fn created_by(text: &str, no_trunc: bool) -> String {
    let one_line = text.replace(['\n', '\t'], " ");
    if no_trunc || one_line.chars().count() <= 45 {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(44).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(created_by: &str, empty: bool) -> History {
        History {
            created: Some("2024-01-01T00:00:00Z".into()),
            created_by: created_by.into(),
            empty_layer: empty,
            ..Default::default()
        }
    }

    #[test]
    fn newest_first_with_layer_sizes_and_the_id_on_top() {
        let args = HistoryArgs {
            name: "x".into(),
            no_trunc: false,
            quiet: false,
            human: false,
        };
        let history = [
            entry("COPY a / # buildkit", false),
            entry("ENV A=1", true),
            entry(&format!("RUN {} # buildkit", "x".repeat(60)), false),
        ];
        let rows = rows(&history, &[10, 2000], "abc", &args);
        assert_eq!(rows[0][0], "abc");
        assert_eq!(rows[0][3], "2000");
        assert!(rows[0][2].ends_with('…') && rows[0][2].chars().count() == 45);
        assert_eq!(
            (rows[1][0].as_str(), rows[1][3].as_str()),
            ("<missing>", "0")
        );
        assert_eq!(rows[2][2], "COPY a / # buildkit");
        assert_eq!(rows[2][1], "2024-01-01T00:00:00Z");
    }
}
