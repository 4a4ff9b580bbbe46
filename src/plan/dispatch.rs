//! One stage, instruction by instruction: expands what BuildKit expands, tracks the
//! ENV/ARG/USER/WORKDIR/SHELL state, edits the image configuration and records a
//! [`Step`] for each instruction (BuildKit's `dispatch`).

use std::collections::BTreeMap;

use super::error::{PlanError, Result};
use super::stages::{stage_by_ref, BaseRef, Graph};
use super::{
    Base, BaseImage, BaseResolver, CopyOp, Op, PlanOptions, Platform, RunMount, RunOp, Source,
    StagePlan, Step, StepState,
};
use crate::image::{add_env, Empty, Healthcheck, History, ImageConfig};
use crate::parser::heredoc::{chomp_tabs, parse_heredoc};
use crate::parser::instructions::values::{self, MountType};
use crate::parser::instructions::{
    parse_text, ArgDef, Command, CommandLine, CopySpec, Dockerfile, HealthSpec, Instruction,
    KeyValue, RunSpec,
};
use crate::parser::quote::go_quote_list;
use crate::parser::shell::{EnvList, Lex};
use crate::parser::Span;

/// The `PATH` BuildKit gives images that have none (Linux).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Plans stage `index`; every stage it depends on is already in `planned`.
pub fn dispatch(
    dockerfile: &Dockerfile,
    graph: &Graph,
    index: usize,
    options: &PlanOptions,
    platform: &Platform,
    resolver: &dyn BaseResolver,
    planned: &[Option<StagePlan>],
) -> Result<StagePlan> {
    let stage = &dockerfile.stages[index];
    let span = stage.from.span;
    let platform = match &graph.platforms[index] {
        Some(p) => p.parse::<Platform>().map_err(|e| PlanError::Invalid {
            message: e.to_string(),
            span,
        })?,
        None => platform.clone(),
    };
    let (base, config) = match &graph.bases[index] {
        BaseRef::Scratch => (Base::Scratch, empty_image(&platform)),
        BaseRef::Stage(j) => {
            let parent =
                planned
                    .get(*j)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| PlanError::Invalid {
                        message: format!("stage {j} is used before it is planned"),
                        span,
                    })?;
            (Base::Stage(*j), parent.config.clone())
        }
        BaseRef::Image(reference) => {
            let image = resolve_image(resolver, reference, &platform, span)?;
            let mut config = image.config.clone();
            // BuildKit gives an image without PATH (`docker import` makes such images)
            // the default one.
            if config.config.env_value("PATH").is_none() {
                config.config.set_env("PATH", DEFAULT_PATH);
            }
            (Base::Image(Box::new(image)), config)
        }
    };
    let mut d = Dispatcher::new(
        dockerfile,
        graph,
        options,
        resolver,
        planned,
        platform.clone(),
        config,
    );
    d.run_onbuild_triggers(span)?;
    for cmd in &stage.commands {
        d.dispatch(cmd)?;
    }
    if index == graph.target {
        d.config.config.labels.extend(options.labels.clone());
    }
    Ok(StagePlan {
        index,
        name: stage.name().map(str::to_owned),
        base,
        platform,
        steps: d.steps,
        config: d.config,
        deps: graph.deps[index].clone(),
        span,
    })
}

fn resolve_image(
    resolver: &dyn BaseResolver,
    reference: &str,
    platform: &Platform,
    span: Span,
) -> Result<BaseImage> {
    resolver
        .resolve(reference, platform)
        .map_err(|reason| PlanError::Base {
            reference: reference.to_owned(),
            reason,
            span,
        })
}

/// `cause`, the failure to resolve `from` as an image, with a "did you mean" hint
/// when a stage has a similar name (`--from=bulid` for stage `build`).
fn no_stage_hint(
    from: &str,
    names: &BTreeMap<String, usize>,
    cause: PlanError,
    span: Span,
) -> PlanError {
    let names: Vec<&str> = names.keys().map(String::as_str).collect();
    match values::closest(&from.to_lowercase(), &names) {
        Some(suggestion) => PlanError::NoStage {
            name: from.to_owned(),
            suggestion,
            cause: Box::new(cause),
            span,
        },
        None => cause,
    }
}

/// The configuration of `FROM scratch`: default `PATH`, working directory `/`.
pub fn empty_image(platform: &Platform) -> ImageConfig {
    let mut config = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        ..Default::default()
    };
    config.config.env = vec![format!("PATH={DEFAULT_PATH}")];
    config.config.working_dir = "/".to_owned();
    config
}

struct Dispatcher<'a> {
    dockerfile: &'a Dockerfile,
    graph: &'a Graph,
    options: &'a PlanOptions,
    resolver: &'a dyn BaseResolver,
    planned: &'a [Option<StagePlan>],
    platform: Platform,
    lex: Lex,
    config: ImageConfig,
    state: StepState,
    cmd_set: bool,
    steps: Vec<Step>,
}

impl<'a> Dispatcher<'a> {
    fn new(
        dockerfile: &'a Dockerfile,
        graph: &'a Graph,
        options: &'a PlanOptions,
        resolver: &'a dyn BaseResolver,
        planned: &'a [Option<StagePlan>],
        platform: Platform,
        config: ImageConfig,
    ) -> Self {
        let state = StepState {
            env: config.config.env.clone(),
            build_args: Vec::new(),
            user: config.config.user.clone(),
            workdir: if config.config.working_dir.is_empty() {
                "/".into()
            } else {
                config.config.working_dir.clone()
            },
            shell: if config.config.shell.is_empty() {
                vec!["/bin/sh".into(), "-c".into()]
            } else {
                config.config.shell.clone()
            },
        };
        Dispatcher {
            dockerfile,
            graph,
            options,
            resolver,
            planned,
            platform,
            lex: Lex::new(dockerfile.escape),
            config,
            state,
            cmd_set: false,
            steps: Vec::new(),
        }
    }

    /// Runs the base's `ONBUILD` triggers first, then clears them (BuildKit semantics).
    fn run_onbuild_triggers(&mut self, span: Span) -> Result<()> {
        let triggers = std::mem::take(&mut self.config.config.on_build);
        for trigger in triggers {
            let parsed = parse_text(&format!("FROM scratch\n{trigger}\n")).map_err(|e| {
                PlanError::Invalid {
                    message: format!("invalid ONBUILD trigger {trigger:?}: {}", e.kind),
                    span,
                }
            })?;
            for stage in parsed.stages {
                for mut cmd in stage.commands {
                    cmd.span = span;
                    self.dispatch(&cmd)?;
                }
            }
        }
        Ok(())
    }

    fn env(&self) -> EnvList {
        EnvList::from_slice(&self.state.env)
    }

    fn expand(&self, word: &str, span: Span, what: &str) -> Result<String> {
        self.lex
            .process_word(word, &self.env())
            .map_err(|source| PlanError::Expand {
                what: what.to_owned(),
                span,
                source,
            })
    }

    fn dispatch(&mut self, cmd: &Command) -> Result<()> {
        let span = cmd.span;
        let state_before = self.state.clone();
        let (op, created_by, layer) = match &cmd.instruction {
            Instruction::Env { pairs } => (Op::Meta, self.env_cmd(pairs, span)?, false),
            Instruction::Label { pairs } => (Op::Meta, self.label(pairs, span)?, false),
            Instruction::Maintainer { name } => {
                self.config.author = name.clone();
                (Op::Meta, format!("MAINTAINER {name}"), false)
            }
            Instruction::Workdir { path } => {
                let path = self.workdir(path, span)?;
                (
                    Op::Workdir { path: path.clone() },
                    format!("WORKDIR {path}"),
                    true,
                )
            }
            Instruction::Add(spec) => self.copy(spec, true, span)?,
            Instruction::Copy(spec) => self.copy(spec, false, span)?,
            Instruction::Run(spec) => self.run(spec, span)?,
            Instruction::Cmd(line) => {
                let argv = self.with_shell(line);
                self.config.config.cmd = Some(argv.clone());
                // Set by BuildKit for every CMD (Docker's image spec reads it).
                self.config.config.args_escaped = true;
                self.cmd_set = true;
                (Op::Meta, format!("CMD {}", go_quote_list(&argv)), false)
            }
            Instruction::Entrypoint(line) => {
                let argv = self.with_shell(line);
                self.config.config.entrypoint = if argv.is_empty() {
                    None
                } else {
                    Some(argv.clone())
                };
                if !self.cmd_set {
                    self.config.config.cmd = None;
                }
                (
                    Op::Meta,
                    format!("ENTRYPOINT {}", go_quote_list(&argv)),
                    false,
                )
            }
            Instruction::Healthcheck(h) => (Op::Meta, self.healthcheck(h, span)?, false),
            Instruction::Expose { ports } => (Op::Meta, self.expose(ports, span)?, false),
            Instruction::User { user } => {
                let user = self.expand(user, span, "USER")?;
                self.config.config.user = user.clone();
                self.state.user = user.clone();
                (Op::Meta, format!("USER {user}"), false)
            }
            Instruction::Volume { paths } => {
                let mut expanded = Vec::new();
                for p in paths {
                    let p = self.expand(p, span, "VOLUME")?;
                    if p.is_empty() {
                        return Err(PlanError::Invalid {
                            message: "VOLUME specified can not be an empty string".into(),
                            span,
                        });
                    }
                    self.config.config.volumes.insert(p.clone(), Empty {});
                    expanded.push(p);
                }
                (Op::Meta, format!("VOLUME [{}]", expanded.join(" ")), false)
            }
            Instruction::Stopsignal { signal } => {
                let signal = self.expand(signal, span, "STOPSIGNAL")?;
                self.config.config.stop_signal = signal.clone();
                (Op::Meta, format!("STOPSIGNAL {signal}"), false)
            }
            Instruction::Arg { args } => (Op::Meta, self.arg(args, span)?, false),
            Instruction::Shell { shell } => {
                self.config.config.shell = shell.clone();
                self.state.shell = shell.clone();
                (Op::Meta, format!("SHELL [{}]", shell.join(" ")), false)
            }
            Instruction::Onbuild { expression } => {
                self.config.config.on_build.push(expression.clone());
                (Op::Meta, format!("ONBUILD {expression}"), false)
            }
        };
        let history = History {
            created_by,
            empty_layer: !layer,
            ..Default::default()
        };
        self.config.history.push(history.clone());
        self.steps.push(Step {
            span,
            original: cmd.original.clone(),
            op,
            state: state_before,
            history,
        });
        Ok(())
    }

    fn key_values(
        &self,
        pairs: &[KeyValue],
        span: Span,
        what: &str,
    ) -> Result<Vec<(String, String)>> {
        pairs
            .iter()
            .map(|kv| {
                Ok((
                    self.expand(&kv.key, span, what)?,
                    self.expand(&kv.value, span, what)?,
                ))
            })
            .collect()
    }

    fn env_cmd(&mut self, pairs: &[KeyValue], span: Span) -> Result<String> {
        let pairs = self.key_values(pairs, span, "ENV")?;
        let mut text = String::from("ENV");
        for (k, v) in pairs {
            add_env(&mut self.config.config.env, &k, &v);
            add_env(&mut self.state.env, &k, &v);
            text.push_str(&format!(" {k}={v}"));
        }
        Ok(text)
    }

    fn label(&mut self, pairs: &[KeyValue], span: Span) -> Result<String> {
        let pairs = self.key_values(pairs, span, "LABEL")?;
        let mut text = String::from("LABEL");
        for (k, v) in pairs {
            text.push_str(&format!(" {k}={v}"));
            self.config.config.labels.insert(k, v);
        }
        Ok(text)
    }

    fn workdir(&mut self, path: &str, span: Span) -> Result<String> {
        let path = self.expand(path, span, "WORKDIR")?;
        let joined = if path.starts_with('/') {
            path
        } else {
            format!("{}/{path}", self.state.workdir)
        };
        let clean = clean_path(&joined);
        self.config.config.working_dir = clean.clone();
        self.state.workdir = clean.clone();
        Ok(clean)
    }

    fn arg(&mut self, args: &[ArgDef], span: Span) -> Result<String> {
        let mut parts = Vec::new();
        for arg in args {
            let key = self.expand(&arg.key, span, "ARG")?;
            let mut value = match self.options.build_args.get(&key) {
                Some(v) => Some(v.clone()),
                None => match &arg.default {
                    Some(d) => Some(self.expand(d, span, "ARG")?),
                    None => self
                        .graph
                        .meta_values
                        .get(&key)
                        .cloned()
                        .flatten()
                        .or_else(|| self.automatic_arg(&key)),
                },
            };
            if let Some(v) = value.take() {
                add_env(&mut self.state.env, &key, &v);
                self.state.build_args.retain(|(k, _)| k != &key);
                self.state.build_args.push((key.clone(), v.clone()));
                parts.push(format!("{key}={v}"));
            } else {
                parts.push(key);
            }
        }
        Ok(format!("ARG {}", parts.join(" ")))
    }

    fn automatic_arg(&self, key: &str) -> Option<String> {
        self.platform
            .default_args()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Shell form wrapped in `SHELL`; exec form as is.
    fn with_shell(&self, line: &CommandLine) -> Vec<String> {
        if !line.prepend_shell {
            return line.args.clone();
        }
        let mut argv = self.state.shell.clone();
        argv.extend(line.args.iter().cloned());
        argv
    }

    fn source(&self, from: Option<&str>, span: Span) -> Result<Source> {
        let Some(from) = from else {
            return Ok(Source::Context);
        };
        let from = self.expand(from, span, "--from")?;
        self.source_expanded(&from, span)
    }

    /// The stage or image an already expanded `--from` / `from=` names.
    fn source_expanded(&self, from: &str, span: Span) -> Result<Source> {
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
            None => match resolve_image(self.resolver, from, &self.platform, span) {
                Ok(image) => Ok(Source::Image(Box::new(image))),
                Err(cause) => Err(no_stage_hint(from, &names, cause, span)),
            },
        }
    }

    fn copy(&mut self, spec: &CopySpec, is_add: bool, span: Span) -> Result<(Op, String, bool)> {
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
        let op = CopyOp {
            is_add,
            source: self.source(spec.from.as_deref(), span)?,
            chown: opt(&spec.chown, "--chown")?,
            chmod: opt(&spec.chmod, "--chmod")?,
            exclude: spec
                .exclude
                .iter()
                .map(|e| self.expand(e, span, "--exclude"))
                .collect::<Result<_>>()?,
            checksum: opt(&spec.checksum, "--checksum")?,
            link: spec.link,
            parents: spec.parents,
            keep_git_dir: spec.keep_git_dir,
            unpack: spec.unpack,
            sources,
            contents,
            dest,
        };
        let created_by = copy_created_by(what, &op, &written_dest);
        Ok((Op::Copy(Box::new(op)), created_by, true))
    }

    fn run(&mut self, spec: &RunSpec, span: Span) -> Result<(Op, String, bool)> {
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
    fn run_mount(&self, value: &str, span: Span) -> Result<RunMount> {
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

    fn healthcheck(&mut self, h: &HealthSpec, span: Span) -> Result<String> {
        let ns =
            |v: &Option<String>, flag: &str| -> Result<i64> {
                match v {
                    None => Ok(0),
                    Some(text) => crate::parser::instructions::parse_duration_flag(flag, text)
                        .map_err(|e| PlanError::Invalid {
                            message: e.to_string(),
                            span,
                        }),
                }
            };
        let check = Healthcheck {
            test: h.test.clone(),
            interval: ns(&h.interval, "interval")?,
            timeout: ns(&h.timeout, "timeout")?,
            start_period: ns(&h.start_period, "start-period")?,
            start_interval: ns(&h.start_interval, "start-interval")?,
            retries: i64::from(h.retries.unwrap_or(0)),
        };
        let text = healthcheck_created_by(&check);
        self.config.config.healthcheck = Some(check);
        Ok(text)
    }

    fn expose(&mut self, ports: &[String], span: Span) -> Result<String> {
        let mut specs = Vec::new();
        for p in ports {
            let words =
                self.lex
                    .process_words(p, &self.env())
                    .map_err(|source| PlanError::Expand {
                        what: "EXPOSE".into(),
                        span,
                        source,
                    })?;
            specs.extend(words);
        }
        let keys =
            crate::parser::instructions::expose_keys(&specs).map_err(|e| PlanError::Invalid {
                message: e.to_string(),
                span,
            })?;
        for k in &keys {
            self.config.config.exposed_ports.insert(k.clone(), Empty {});
        }
        let listed: Vec<String> = keys.iter().map(|k| format!("{k}:{{}}")).collect();
        Ok(format!("EXPOSE map[{}]", listed.join(" ")))
    }
}

/// The history text of a HEALTHCHECK as current BuildKit writes it (Go's `%+v` of the
/// settings; BuildKit's own `TestDispatchHealthcheckHistory` vector, in the conformance
/// corpus). Older BuildKit (Docker 20.10's) printed Go's `%q` of the struct instead,
/// `&{["CMD-SHELL" "…"] "30s" "0s" "0s" '\x03'}`; history text is informational only.
pub fn healthcheck_created_by(check: &Healthcheck) -> String {
    format!(
        "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        check.test.join(" "),
        go_duration(check.interval),
        go_duration(check.timeout),
        go_duration(check.start_period),
        go_duration(check.start_interval),
        check.retries
    )
}

/// The history text of a COPY or ADD as BuildKit writes it: the expanded sources, each
/// here-document as `<<NAME`, then the destination as written (expanded, not made
/// absolute): `COPY a b ./ # buildkit`.
fn copy_created_by(what: &str, op: &CopyOp, written_dest: &str) -> String {
    let mut text = what.to_owned();
    for source in &op.sources {
        text.push(' ');
        text.push_str(source);
    }
    for content in &op.contents {
        text.push_str(" <<");
        text.push_str(&content.path);
    }
    format!("{text} {written_dest} # buildkit")
}

/// Go's `time.Duration.String()` for history text.
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let (sign, ns) = if ns < 0 {
        ("-", ns.unsigned_abs())
    } else {
        ("", ns as u64)
    };
    if ns < 1_000 {
        return format!("{sign}{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{sign}{}µs", trim_float(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{sign}{}ms", trim_float(ns as f64 / 1e6));
    }
    let secs = ns as f64 / 1e9;
    let (h, rem) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
    let (m, rem) = (rem / 60_000_000_000, rem % 60_000_000_000);
    let s = trim_float(rem as f64 / 1e9);
    match (h, m) {
        (0, 0) => format!("{sign}{}s", trim_float(secs)),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Lexical path cleaning (Go's `path.Clean`).
pub fn clean_path(path: &str) -> String {
    crate::parser::instructions::values::clean_path(path)
}

/// A COPY destination made absolute against `workdir`, trailing `/` kept (and added
/// for `.`-like destinations that name a directory).
fn absolute_dest(dest: &str, workdir: &str) -> String {
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
    fn durations_print_like_go() {
        assert_eq!(go_duration(1_000_000_000), "1s");
        assert_eq!(go_duration(100_000_000), "100ms");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
    }

    #[test]
    fn destinations() {
        assert_eq!(absolute_dest("x", "/app"), "/app/x");
        assert_eq!(absolute_dest(".", "/app"), "/app/");
        assert_eq!(absolute_dest("/a/../b/", "/"), "/b/");
    }
}
