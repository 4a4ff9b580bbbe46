use std::collections::BTreeSet;
use std::path::Path;

use clap::CommandFactory;

use super::*;

/// The README section "Coming from docker build / podman build / kaniko", generated
/// from the table (between its markers).
fn readme_section() -> String {
    let mut out = String::from(README_INTRO);
    for (title, output_keys) in [("Flags", false), ("`-o` keys", true)] {
        out.push_str(&format!(
            "\n#### {title}\n\n| command | option | rbuild | |\n|---|---|---|---|\n"
        ));
        for row in rows().filter(|r| r.is_output_key() == output_keys) {
            let status = match row.status {
                Status::Supported => "yes".to_owned(),
                Status::Refused => "refused".to_owned(),
                Status::Later => format!("later ({})", row.evidence),
            };
            out.push_str(&format!(
                "| {} | `{}` | {status} | {} |\n",
                row.command,
                row.option,
                row.note.replace('|', "\\|")
            ));
        }
    }
    out
}

const README_INTRO: &str = "\
Change one word: `docker buildx build …`, `docker build …` and `podman build …` become \
`rbuild build …` (or `rbuild …`). Contexts (a directory, `-`, a git or http(s) URL), \
`Dockerfile`/`Containerfile` lookup, `.dockerignore`/`.containerignore` and the \
Dockerfile syntax are BuildKit's. Every flag below is honoured (a test covers it) or \
refused with the reason and what to use instead; none is accepted and ignored. \
Kaniko users: `--destination X` is `-t X --push`, `--context` is the positional \
context, `--dockerfile` is `-f`, `--cache=true` is rbuild's default (and `--no-cache` \
turns it off), `--tar-path` is `-o type=docker,dest=FILE`. This table is \
`testdata/cli-compat.tsv`; `cargo test --lib cli::compat` checks it against the CLI and \
the tests.
";

/// The README's markers around the generated section.
const README_BEGIN: &str = "<!-- cli-compat: generated from testdata/cli-compat.tsv -->";
const README_END: &str = "<!-- cli-compat: end -->";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The long (`--file`) and short (`-f`) flags clap knows for `rbuild build`.
fn build_flags() -> BTreeSet<String> {
    let args = crate::cli::Args::command();
    let build = args
        .get_subcommands()
        .find(|c| c.get_name() == "build")
        .expect("a build subcommand");
    let mut flags = BTreeSet::new();
    for arg in build.get_arguments().chain(args.get_arguments()) {
        for long in arg.get_long_and_visible_aliases().into_iter().flatten() {
            flags.insert(format!("--{long}"));
        }
        for short in arg.get_short_and_visible_aliases().into_iter().flatten() {
            flags.insert(format!("-{short}"));
        }
    }
    flags
}

#[test]
fn every_line_is_a_well_formed_row() {
    let lines = TABLE.lines().skip(1).count();
    assert_eq!(
        rows().count(),
        lines,
        "a line with a bad status or too few cells"
    );
    for line in TABLE.lines().skip(1) {
        assert_eq!(line.split('\t').count(), 5, "not 5 cells: {line:?}");
    }
    for row in rows() {
        assert!(!row.note.is_empty(), "{row:?} says nothing");
        if row.status != Status::Refused {
            assert!(!row.evidence.is_empty(), "{row:?} names no test or issue");
        }
    }
}

#[test]
fn supported_rows_name_tests_that_exist() {
    for row in rows().filter(|r| r.status == Status::Supported) {
        for evidence in row.evidence.split_whitespace() {
            let (file, test) = evidence
                .split_once("::")
                .map_or((evidence, None), |(f, t)| (f, Some(t)));
            let text = std::fs::read_to_string(repo().join(file))
                .unwrap_or_else(|e| panic!("{row:?}: cannot read {file}: {e}"));
            match test {
                Some(name) => assert!(
                    text.contains(&format!("fn {name}(")),
                    "{row:?}: no test {name} in {file}"
                ),
                None => assert!(text.contains("#[test]"), "{row:?}: {file} has no tests"),
            }
        }
    }
}

#[test]
fn the_table_agrees_with_the_build_command() {
    let known = build_flags();
    for row in rows().filter(|r| !r.is_output_key()) {
        for flag in row.spellings() {
            match row.status {
                Status::Supported => {
                    assert!(
                        known.contains(flag),
                        "{flag} is supported but unknown to clap"
                    )
                }
                _ => assert!(
                    !known.contains(flag),
                    "{flag} is {:?} in the table but rbuild accepts it",
                    row.status
                ),
            }
        }
    }
}

#[test]
fn refusals_name_the_flag_and_what_to_do() {
    let squash = refusal("--squash").unwrap();
    assert!(squash.starts_with("--squash (docker build) is not supported by rbuild: "));
    assert!(squash.contains("multi-stage"));
    let ttl = refusal("--cache-ttl=1h").unwrap();
    assert!(ttl.starts_with("--cache-ttl (podman build) is not supported yet"));
    assert!(ttl.contains("issue 17"), "{ttl}");
    assert!(refusal("-v").unwrap().contains("RUN --mount"));
    assert_eq!(refusal("--tag"), None, "supported flags are not refusals");
    assert_eq!(refusal("--no-such-flag"), None);
    assert_eq!(refusal("name"), None, "exporter keys are not flags");
}

#[test]
fn the_readme_holds_the_generated_section() {
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(README_BEGIN).expect("README begin marker") + README_BEGIN.len();
    let end = readme.find(README_END).expect("README end marker");
    let wanted = format!("\n{}\n", readme_section());
    if readme[start..end] != wanted && std::env::var_os("RBUILD_BLESS").is_some() {
        let updated = format!("{}{wanted}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        readme[start..end] == wanted,
        "README.md's compat section is stale: RBUILD_BLESS=1 cargo test --lib cli::compat"
    );
}
