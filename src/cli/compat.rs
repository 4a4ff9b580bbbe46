//! What rbuild does with each flag of `docker buildx build`, `docker build` and
//! `podman build` and each `-o` key of BuildKit's exporters: `testdata/cli-compat.tsv`,
//! compiled in. A flag rbuild does not define is refused with the table's reason (what
//! to use instead, or the issue it waits for), never with a bare "unexpected argument";
//! the README's "Coming from docker build" section is generated from the same table.

/// The table: a header line, then one tab-separated row per flag or key.
const TABLE: &str = include_str!("../../testdata/cli-compat.tsv");

/// What rbuild does with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Honoured; a test covers it.
    Supported,
    /// Refused with a reason and what to use instead.
    Refused,
    /// Refused until the feature it names is built.
    Later,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// `docker buildx build`, `podman build`, or `-o type=…` for exporter keys.
    pub command: &'static str,
    /// The flag as the tool documents it (`-f, --file`), or the `-o` key.
    pub option: &'static str,
    pub status: Status,
    /// What rbuild does, or why not and what to use instead.
    pub note: &'static str,
    /// The tests that cover a supported row; the issue a later row waits for.
    pub evidence: &'static str,
}

impl Row {
    /// Whether the row is an exporter key (`-o type=…`) rather than a flag.
    pub fn is_output_key(&self) -> bool {
        self.command.starts_with("-o ")
    }

    /// The flag's spellings (`-f`, `--file`).
    pub fn spellings(&self) -> impl Iterator<Item = &'static str> {
        self.option.split(", ").map(str::trim)
    }
}

/// The rows of the table (malformed lines, which the unit tests rule out, are skipped).
pub fn rows() -> impl Iterator<Item = Row> {
    TABLE.lines().skip(1).filter_map(parse_row)
}

fn parse_row(line: &'static str) -> Option<Row> {
    let mut cells = line.split('\t');
    let (command, option, status, note) =
        (cells.next()?, cells.next()?, cells.next()?, cells.next()?);
    let status = match status {
        "supported" => Status::Supported,
        "refused" => Status::Refused,
        "later" => Status::Later,
        _ => return None,
    };
    Some(Row {
        command,
        option,
        status,
        note,
        evidence: cells.next().unwrap_or_default(),
    })
}

/// The error for `flag` (as written, `--squash` or `--cap-add=X`) when it is a flag of
/// docker or podman that rbuild refuses; `None` for a flag the table does not know.
pub fn refusal(flag: &str) -> Option<String> {
    let name = flag.split_once('=').map_or(flag, |(name, _)| name);
    let row = rows().find(|r| {
        !r.is_output_key() && r.status != Status::Supported && r.spellings().any(|s| s == name)
    })?;
    Some(match row.status {
        Status::Later => format!(
            "{name} ({}) is not supported yet: {} ({})",
            row.command, row.note, row.evidence
        ),
        _ => format!(
            "{name} ({}) is not supported by rbuild: {}",
            row.command, row.note
        ),
    })
}

#[cfg(test)]
mod tests;
