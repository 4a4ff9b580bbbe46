//! `rbuild du` and `rbuild prune`, and the size cap enforced after a build
//! (`--max-store-size`, `<store>/config.json`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use super::store_cmds::human_size;
use crate::cache::{self, PruneOptions, PruneReport, UsageReport};
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::parser::instructions::values::{parse_go_duration, ram_in_bytes};
use crate::store::usage::Kind;
use crate::store::{Store, StoreConfig};

/// `--format` of `rbuild du`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DuFormat {
    Table,
    Json,
}

/// Arguments of `rbuild du`.
#[derive(Debug, clap::Args)]
pub struct DuArgs {
    /// List every item (blob, snapshot, record...) with its size and last use.
    #[arg(short, long)]
    verbose: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DuFormat::Table)]
    format: DuFormat,
}

/// Arguments of `rbuild prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove every cache item (records, snapshots, cache mounts, build logs, stat
    /// caches) and every blob no image needs, not only dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Remove cache items, least recently used first, until the store is at most this
    /// size (`10GB`, `512MiB`; binary multiples).
    #[arg(long, value_name = "SIZE")]
    keep_storage: Option<String>,
    /// `until=DURATION`: only what was not used in the last DURATION (`24h`, `90m`).
    #[arg(long, value_name = "until=DURATION")]
    filter: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
}

fn open(root: &Path) -> anyhow::Result<Store> {
    Store::open(root).with_context(|| format!("cannot open the image store `{}`", root.display()))
}

pub(super) fn size_arg(text: &str, what: &str) -> anyhow::Result<u64> {
    ram_in_bytes(text)
        .with_context(|| format!("invalid {what} {text:?}: expected a size such as 10GB or 512MiB"))
}

/// Seconds since the epoch (0 before it).
fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `rbuild du`.
pub fn run_du(root: &Path, args: &DuArgs) -> anyhow::Result<ExitCode> {
    let store = open(root)?;
    let report = cache::usage(&store).context("cannot measure the store")?;
    let text = match args.format {
        DuFormat::Json => {
            let mut t = serde_json::to_string_pretty(&du_json(&report, args.verbose))
                .context("serializing the report")?;
            t.push('\n');
            t
        }
        DuFormat::Table => du_table(&report, args.verbose),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

const KINDS: [Kind; 7] = [
    Kind::Blob,
    Kind::Snapshot,
    Kind::Record,
    Kind::Mount,
    Kind::BuildLog,
    Kind::StatCache,
    Kind::Temp,
];

fn du_json(r: &UsageReport, verbose: bool) -> serde_json::Value {
    use serde_json::json;
    let tally = |t: &cache::Tally| json!({"count": t.count, "bytes": t.bytes});
    let mut kinds = serde_json::Map::new();
    for kind in KINDS {
        let k = r.kinds.get(&kind).cloned().unwrap_or_default();
        kinds.insert(
            kind.name().to_owned(),
            json!({"count": k.tally.count, "bytes": k.tally.bytes,
                   "lastUsed": k.last_used.map(unix)}),
        );
    }
    let mut out = json!({
        "total": r.total,
        "reclaimable": r.reclaimable,
        "reclaimableAll": r.reclaimable_all,
        "other": r.other_bytes,
        "images": {"count": r.images, "blobs": tally(&r.image_blobs),
                   "lazyBlobs": tally(&r.lazy_blobs)},
        "blobs": {"byImages": tally(&r.blobs.by_images), "byRecordsOnly": tally(&r.blobs.by_records),
                  "unreferenced": tally(&r.blobs.unreferenced)},
        "kinds": kinds,
    });
    if verbose {
        let items: Vec<_> = r
            .entries
            .iter()
            .map(|e| json!({"kind": e.kind.name(), "name": e.name, "bytes": e.bytes, "lastUsed": unix(e.last_used)}))
            .collect();
        out["items"] = items.into();
    }
    out
}

fn du_table(r: &UsageReport, verbose: bool) -> String {
    let now = unix(SystemTime::now());
    let ago = |t: Option<SystemTime>| {
        t.map_or("-".to_owned(), |t| {
            format!("{} ago", age(now.saturating_sub(unix(t))))
        })
    };
    let mut rows = vec![["KIND", "COUNT", "SIZE", "LAST USED"].map(String::from)];
    let row = |name: &str, count: usize, bytes: u64, last: String| {
        [name.to_owned(), count.to_string(), human_size(bytes), last]
    };
    rows.push(row(
        "images (blobs they need)",
        r.images,
        r.image_blobs.bytes,
        "-".into(),
    ));
    if r.lazy_blobs.count > 0 {
        rows.push(row(
            "  lazy: in a registry, 0 B here",
            r.lazy_blobs.count,
            0,
            format!("({} there)", human_size(r.lazy_blobs.bytes)),
        ));
    }
    for kind in KINDS {
        let k = r.kinds.get(&kind).cloned().unwrap_or_default();
        rows.push(row(
            kind.plural(),
            k.tally.count,
            k.tally.bytes,
            ago(k.last_used),
        ));
        if kind == Kind::Blob {
            for (label, t) in [
                ("  needed by images", &r.blobs.by_images),
                ("  cache records only", &r.blobs.by_records),
                ("  unreferenced", &r.blobs.unreferenced),
            ] {
                rows.push(row(label, t.count, t.bytes, String::new()));
            }
        }
    }
    rows.push(row(
        "other (layout, dirs, locks)",
        0,
        r.other_bytes,
        String::new(),
    ));
    let mut out = super::store_cmds::render_table(&rows);
    out.push_str(&format!(
        "Total: {} ({} bytes); reclaimable: {} by `rbuild prune`, {} by `rbuild prune --all`\n",
        human_size(r.total),
        r.total,
        human_size(r.reclaimable),
        human_size(r.reclaimable_all)
    ));
    if verbose {
        let mut items = vec![["KIND", "NAME", "SIZE", "LAST USED"].map(String::from)];
        for e in &r.entries {
            items.push([
                e.kind.name().to_owned(),
                e.name.clone(),
                human_size(e.bytes),
                ago(Some(e.last_used)),
            ]);
        }
        out.push('\n');
        out.push_str(&super::store_cmds::render_table(&items));
    }
    out
}

/// `3d`, `5h`, `12m`, `40s`.
fn age(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `rbuild prune`.
pub fn run_prune(root: &Path, args: &PruneArgs) -> anyhow::Result<ExitCode> {
    let mut opts = PruneOptions {
        all: args.all,
        keep_storage: args
            .keep_storage
            .as_deref()
            .map(|s| size_arg(s, "--keep-storage"))
            .transpose()?,
        ..PruneOptions::default()
    };
    for filter in &args.filter {
        let Some(("until", value)) = filter.split_once('=') else {
            bail!("invalid filter {filter:?}: the only filter is until=DURATION");
        };
        let duration = parse_go_duration(value)
            .ok()
            .and_then(|d| d.to_std())
            .with_context(|| {
                format!("invalid filter {filter:?}: expected a duration such as 24h")
            })?;
        opts.until = Some(duration);
    }
    if !args.force && !confirm(args.all)? {
        bail!("prune cancelled");
    }
    let store = open(root)?;
    let gc = gc_exclusive(&store)?;
    let report = cache::prune(&store, &gc, &opts).context("cannot prune the store")?;
    print_report(&report, &mut std::io::stdout().lock()).context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// The store's gc lock, exclusively: waits (saying so) while builds run.
pub(super) fn gc_exclusive(store: &Store) -> anyhow::Result<crate::store::FileLock> {
    Ok(match store.try_gc_exclusive()? {
        Some(lock) => lock,
        None => {
            super::write_stderr("builds are running on this store: waiting for them to finish");
            store.gc_exclusive()?
        }
    })
}

/// Asks on stderr, reads the answer from stdin (`y`/`yes` goes on).
fn confirm(all: bool) -> anyhow::Result<bool> {
    let what = if all {
        "all build cache (records, snapshots, cache mounts) and every blob no image needs"
    } else {
        "all dangling build cache"
    };
    super::write_stderr(&format!(
        "WARNING! This will remove {what}. Are you sure you want to continue? [y/N]"
    ));
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        super::write_stderr(
            "(not a terminal: reading the answer from stdin; pass --force to skip)",
        );
    }
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

fn print_report(report: &PruneReport, out: &mut dyn Write) -> std::io::Result<()> {
    if !report.removed.is_empty() {
        writeln!(out, "Deleted:")?;
        for r in &report.removed {
            writeln!(
                out,
                "{} {} {}",
                r.kind.name().replace(' ', "-"),
                r.name,
                r.bytes
            )?;
        }
    }
    writeln!(
        out,
        "Total reclaimed space: {} ({} bytes)",
        human_size(report.reclaimed),
        report.reclaimed
    )
}

/// The size cap for builds in `root`: `--max-store-size`, else `config.json`.
pub fn max_store_size(root: &Path, flag: Option<&str>) -> anyhow::Result<Option<u64>> {
    if let Some(text) = flag {
        return size_arg(text, "--max-store-size").map(Some);
    }
    let config = StoreConfig::load(root)?;
    Ok(config.max_store_size(root)?)
}

/// After a build: prunes least recently used cache items until the store is at most
/// `cap`, keeping `built` (the image just made) and every named image. Only if no
/// other build runs (the gc lock is free now); else the next build will.
pub fn enforce_cap(root: &Path, cap: u64, built: &Digest) -> anyhow::Result<()> {
    let store = open(root)?;
    let built: Descriptor = store
        .resolve(&built.to_string())?
        .with_context(|| format!("the image just built ({built}) is not in the store"))?;
    let Some(gc) = store.try_gc_exclusive()? else {
        super::write_stderr("store size cap: other builds are running; left to a later build");
        return Ok(());
    };
    let opts = PruneOptions {
        keep_storage: Some(cap),
        keep_images: vec![built],
        ..PruneOptions::default()
    };
    let report = cache::prune(&store, &gc, &opts).context("cannot enforce the store size cap")?;
    if report.reclaimed > 0 || !report.removed.is_empty() {
        super::write_stderr(&format!(
            "store size cap {}: removed {} cache items, reclaimed {} ({} bytes); store now {}",
            human_size(cap),
            report.removed.len(),
            human_size(report.reclaimed),
            report.reclaimed,
            human_size(report.after)
        ));
    }
    if report.after > cap {
        super::write_stderr(&format!(
            "warning: the store ({}) is still over its size cap ({}): images need the rest",
            human_size(report.after),
            human_size(cap)
        ));
    }
    Ok(())
}
