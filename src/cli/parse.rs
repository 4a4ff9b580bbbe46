//! `rbuild parse`: print a Dockerfile's syntax tree as BuildKit's dump or as JSON.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::ValueEnum;

use crate::parser;

/// Output format of `rbuild parse`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// BuildKit's AST dump, one `(instruction ...)` line per instruction.
    Dump,
    /// A stable JSON tree with line and column positions.
    Json,
}

/// Arguments of `rbuild parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// The Dockerfile to read (`-` for standard input).
    #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
    file: PathBuf,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Format::Dump)]
    format: Format,
}

pub fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let (name, bytes) = read_input(&args.file)?;
    let text = String::from_utf8_lossy(&bytes);
    let ast =
        parser::parse_ast(&text).map_err(|e| anyhow!("{}", e.in_file(&name).render(&text)))?;
    let out = match args.format {
        Format::Dump => ast.dump(),
        Format::Json => {
            let dockerfile = parser::instructions::parse(&ast)
                .map_err(|e| anyhow!("{}", e.in_file(&name).render(&text)))?;
            let tree = serde_json::json!({ "ast": ast, "dockerfile": dockerfile });
            let mut s =
                serde_json::to_string_pretty(&tree).context("serializing the syntax tree")?;
            s.push('\n');
            s
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn read_input(path: &PathBuf) -> anyhow::Result<(String, Vec<u8>)> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the Dockerfile from stdin")?;
        return Ok(("Dockerfile".to_owned(), buf));
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read Dockerfile `{}`", path.display()))?;
    Ok((path.display().to_string(), bytes))
}
