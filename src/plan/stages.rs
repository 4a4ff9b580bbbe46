//! The stage graph: global `ARG`s, `FROM` resolution, the target, the stages it needs
//! and the order to build them in (dependencies first, cycles rejected).

use std::collections::{BTreeMap, BTreeSet};

use super::error::{PlanError, Result};
use super::{Platform, PlanOptions};
use crate::parser::instructions::{Dockerfile, Instruction};
use crate::parser::shell::{EnvList, Lex};
use crate::parser::Span;

/// What a `FROM` names, after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRef {
    Scratch,
    Stage(usize),
    Image(String),
}

/// The resolved stage graph.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Global build args (automatic platform args, then the ARGs before FROM).
    pub globals: EnvList,
    /// Values of the ARGs before FROM, for stage `ARG NAME` without default.
    pub meta_values: BTreeMap<String, Option<String>>,
    /// Per stage: its base.
    pub bases: Vec<BaseRef>,
    /// Per stage: its expanded `--platform`, if any.
    pub platforms: Vec<Option<String>>,
    /// Per stage: the stages it reads from.
    pub deps: Vec<BTreeSet<usize>>,
    pub target: usize,
    pub order: Vec<usize>,
}

/// Resolves the graph of `dockerfile`.
pub fn resolve(dockerfile: &Dockerfile, options: &PlanOptions, platform: &Platform) -> Result<Graph> {
    if dockerfile.stages.is_empty() {
        return Err(PlanError::NoStages);
    }
    let lex = Lex::new(dockerfile.escape);
    let (globals, meta_values) = global_args(dockerfile, options, platform, &lex)?;
    let names: BTreeMap<String, usize> = dockerfile
        .stages
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.name().map(|n| (n.to_owned(), i)))
        .collect();
    let mut bases = Vec::new();
    let mut platforms = Vec::new();
    for (i, stage) in dockerfile.stages.iter().enumerate() {
        let span = stage.from.span;
        let base = expand(&lex, &stage.from.base, &globals, "FROM", span)?;
        if base.is_empty() {
            return Err(PlanError::BlankBase { base: stage.from.base.clone(), span });
        }
        let lower = base.to_lowercase();
        let base = match names.get(&lower) {
            Some(&j) if j < i => BaseRef::Stage(j),
            _ if lower == "scratch" => BaseRef::Scratch,
            _ => match base.parse::<usize>() {
                Ok(j) if j < i => BaseRef::Stage(j),
                _ => BaseRef::Image(base),
            },
        };
        bases.push(base);
        let platform = match &stage.from.platform {
            Some(p) => Some(expand(&lex, p, &globals, "FROM --platform", span)?),
            None => None,
        };
        platforms.push(platform);
    }
    let deps = dependencies(dockerfile, &bases, &names, &globals, &lex)?;
    let target = match &options.target {
        None => dockerfile.stages.len() - 1,
        Some(t) => *names.get(&t.to_lowercase()).ok_or_else(|| PlanError::UnknownTarget { target: t.clone() })?,
    };
    let order = build_order(dockerfile, target, &deps)?;
    Ok(Graph { globals, meta_values, bases, platforms, deps, target, order })
}

fn expand(lex: &Lex, word: &str, env: &EnvList, what: &str, span: Span) -> Result<String> {
    lex.process_word(word, env).map_err(|source| PlanError::Expand { what: what.to_owned(), span, source })
}

/// The global scope: the automatic platform args, then each ARG before the first FROM
/// (its default expanded with what came before, overridden by `--build-arg`).
fn global_args(
    dockerfile: &Dockerfile,
    options: &PlanOptions,
    platform: &Platform,
    lex: &Lex,
) -> Result<(EnvList, BTreeMap<String, Option<String>>)> {
    let mut globals = EnvList::new();
    for (k, v) in platform.default_args() {
        globals.set(k, v);
    }
    let mut meta = BTreeMap::new();
    let span = dockerfile.stages.first().map(|s| s.from.span).unwrap_or_default();
    for arg in &dockerfile.meta_args {
        let mut value = match &arg.default {
            Some(d) => Some(expand(lex, d, &globals, &format!("ARG {}", arg.key), span)?),
            None => None,
        };
        if let Some(v) = options.build_args.get(&arg.key) {
            value = Some(v.clone());
        }
        if let Some(v) = &value {
            globals.set(arg.key.clone(), v.clone());
        }
        meta.insert(arg.key.clone(), value);
    }
    Ok((globals, meta))
}

/// Which stages each stage reads: its FROM stage, `COPY --from` and `RUN --mount from=`
/// naming a stage (by name, or by index for COPY).
fn dependencies(
    dockerfile: &Dockerfile,
    bases: &[BaseRef],
    names: &BTreeMap<String, usize>,
    globals: &EnvList,
    lex: &Lex,
) -> Result<Vec<BTreeSet<usize>>> {
    let mut all = Vec::new();
    for (i, stage) in dockerfile.stages.iter().enumerate() {
        let mut deps = BTreeSet::new();
        if let BaseRef::Stage(j) = bases[i] {
            deps.insert(j);
        }
        for cmd in &stage.commands {
            let froms: Vec<String> = match &cmd.instruction {
                Instruction::Copy(c) => c.from.iter().cloned().collect(),
                Instruction::Run(r) => r.mounts.iter().filter_map(|m| mount_from(m)).collect(),
                _ => continue,
            };
            for from in froms {
                let from = expand(lex, &from, globals, "--from", cmd.span)?;
                if let Some(j) = stage_by_ref(&from, names, dockerfile.stages.len()) {
                    deps.insert(j);
                }
            }
        }
        all.push(deps);
    }
    Ok(all)
}

/// The `from=` field of a `--mount` value, if any.
fn mount_from(mount: &str) -> Option<String> {
    mount.split(',').find_map(|field| field.trim().strip_prefix("from=").map(|v| v.trim_matches('"').to_owned()))
}

/// A stage named `reference` (case-insensitive) or numbered by it.
pub fn stage_by_ref(reference: &str, names: &BTreeMap<String, usize>, count: usize) -> Option<usize> {
    if let Some(&j) = names.get(&reference.to_lowercase()) {
        return Some(j);
    }
    reference.parse::<usize>().ok().filter(|&j| j < count)
}

/// Depth-first from the target: dependencies before dependents, a cycle is an error
/// naming the first stage found on it.
fn build_order(dockerfile: &Dockerfile, target: usize, deps: &[BTreeSet<usize>]) -> Result<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let mut marks = vec![Mark::New; deps.len()];
    let mut order = Vec::new();
    // Iterative DFS: (stage, next dependency position).
    let mut stack: Vec<(usize, usize)> = vec![(target, 0)];
    marks[target] = Mark::Visiting;
    while let Some(top) = stack.last_mut() {
        let node = top.0;
        let next = deps[node].iter().nth(top.1).copied();
        top.1 += 1;
        match next {
            None => {
                marks[node] = Mark::Done;
                order.push(node);
                stack.pop();
            }
            Some(dep) => match marks[dep] {
                Mark::Done => {}
                Mark::Visiting => {
                    let stage = stage_label(dockerfile, dep);
                    return Err(PlanError::Cycle { stage });
                }
                Mark::New => {
                    marks[dep] = Mark::Visiting;
                    stack.push((dep, 0));
                }
            },
        }
    }
    Ok(order)
}

fn stage_label(dockerfile: &Dockerfile, index: usize) -> String {
    dockerfile.stages.get(index).and_then(|s| s.name().map(str::to_owned)).unwrap_or_else(|| index.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::instructions::parse_text;

    fn graph(text: &str, target: Option<&str>) -> Result<Graph> {
        let df = parse_text(text).unwrap();
        let options = PlanOptions { target: target.map(str::to_owned), ..Default::default() };
        resolve(&df, &options, &Platform::host())
    }

    #[test]
    fn orders_dependencies_first_and_skips_unneeded() {
        let g = graph("FROM scratch AS a\nFROM scratch AS b\nFROM a AS c\nCOPY --from=b x y\nFROM scratch AS d\n", Some("C")).unwrap();
        assert_eq!(g.target, 2);
        assert_eq!(g.order, [0, 1, 2]);
    }

    #[test]
    fn detects_cycles() {
        let err = graph("FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n", None).unwrap_err();
        assert_eq!(err.to_string(), "circular dependency detected on stage: stage0");
    }

    #[test]
    fn expands_from_with_global_args() {
        let g = graph("ARG B=alpine\nARG T=${B}:3\nFROM $T\n", None).unwrap();
        assert_eq!(g.bases[0], BaseRef::Image("alpine:3".into()));
        assert!(matches!(graph("FROM ${BLANK} AS foo\n", None), Err(PlanError::BlankBase { .. })));
    }
}
