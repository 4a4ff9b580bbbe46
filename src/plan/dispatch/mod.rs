//! One stage, instruction by instruction: expands what BuildKit expands, tracks the
//! ENV/ARG/USER/WORKDIR/SHELL state, edits the image configuration and records a
//! [`Step`] for each instruction (BuildKit's `dispatch`).

use std::collections::BTreeMap;

mod meta;
mod steps;

use super::error::{PlanError, Result};
use super::stages::{BaseRef, Graph};
use super::{
    Base, BaseImage, BaseResolver, NamedContext, Op, PlanOptions, Platform, StagePlan, Step,
    StepState,
};
use crate::image::{Empty, History, ImageConfig};
use crate::parser::instructions::values::{self, redact_url_credentials};
use crate::parser::instructions::{parse_text, Command, Dockerfile, Instruction};
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
    let asked = graph.platforms[index].is_some() || options.platform.is_some();
    let from = From {
        platform: &platform,
        asked,
        span,
    };
    let (base, config) = stage_base(graph, index, &from, resolver, planned)?;
    let (steps, mut config) = if graph.replaced[index] {
        // BuildKit: the stage is the named context; its instructions never run.
        (Vec::new(), config)
    } else {
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
        (d.steps, d.config)
    };
    if index == graph.target {
        config.config.labels.extend(options.labels.clone());
    }
    Ok(StagePlan {
        index,
        name: stage.name().map(str::to_owned),
        from: from_text(dockerfile, &graph.bases[index]),
        base,
        platform,
        steps,
        config,
        deps: graph.deps[index].clone(),
        span,
    })
}

/// What a stage's `FROM` is planned with: its platform, whether the user asked for
/// it (then an image of another platform is refused), its line.
struct From<'p> {
    platform: &'p Platform,
    asked: bool,
    span: Span,
}

/// Where stage `index` starts and the configuration it starts with.
fn stage_base(
    graph: &Graph,
    index: usize,
    from: &From<'_>,
    resolver: &dyn BaseResolver,
    planned: &[Option<StagePlan>],
) -> Result<(Base, ImageConfig)> {
    let (platform, span) = (from.platform, from.span);
    Ok(match &graph.bases[index] {
        BaseRef::Scratch => (Base::Scratch, empty_image(platform)),
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
            let image = resolve_image(resolver, reference, platform, span)?;
            if from.asked {
                check_platform(&image, platform, span)?;
            }
            image_base(image)
        }
        BaseRef::Named(key) => {
            let named = load_named(resolver, key, platform, span)?;
            if let (NamedContext::Image(image), true) = (&named, from.asked) {
                check_platform(image, platform, span)?;
            }
            named_base(key, named, platform, graph.replaced[index])
        }
    })
}

/// A stage on `image`: its configuration, given the default `PATH` when it has none
/// (as BuildKit does; `docker import` makes such images).
fn image_base(image: BaseImage) -> (Base, ImageConfig) {
    let mut config = image.config.clone();
    if config.config.env_value("PATH").is_none() {
        config.config.set_env("PATH", DEFAULT_PATH);
    }
    (Base::Image(Box::new(image)), config)
}

/// A stage on the named context `key`; a stage the context `replaces` takes an image's
/// configuration as it is (BuildKit runs none of its own instructions, so no default
/// `PATH` either).
fn named_base(
    key: &str,
    named: NamedContext,
    platform: &Platform,
    replaces: bool,
) -> (Base, ImageConfig) {
    match named {
        NamedContext::Image(image) if replaces => {
            let config = image.config.clone();
            (Base::Image(image), config)
        }
        NamedContext::Image(image) => image_base(*image),
        NamedContext::Scratch => (Base::Scratch, empty_image(platform)),
        NamedContext::Tree { description } => {
            let mut config = empty_image(platform);
            // The tree's layer has no instruction: BuildKit's exporter describes it
            // by its source.
            config.history.push(History {
                created_by: description,
                comment: "buildkit.exporter.image.v0".to_owned(),
                ..Default::default()
            });
            (Base::Named(key.to_owned()), config)
        }
    }
}

/// Loads the named context `key`; the error names it.
pub(super) fn load_named(
    resolver: &dyn BaseResolver,
    key: &str,
    platform: &Platform,
    span: Span,
) -> Result<NamedContext> {
    resolver
        .named_context(key, platform)
        .map_err(|reason| PlanError::Named {
            name: key.to_owned(),
            reason,
            span,
        })
}

/// `FROM <what>` with the image reference expanded, or the stage's name (its index
/// when it has none), or the named context.
fn from_text(dockerfile: &Dockerfile, base: &BaseRef) -> String {
    match base {
        BaseRef::Scratch => "FROM scratch".to_owned(),
        BaseRef::Stage(j) => match dockerfile.stages.get(*j).and_then(|s| s.name()) {
            Some(name) => format!("FROM {name}"),
            None => format!("FROM {j}"),
        },
        BaseRef::Image(reference) | BaseRef::Named(reference) => format!("FROM {reference}"),
    }
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

/// A base image asked for with `--platform` (or `FROM --platform`) must be of that
/// platform: a registry or store that only has another one gives an error, never an
/// image of the wrong architecture named as the right one.
fn check_platform(image: &BaseImage, platform: &Platform, span: Span) -> Result<()> {
    let config = &image.config;
    let has = Platform::of_image(&config.os, &config.architecture, &config.variant);
    if platform.accepts(&has) {
        return Ok(());
    }
    Err(PlanError::Invalid {
        message: format!(
            "base image {} is {has}, not the {platform} asked for with --platform: it has no {platform} image",
            image.reference
        ),
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
            platform: platform.clone(),
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
        // ADD's URLs may carry credentials: progress and logs show them masked.
        let original = match &cmd.instruction {
            Instruction::Add(_) => redact_url_credentials(&cmd.original),
            _ => cmd.original.clone(),
        };
        self.steps.push(Step {
            span,
            original,
            op,
            state: state_before,
            history,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::plan::{plan, BaseError, NoNamedContext, Source};

    /// Named contexts `tree` (a directory), `img` (an image whose Env has no PATH) and
    /// `none` (`docker-image://scratch`); no other image.
    struct Named;
    impl BaseResolver for Named {
        fn resolve(&self, r: &str, _: &Platform) -> Result<BaseImage, BaseError> {
            Err(BaseError::new(NoNamedContext { key: r.into() }))
        }
        fn context_key(&self, name: &str) -> Option<String> {
            matches!(name, "tree" | "img" | "none").then(|| name.to_owned())
        }
        fn named_context(&self, key: &str, p: &Platform) -> Result<NamedContext, BaseError> {
            let mut config = empty_image(p);
            config.config.env = vec!["FOO=1".into()];
            Ok(match key {
                "tree" => NamedContext::Tree {
                    description: "local source for tree".into(),
                },
                "img" => NamedContext::Image(Box::new(BaseImage {
                    reference: "img".into(),
                    digest: Digest::of(b"img"),
                    config,
                })),
                _ => NamedContext::Scratch,
            })
        }
    }

    fn planned(text: &str, labels: &[(&str, &str)]) -> crate::plan::Plan {
        let df = parse_text(text).unwrap();
        let options = PlanOptions {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        plan(&df, &options, &Named).unwrap()
    }

    #[test]
    fn a_tree_base_is_a_layer_described_by_its_source() {
        let p = planned("FROM tree\nRUN true\n", &[]);
        let stage = p.target_stage().unwrap();
        assert_eq!(stage.base, Base::Named("tree".into()));
        let history = &stage.config.history;
        assert_eq!(history[0].created_by, "local source for tree");
        assert!(!history[0].empty_layer);
        assert_eq!(history.len(), 2);
        let p = planned("FROM none\n", &[]);
        assert_eq!(p.target_stage().unwrap().base, Base::Scratch);
    }

    #[test]
    fn a_replaced_stage_runs_nothing_and_keeps_the_image_config() {
        let p = planned("FROM scratch AS img\nRUN false\n", &[("l", "v")]);
        let stage = p.target_stage().unwrap();
        assert!(stage.steps.is_empty());
        assert!(matches!(stage.base, Base::Image(_)));
        assert_eq!(stage.config.config.env, ["FOO=1"], "no default PATH added");
        assert_eq!(
            stage.config.config.labels["l"], "v",
            "--label still applies"
        );
        let p = planned("FROM img\n", &[]);
        let env = &p.target_stage().unwrap().config.config.env;
        assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    }

    #[test]
    fn from_names_a_tree_or_an_image() {
        let p = planned(
            "FROM scratch\nCOPY --from=tree a /a\nCOPY --from=img b /b\n\
             RUN --mount=type=bind,from=tree,target=/m true\n",
            &[],
        );
        let stage = p.target_stage().unwrap();
        let source = |i: usize| match &stage.steps[i].op {
            Op::Copy(c) => c.source.clone(),
            Op::Run(r) => r.mounts[0].from.clone().unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(source(0), Source::Named("tree".into()));
        assert!(matches!(source(1), Source::Image(_)));
        assert_eq!(source(2), Source::Named("tree".into()));
    }
}
