//! The instructions that become steps: COPY/ADD (sources, `--from`, here-documents,
//! destination, git repository sources) and RUN (command line, `--mount`s, network,
//! security), with the history text BuildKit gives them.

use std::collections::BTreeMap;

use super::{load_named, no_stage_hint, resolve_image, Dispatcher};
use crate::parser::heredoc::{chomp_tabs, parse_heredoc};
use crate::parser::instructions::values::{self, MountType};
use crate::parser::instructions::{CommandLine, CopyOptions, CopySpec, RunSpec};
use crate::parser::shell::Lex;
use crate::parser::Span;
use crate::plan::error::{PlanError, Result};
use crate::plan::git::git_sources;
use crate::plan::history::copy_created_by;
use crate::plan::stages::stage_by_ref;
use crate::plan::{CopyOp, NamedContext, Op, RunMount, RunOp, Source};

impl Dispatcher<'_> {
    /// Shell form wrapped in `SHELL`; exec form as is.
    pub(super) fn with_shell(&self, line: &CommandLine) -> Vec<String> {
        if !line.prepend_shell {
            return line.args.clone();
        }
        let mut argv = self.state.shell.clone();
        argv.extend(line.args.iter().cloned());
        argv
    }

    pub(super) fn source(&self, from: Option<&str>, span: Span) -> Result<Source> {
        let Some(from) = from else {
            return Ok(Source::Context);
        };
        let from = self.expand(from, span, "--from")?;
        self.source_expanded(&from, span)
    }

    /// The stage or image an already expanded `--from` / `from=` names.
    pub(super) fn source_expanded(&self, from: &str, span: Span) -> Result<Source> {
        let names: BTreeMap<String, usize> = self
            .dockerfile
            .stages
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.name().map(|n| (n.to_owned(), i)))
            .collect();
        match stage_by_ref(from, &names, self.dockerfile.stages.len()) {
            Some(j) if self.planned.get(j).is_some_and(Option::is_some) => Ok(Source::Stage(j)),
            Some(j) => Err(PlanError::Invalid {
                message: format!("stage {from} ({j}) is not built before it is used"),
                span,
            }),
            None => {
                if let Some(key) = self.resolver.context_key(from) {
                    return self.named_source(key, span);
                }
                match resolve_image(self.resolver, from, &self.platform, span) {
                    Ok(image) => Ok(Source::Image(Box::new(image))),
                    Err(cause) => Err(no_stage_hint(from, &names, cause, span)),
                }
            }
        }
    }

    /// What a `--from` naming the named context `key` reads: its tree, or its image.
    fn named_source(&self, key: String, span: Span) -> Result<Source> {
        Ok(
            match load_named(self.resolver, &key, &self.platform, span)? {
                NamedContext::Image(image) => Source::Image(image),
                NamedContext::Tree { .. } | NamedContext::Scratch => Source::Named(key),
            },
        )
    }

    pub(super) fn copy(
        &mut self,
        spec: &CopySpec,
        is_add: bool,
        span: Span,
    ) -> Result<(Op, String, bool)> {
        let what = if is_add { "ADD" } else { "COPY" };
        let sources = spec
            .sources
            .iter()
            .map(|s| self.expand(s, span, what))
            .collect::<Result<Vec<_>>>()?;
        let raw = Lex {
            skip_process_quotes: true,
            ..Lex::new('\\')
        };
        let mut contents = Vec::new();
        for c in &spec.contents {
            let mut c = c.clone();
            if c.expand {
                c.data =
                    raw.process_word(&c.data, &self.env())
                        .map_err(|source| PlanError::Expand {
                            what: format!("{what} heredoc"),
                            span,
                            source,
                        })?;
            }
            contents.push(c);
        }
        let written_dest = self.expand(&spec.dest, span, what)?;
        let dest = absolute_dest(&written_dest, &self.state.workdir);
        let opt = |v: &Option<String>, w: &str| -> Result<Option<String>> {
            v.as_ref().map(|s| self.expand(s, span, w)).transpose()
        };
        let options = CopyOptions {
            chown: opt(&spec.options.chown, "--chown")?,
            chmod: opt(&spec.options.chmod, "--chmod")?,
            exclude: spec
                .options
                .exclude
                .iter()
                .map(|e| self.expand(e, span, "--exclude"))
                .collect::<Result<_>>()?,
            checksum: opt(&spec.options.checksum, "--checksum")?,
            ..spec.options.clone()
        };
        let op = CopyOp {
            is_add,
            source: self.source(spec.from.as_deref(), span)?,
            git: git_sources(&sources, &options, is_add, span)?,
            options,
            sources,
            contents,
            dest,
        };
        let created_by = copy_created_by(what, &op, &written_dest);
        Ok((Op::Copy(Box::new(op)), created_by, true))
    }

    pub(super) fn run(&mut self, spec: &RunSpec, span: Span) -> Result<(Op, String, bool)> {
        self.options.entitlements.check_run(
            spec.network.as_deref(),
            spec.security.as_deref(),
            span,
        )?;
        let mounts = spec
            .mounts
            .iter()
            .map(|m| self.run_mount(m, span))
            .collect::<Result<Vec<_>>>()?;
        let mut args = spec.command.args.clone();
        let mut files = spec.command.files.clone();
        if !files.is_empty() && spec.command.prepend_shell && args.len() == 1 {
            let first = files[0].clone();
            if matches!(parse_heredoc(&args[0]), Ok(Some(_))) {
                // `RUN <<EOF`: the body is the script, run by the shell.
                args = vec![if first.chomp {
                    chomp_tabs(&first.data)
                } else {
                    first.data.clone()
                }];
                files.remove(0);
            } else {
                // A more complex heredoc line: hand the whole text to the shell.
                let mut full = args[0].clone();
                for f in &files {
                    full.push('\n');
                    full.push_str(&f.data);
                    full.push_str(&f.name);
                }
                args = vec![full];
                files.clear();
            }
        }
        let line = CommandLine {
            args,
            prepend_shell: spec.command.prepend_shell,
            files: Vec::new(),
        };
        let argv = self.with_shell(&line);
        let args_text = if self.state.build_args.is_empty() {
            argv.join(" ")
        } else {
            let pairs: Vec<String> = self
                .state
                .build_args
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("|{} {} {}", pairs.len(), pairs.join(" "), argv.join(" "))
        };
        let op = RunOp {
            argv,
            files,
            mounts,
            network: spec.network.clone(),
            security: spec.security.clone(),
        };
        Ok((
            Op::Run(Box::new(op)),
            format!("RUN {args_text} # buildkit"),
            true,
        ))
    }

    /// Expands, parses and checks one `--mount`, resolving its `from=`.
    pub(super) fn run_mount(&self, value: &str, span: Span) -> Result<RunMount> {
        let value = self.expand(value, span, "--mount")?;
        let invalid = |e: values::Error| PlanError::Invalid {
            message: format!("invalid --mount {value}: {e}"),
            span,
        };
        let spec = values::parse_mount(&value).map_err(invalid)?;
        spec.check_dispatch().map_err(invalid)?;
        if matches!(
            spec.kind,
            MountType::Bind | MountType::Cache | MountType::Tmpfs
        ) {
            spec.resolve_target(&self.state.workdir).map_err(invalid)?;
        }
        let from = match (spec.kind, spec.from.as_deref()) {
            (MountType::Bind, None) => Some(Source::Context),
            (MountType::Bind | MountType::Cache, Some(from)) => {
                Some(self.source_expanded(from, span)?)
            }
            _ => None,
        };
        Ok(RunMount { spec, from })
    }
}

/// Lexical path cleaning (Go's `path.Clean`).
pub fn clean_path(path: &str) -> String {
    crate::parser::instructions::values::clean_path(path)
}

/// A COPY destination made absolute against `workdir`, trailing `/` kept (and added
/// for `.`-like destinations that name a directory).
pub(super) fn absolute_dest(dest: &str, workdir: &str) -> String {
    let dir_like = dest.ends_with('/')
        || dest == "."
        || dest.ends_with("/.")
        || dest == ".."
        || dest.ends_with("/..");
    let joined = if dest.starts_with('/') {
        dest.to_owned()
    } else {
        format!("{workdir}/{dest}")
    };
    let mut clean = clean_path(&joined);
    if dir_like && !clean.ends_with('/') {
        clean.push('/');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn destinations() {
        assert_eq!(absolute_dest("x", "/app"), "/app/x");
        assert_eq!(absolute_dest(".", "/app"), "/app/");
        assert_eq!(absolute_dest("/a/../b/", "/"), "/b/");
    }
}
