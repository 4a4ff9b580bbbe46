//! `rbuild store check [--repair] [--format table|json]`: the store's integrity.
//!
//! Prints one line per finding (what, where, why, and with `--repair` what was done),
//! then a summary. Exit status: 0 when nothing is damaged (leftovers of interrupted
//! processes, such as dead work dirs, are listed but do not fail), 1 otherwise; with
//! `--repair`, the status of a second check run after the repair.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::store::check::{check, Finding, Report, Severity};
use crate::store::Store;

/// Arguments of `rbuild store`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StoreCommand {
    /// Verify every blob, image, cache record and snapshot; report (and repair) damage.
    Check(CheckArgs),
}

/// Arguments of `rbuild store check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Remove what is damaged (builds re-make it) and what interrupted processes left.
    #[arg(long)]
    repair: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Runs `rbuild store ...`.
pub fn run(root: &Path, args: &StoreArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        StoreCommand::Check(a) => run_check(root, a),
    }
}

/// A full check: the store's part, then the cache records against its blob verdicts.
fn full_check(store: &Store, repair: bool) -> anyhow::Result<Report> {
    let mut report = check(store, repair).context("checking the store")?;
    crate::cache::check_records(store, repair, &mut report)
        .context("checking the cache records")?;
    Ok(report)
}

fn run_check(root: &Path, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_for_check(root)
        .with_context(|| format!("cannot open the image store `{}`", root.display()))?;
    // A repair removes things: not while builds use them (they hold the gc lock shared).
    let _gc = if args.repair {
        Some(super::prune_cmds::gc_exclusive(&store)?)
    } else {
        None
    };
    let report = full_check(&store, args.repair)?;
    let after = if args.repair {
        Some(full_check(&store, false)?)
    } else {
        None
    };
    let last = after.as_ref().unwrap_or(&report);
    let text = match args.format {
        Format::Table => render_table(root, &report, after.as_ref()),
        Format::Json => render_json(&report, after.as_ref())?,
    };
    super::store_cmds::print(&text)?;
    Ok(if last.damaged() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn render_table(root: &Path, report: &Report, after: Option<&Report>) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&line(root, f));
    }
    let c = &report.checked;
    let damage = count(report, Severity::Damage);
    let leftovers = count(report, Severity::Leftover);
    out.push_str(&format!(
        "checked {} blobs{}, {} images, {} cache records, {} snapshots: {}\n",
        c.blobs,
        match c.lazy {
            0 => String::new(),
            n => format!(" (and {n} lazy: kept by a registry, fetched on first use)"),
        },
        c.images,
        c.records,
        c.snapshots,
        match (damage, leftovers) {
            (0, 0) => "clean".to_owned(),
            (0, n) => format!("no damage, {n} leftovers of interrupted processes"),
            (d, n) => format!("{d} damaged, {n} leftovers"),
        }
    ));
    if let Some(after) = after {
        out.push_str(
            &match count(after, Severity::Damage) + count(after, Severity::Leftover) {
                0 => "after repair: clean\n".to_owned(),
                n => {
                    let mut s = format!("after repair: {n} problems remain\n");
                    for f in &after.findings {
                        s.push_str(&line(root, f));
                    }
                    s
                }
            },
        );
    }
    out
}

/// `damage  blob  sha256:...  blobs/sha256/...: why [-> repaired]`
fn line(root: &Path, f: &Finding) -> String {
    let severity = match f.severity {
        Severity::Damage => "damage",
        Severity::Leftover => "leftover",
    };
    let path = f.path.strip_prefix(root).unwrap_or(&f.path).display();
    let repaired = f
        .repaired
        .as_ref()
        .map_or(String::new(), |r| format!(" -> {r}"));
    format!(
        "{severity:<8}  {:<8}  {}  {path}: {}{repaired}\n",
        f.kind, f.object, f.problem
    )
}

fn count(report: &Report, severity: Severity) -> usize {
    report
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .count()
}

fn render_json(report: &Report, after: Option<&Report>) -> anyhow::Result<String> {
    let value = serde_json::json!({
        "ok": !after.unwrap_or(report).damaged(),
        "checked": report.checked,
        "findings": report.findings,
        "afterRepair": after.map(|a| &a.findings),
    });
    Ok(format!("{}\n", serde_json::to_string_pretty(&value)?))
}
