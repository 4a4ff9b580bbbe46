//! `rbuild images`, `rbuild tag`, `rbuild rmi`, `rbuild inspect`: the local image store.
//!
//! Each command takes the store root (from `--root`, `RBUILD_ROOT` or the default) and
//! prints data on stdout; errors name the image they are about.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::digest::Digest;
use crate::image::{media_types, Descriptor};
use crate::publish::{self, export::image_size};
use crate::store::{self, ImageName, Store};

/// Arguments of `rbuild images`.
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Print only the image IDs, one per row (as `docker images -q`).
    #[arg(short, long)]
    quiet: bool,
    /// Print whole IDs and digests (`sha256:` and 64 hex digits).
    #[arg(long)]
    no_trunc: bool,
    /// Accepted for docker compatibility: the DIGEST column (the manifest digest) is
    /// always shown.
    #[arg(long)]
    digests: bool,
}

/// Arguments of `rbuild tag`.
#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// The image to name (a name, or an image ID or manifest digest, whole or a unique
    /// prefix).
    src: String,
    /// The new name (`repo[:tag]`; the tag defaults to `latest`).
    dst: String,
}

/// Arguments of `rbuild rmi`.
#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Names to remove, or image IDs or digests (an image without a name is deleted);
    /// blobs stay until garbage collection.
    #[arg(required = true)]
    names: Vec<String>,
    /// With a digest: remove every name the image has.
    #[arg(short, long)]
    force: bool,
}

pub(super) fn open(root: &Path) -> anyhow::Result<Store> {
    Store::open(root).with_context(|| format!("cannot open the image store `{}`", root.display()))
}

pub(super) fn print(text: &str) -> anyhow::Result<()> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to stdout")
}

/// Resolves a name, image ID or digest to its descriptor, or fails naming it.
pub(super) fn resolve(store: &Store, reference: &str) -> anyhow::Result<Descriptor> {
    store
        .resolve(reference)?
        .ok_or_else(|| store::Error::ImageNotFound {
            name: reference.to_owned(),
        })
        .map_err(Into::into)
}

/// One image as `rbuild images` lists it.
struct Listed {
    /// `None`: an image without a name (`<none>`).
    name: Option<ImageName>,
    descriptor: Descriptor,
    /// The recorded image ID, if any (else read from the manifest).
    id: Option<Digest>,
}

/// `rbuild images`: `NAME  IMAGE ID  DIGEST  CREATED  SIZE  PLATFORMS`, named images by
/// name, then
/// those without a name (`<none>`), newest first. IMAGE ID is the config digest (what
/// docker and podman show), DIGEST the manifest digest (what registries and
/// `--metadata-file` name), both 12 hex digits unless `--no-trunc`; PLATFORMS the
/// image's platform, or each platform of an index (a multi-platform image), one row.
pub fn run_images(root: &Path, args: &ImagesArgs) -> anyhow::Result<ExitCode> {
    // `--digests` asks for what is always shown.
    let _ = args.digests;
    let store = open(root)?;
    let named = store.list()?.into_iter().map(|i| Listed {
        name: Some(i.name),
        descriptor: i.descriptor,
        id: i.id,
    });
    let unnamed = store.list_unnamed()?.into_iter().map(|u| Listed {
        name: None,
        descriptor: u.descriptor,
        id: Some(u.id),
    });
    let images: Vec<Listed> = named.chain(unnamed).collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut rows =
        vec![["NAME", "IMAGE ID", "DIGEST", "CREATED", "SIZE", "PLATFORMS"].map(String::from)];
    for image in &images {
        // One unreadable image is reported, never a reason to hide the others.
        let row = image_row(&store, image, args.no_trunc, now).unwrap_or_else(|e| {
            eprintln!("warning: {e:#}");
            [
                listed_name(image),
                "?".into(),
                digest_text(&image.descriptor.digest, args.no_trunc),
                "unreadable".into(),
                "?".into(),
                "?".into(),
            ]
        });
        rows.push(row);
    }
    let text = if args.quiet {
        rows.iter().skip(1).map(|r| format!("{}\n", r[1])).collect()
    } else {
        render_table(&rows)
    };
    print(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn listed_name(image: &Listed) -> String {
    image
        .name
        .as_ref()
        .map_or_else(|| "<none>".to_owned(), ToString::to_string)
}

/// A digest as docker shows IDs: 12 hex digits, or whole with `--no-trunc`.
pub(super) fn digest_text(digest: &Digest, no_trunc: bool) -> String {
    if no_trunc {
        digest.to_string()
    } else {
        digest.short()
    }
}

fn image_row(
    store: &Store,
    image: &Listed,
    no_trunc: bool,
    now: i64,
) -> anyhow::Result<[String; 6]> {
    let what = || format!("image {}", listed_name(image));
    let size = image_size(store, &image.descriptor).with_context(what)?;
    let id = match image.id {
        Some(id) => id,
        None => store.image_id(&image.descriptor).with_context(what)?,
    };
    let (created, platforms) = if media_types::is_manifest(&image.descriptor.media_type) {
        let config = publish::read_config(store, &id).with_context(what)?;
        let created = config
            .created
            .map_or("N/A".to_owned(), |c| relative_time(&c, now));
        let platform = platform_text(&config.os, &config.architecture, &config.variant);
        (created, platform)
    } else {
        let platforms = index_platforms(store, &image.descriptor.digest).with_context(what)?;
        ("N/A".to_owned(), platforms)
    };
    Ok([
        listed_name(image),
        digest_text(&id, no_trunc),
        digest_text(&image.descriptor.digest, no_trunc),
        created,
        human_size(size),
        platforms,
    ])
}

/// `os/architecture[/variant]`.
fn platform_text(os: &str, architecture: &str, variant: &str) -> String {
    match variant {
        "" => format!("{os}/{architecture}"),
        v => format!("{os}/{architecture}/{v}"),
    }
}

/// The platforms an index lists, comma-separated (`?` for an entry without one).
fn index_platforms(store: &Store, digest: &Digest) -> anyhow::Result<String> {
    let index: crate::image::Index = serde_json::from_slice(&store.read_blob(digest)?)
        .with_context(|| format!("index {digest} is not valid JSON"))?;
    let texts: Vec<String> = index
        .manifests
        .iter()
        .map(|m| {
            m.platform.as_ref().map_or("?".to_owned(), |p| {
                platform_text(&p.os, &p.architecture, &p.variant)
            })
        })
        .collect();
    Ok(texts.join(","))
}

/// Left-aligned columns separated by three spaces.
pub(super) fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Sizes as Docker prints them: decimal units, three significant digits (`7.79MB`).
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let int_digits = if value >= 100.0 {
        3
    } else if value >= 10.0 {
        2
    } else {
        1
    };
    let mut text = format!("{value:.prec$}", prec = 3 - int_digits);
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{text}{}", UNITS[unit])
}

/// `2024-01-01T00:00:00Z` -> `3 months ago`; unparseable text is shown as it is.
pub(super) fn relative_time(rfc3339: &str, now: i64) -> String {
    let Some(then) = parse_rfc3339(rfc3339) else {
        return rfc3339.to_owned();
    };
    let secs = now - then;
    if secs < 1 {
        return "Less than a second ago".to_owned();
    }
    let steps = [
        (60 * 60 * 24 * 365, "year"),
        (60 * 60 * 24 * 30, "month"),
        (60 * 60 * 24 * 7, "week"),
        (60 * 60 * 24, "day"),
        (60 * 60, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    let (n, unit) = steps
        .iter()
        .find(|(s, _)| secs >= *s)
        .map_or((secs, "second"), |(s, u)| (secs / s, *u));
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural} ago")
}

/// Seconds since the epoch of an RFC 3339 time (`Z` or a `±HH:MM` offset).
fn parse_rfc3339(text: &str) -> Option<i64> {
    let num = |s: &str| -> Option<i64> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, mo, da) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => return None,
    };
    let clock = clock.split('.').next()?;
    let mut c = clock.splitn(3, ':');
    let (h, mi, s) = (num(c.next()?)?, num(c.next()?)?, num(c.next()?)?);
    let offset_secs = match offset.as_bytes().first()? {
        b'Z' | b'z' => 0,
        sign => {
            let (oh, om) = offset[1..].split_once(':')?;
            let secs = num(oh)? * 3600 + num(om)? * 60;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset_secs)
}

/// `rbuild tag SRC DST`.
pub fn run_tag(root: &Path, args: &TagArgs) -> anyhow::Result<ExitCode> {
    let store = open(root)?;
    let dst = ImageName::parse(&args.dst)?;
    store
        .tag(&args.src, &dst)
        .with_context(|| format!("cannot tag {} as {dst}", args.src))?;
    Ok(ExitCode::SUCCESS)
}

/// `rbuild rmi IMAGE...`: removes names, printing `Untagged: NAME` for each, or an
/// image without a name (by ID or digest), printing `Deleted: ID`. Goes on after an
/// error and fails at the end, as `docker rmi` does.
pub fn run_rmi(root: &Path, args: &RmiArgs) -> anyhow::Result<ExitCode> {
    let store = open(root)?;
    let mut code = ExitCode::SUCCESS;
    for reference in &args.names {
        match remove(&store, reference, args.force) {
            Ok(lines) => print(&lines)?,
            Err(err) => {
                super::report(&err);
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

/// Removes what `reference` names; the lines to print.
fn remove(store: &Store, reference: &str, force: bool) -> anyhow::Result<String> {
    if let Ok(name) = ImageName::parse(reference) {
        if store.list()?.iter().any(|i| i.name == name) {
            store.remove_name(&name)?;
            return Ok(format!("Untagged: {name}\n"));
        }
    }
    let descriptor = resolve(store, reference)?;
    let names: Vec<ImageName> = store
        .list()?
        .into_iter()
        .filter(|i| i.descriptor.digest == descriptor.digest)
        .map(|i| i.name)
        .collect();
    if names.is_empty() {
        if !store.remove_unnamed(&descriptor.digest)? {
            bail!("{reference} is not an image of the store (a blob another image refers to)");
        }
        return Ok(format!("Deleted: {}\n", store.image_id(&descriptor)?));
    }
    if names.len() > 1 && !force {
        let list: Vec<String> = names.iter().map(ToString::to_string).collect();
        bail!(
            "image {reference} has {} names ({}): remove them by name, or use --force",
            names.len(),
            list.join(", ")
        );
    }
    let mut lines = String::new();
    for name in &names {
        store.remove_name(name)?;
        lines.push_str(&format!("Untagged: {name}\n"));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::store_with_image;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1200), "1.2kB");
        assert_eq!(human_size(7_790_000), "7.79MB");
        assert_eq!(human_size(123_456_789), "123MB");
    }

    #[test]
    fn times_are_relative() {
        let epoch = parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
        assert_eq!(epoch, 1_704_067_200);
        assert_eq!(parse_rfc3339("2024-01-01T01:00:00.5+01:00"), Some(epoch));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(
            relative_time("2024-01-01T00:00:00Z", epoch + 7200),
            "2 hours ago"
        );
        assert_eq!(
            relative_time("2024-01-01T00:00:00Z", epoch + 86_400),
            "1 day ago"
        );
        assert_eq!(relative_time("soon", epoch), "soon");
    }

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            ["NAME", "DIGEST", "SIZE", "CREATED"].map(String::from),
            ["app:1", "abc", "1kB", "N/A"].map(String::from),
        ];
        assert_eq!(
            render_table(&rows),
            "NAME    DIGEST   SIZE   CREATED\napp:1   abc      1kB    N/A\n"
        );
    }

    #[test]
    fn commands_edit_the_store() {
        let (dir, store, desc) = store_with_image(b"layer");
        store
            .set_name(&ImageName::parse("app:1").unwrap(), &desc)
            .unwrap();
        let root = dir.path();
        let tag = TagArgs {
            src: "app:1".into(),
            dst: "app:2".into(),
        };
        run_tag(root, &tag).unwrap();
        let named = &store.list().unwrap()[1];
        let listed = Listed {
            name: Some(named.name.clone()),
            descriptor: named.descriptor.clone(),
            id: None,
        };
        let row = image_row(&store, &listed, false, 1_704_067_200 + 60).unwrap();
        let id = store.image_id(&desc).unwrap();
        assert_eq!(row[0], "app:2");
        assert_eq!(
            (row[1].as_str(), row[2].as_str()),
            (&id.hex()[..12], &desc.digest.hex()[..12])
        );
        assert_eq!(row[3], "1 minute ago");
        // A digest (or ID) with two names needs --force.
        let prefix = &desc.digest.hex()[..10];
        assert!(remove(&store, prefix, false).is_err());
        let removed = remove(&store, &id.hex()[..10], true).unwrap();
        assert_eq!(removed, "Untagged: app:1\nUntagged: app:2\n");
        assert!(store.list().unwrap().is_empty());
        // An image without a name is deleted by ID.
        store.add_unnamed(&desc).unwrap();
        assert_eq!(
            remove(&store, prefix, false).unwrap(),
            format!("Deleted: {id}\n")
        );
        assert!(store.list_unnamed().unwrap().is_empty());
        assert!(remove(&store, prefix, false).is_err());
        let err = super::super::inspect::run_inspect(
            root,
            &super::super::inspect::InspectArgs {
                name: "app:1".into(),
                format: None,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("app:1"), "{err}");
        assert!(run_tag(root, &tag)
            .unwrap_err()
            .to_string()
            .contains("app:1"));
    }
}
