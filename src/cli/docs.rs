//! `rbuild completion SHELL` and `rbuild man`: shell completions and manual pages,
//! generated from the clap definitions so they never drift from the flags.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use super::Args;

/// Arguments of `rbuild completion`.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell: `bash` (source it, or put it in
    /// `/usr/share/bash-completion/completions/rbuild`), `zsh` (as `_rbuild` in
    /// `$fpath`), `fish`, `elvish` or `powershell`.
    shell: clap_complete::Shell,
}

/// Arguments of `rbuild man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write `rbuild.1` and one page per subcommand (`rbuild-build.1`, ...) into this
    /// directory instead of printing `rbuild.1`.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// `rbuild completion SHELL`: the completion script on stdout.
pub fn run_completion(args: &CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Args::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "rbuild", &mut out);
    super::store_cmds::print(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::SUCCESS)
}

/// `rbuild man [--dir DIR]`.
pub fn run_man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = Args::command();
    match &args.dir {
        None => super::store_cmds::print(&String::from_utf8_lossy(&page(&cmd)?))?,
        Some(dir) => write_pages(&cmd, dir)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The roff page of `cmd`.
fn page(cmd: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .context("rendering the manual page")?;
    Ok(out)
}

/// `rbuild.1` and `rbuild-SUB.1` for each subcommand, into `dir`.
fn write_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write("rbuild", page(cmd)?)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("rbuild-{}", sub.get_name());
        write(&name, page(&sub.clone().name(name.clone()))?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_pages_name_every_subcommand_and_flag() {
        let mut cmd = Args::command();
        let mut bash = Vec::new();
        clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "rbuild", &mut bash);
        let bash = String::from_utf8(bash).unwrap();
        assert!(bash.contains("--build-arg-file") && bash.contains("history"));
        let dir = tempfile::tempdir().unwrap();
        write_pages(&Args::command(), dir.path()).unwrap();
        let build = std::fs::read_to_string(dir.path().join("rbuild-build.1")).unwrap();
        assert!(
            build.starts_with(".ie") || build.contains(".TH rbuild-build"),
            "{build}"
        );
        assert!(build.contains("ignorefile"));
        assert!(dir.path().join("rbuild.1").is_file());
    }
}
