//! The stage graph: global `ARG`s, `FROM` resolution, the target, the stages it needs
//! and the order to build them in (dependencies first, cycles rejected).
//!
//! Named contexts (`--build-context NAME=...`) take part as in BuildKit's
//! `toDispatchState`: a stage whose name is a named context is replaced by it (its
//! instructions never run, so it reads no other stage); a `FROM` names an earlier
//! stage first, then `scratch`, then a named context, and only then an image.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{PlanError, Result};
use super::{BaseResolver, PlanOptions, Platform};
use crate::parser::instructions::{Dockerfile, Instruction};
use crate::parser::shell::{EnvList, Lex};
use crate::parser::Span;

/// What a `FROM` names, after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRef {
    Scratch,
    Stage(usize),
    Image(String),
    /// A named context, by key.
    Named(String),
}

/// The resolved stage graph.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Values of the ARGs before FROM, for stage `ARG NAME` without default.
    pub meta_values: BTreeMap<String, Option<String>>,
    /// Per stage: its base.
    pub bases: Vec<BaseRef>,
    /// Per stage: whether a named context replaces it (its base is then that
    /// context, and its instructions are not planned).
    pub replaced: Vec<bool>,
    /// Per stage: its expanded `--platform`, if any.
    pub platforms: Vec<Option<String>>,
    /// Per stage: the stages it reads from.
    pub deps: Vec<BTreeSet<usize>>,
    pub target: usize,
    pub order: Vec<usize>,
}

/// Resolves the graph of `dockerfile`.
pub fn resolve(
    dockerfile: &Dockerfile,
    options: &PlanOptions,
    platform: &Platform,
    resolver: &dyn BaseResolver,
) -> Result<Graph> {
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
    let mut replaced = Vec::new();
    let mut platforms = Vec::new();
    for (i, stage) in dockerfile.stages.iter().enumerate() {
        let span = stage.from.span;
        let base = expand(&lex, &stage.from.base, &globals, "FROM", span)?;
        if base.is_empty() {
            return Err(PlanError::BlankBase {
                base: stage.from.base.clone(),
                span,
            });
        }
        let replacement = stage.name().and_then(|n| resolver.context_key(n));
        replaced.push(replacement.is_some());
        let base = match replacement {
            Some(key) => BaseRef::Named(key),
            None => base_ref(&base, i, &names, resolver),
        };
        bases.push(base);
        let platform = match &stage.from.platform {
            Some(p) => Some(expand(&lex, p, &globals, "FROM --platform", span)?),
            None => None,
        };
        platforms.push(platform);
    }
    let mut deps = dependencies(dockerfile, &bases, &names, &globals, &lex)?;
    for (deps, _) in deps.iter_mut().zip(&replaced).filter(|(_, r)| **r) {
        deps.clear();
    }
    let target = match &options.target {
        None => dockerfile.stages.len() - 1,
        Some(t) => *names
            .get(&t.to_lowercase())
            .ok_or_else(|| PlanError::UnknownTarget { target: t.clone() })?,
    };
    detect_cycles(dockerfile, &deps)?;
    let order = build_order(target, &deps);
    Ok(Graph {
        meta_values,
        bases,
        replaced,
        platforms,
        deps,
        target,
        order,
    })
}

/// What the (expanded) `FROM` of stage `i` names: an earlier stage (by name or index),
/// `scratch`, a named context, else an image.
fn base_ref(
    base: &str,
    i: usize,
    names: &BTreeMap<String, usize>,
    resolver: &dyn BaseResolver,
) -> BaseRef {
    let lower = base.to_lowercase();
    match names.get(&lower) {
        Some(&j) if j < i => BaseRef::Stage(j),
        _ if lower == "scratch" => BaseRef::Scratch,
        _ => match base.parse::<usize>() {
            Ok(j) if j < i => BaseRef::Stage(j),
            _ => match resolver.context_key(base) {
                Some(key) => BaseRef::Named(key),
                None => BaseRef::Image(base.to_owned()),
            },
        },
    }
}

fn expand(lex: &Lex, word: &str, env: &EnvList, what: &str, span: Span) -> Result<String> {
    lex.process_word(word, env)
        .map_err(|source| PlanError::Expand {
            what: what.to_owned(),
            span,
            source,
        })
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
    let span = dockerfile
        .stages
        .first()
        .map(|s| s.from.span)
        .unwrap_or_default();
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
    mount.split(',').find_map(|field| {
        field
            .trim()
            .strip_prefix("from=")
            .map(|v| v.trim_matches('"').to_owned())
    })
}

/// A stage named `reference` (case-insensitive) or numbered by it.
pub fn stage_by_ref(
    reference: &str,
    names: &BTreeMap<String, usize>,
    count: usize,
) -> Option<usize> {
    if let Some(&j) = names.get(&reference.to_lowercase()) {
        return Some(j);
    }
    reference.parse::<usize>().ok().filter(|&j| j < count)
}

/// Rejects any cycle among all stages (needed or not), as BuildKit does: stages are
/// visited in file order and the error names the stage the failing visit started from.
fn detect_cycles(dockerfile: &Dockerfile, deps: &[BTreeSet<usize>]) -> Result<()> {
    let mut visited = vec![false; deps.len()];
    for root in 0..deps.len() {
        if visited[root] {
            continue;
        }
        let mut on_path = vec![false; deps.len()];
        // Iterative DFS: (stage, next dependency position).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        visited[root] = true;
        on_path[root] = true;
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            let next = deps[node].iter().nth(top.1).copied();
            top.1 += 1;
            match next {
                None => {
                    on_path[node] = false;
                    stack.pop();
                }
                Some(dep) if on_path[dep] => {
                    return Err(PlanError::Cycle {
                        stage: stage_label(dockerfile, root),
                    })
                }
                Some(dep) if !visited[dep] => {
                    visited[dep] = true;
                    on_path[dep] = true;
                    stack.push((dep, 0));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// The stages the target needs, dependencies before dependents (the graph is acyclic).
fn build_order(target: usize, deps: &[BTreeSet<usize>]) -> Vec<usize> {
    let mut done = vec![false; deps.len()];
    let mut order = Vec::new();
    let mut stack: Vec<(usize, usize)> = vec![(target, 0)];
    while let Some(top) = stack.last_mut() {
        let node = top.0;
        let next = deps[node].iter().nth(top.1).copied();
        top.1 += 1;
        match next {
            None => {
                if !done[node] {
                    done[node] = true;
                    order.push(node);
                }
                stack.pop();
            }
            Some(dep) if !done[dep] => stack.push((dep, 0)),
            Some(_) => {}
        }
    }
    order
}

fn stage_label(dockerfile: &Dockerfile, index: usize) -> String {
    dockerfile
        .stages
        .get(index)
        .and_then(|s| s.name().map(str::to_owned))
        .unwrap_or_else(|| index.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::instructions::parse_text;
    use crate::plan::BaseError;

    /// Knows no image; `ctx` and `prebuilt` are named contexts.
    struct Named;
    impl BaseResolver for Named {
        fn resolve(&self, r: &str, _: &Platform) -> Result<super::super::BaseImage, BaseError> {
            Err(BaseError::new(super::super::NoNamedContext {
                key: r.into(),
            }))
        }
        fn context_key(&self, name: &str) -> Option<String> {
            matches!(name, "ctx" | "prebuilt").then(|| name.to_owned())
        }
    }

    fn graph(text: &str, target: Option<&str>) -> Result<Graph> {
        let df = parse_text(text).unwrap();
        let options = PlanOptions {
            target: target.map(str::to_owned),
            ..Default::default()
        };
        resolve(&df, &options, &Platform::host(), &Named)
    }

    #[test]
    fn orders_dependencies_first_and_skips_unneeded() {
        let g = graph("FROM scratch AS a\nFROM scratch AS b\nFROM a AS c\nCOPY --from=b x y\nFROM scratch AS d\n", Some("C")).unwrap();
        assert_eq!(g.target, 2);
        assert_eq!(g.order, [0, 1, 2]);
    }

    #[test]
    fn detects_cycles() {
        let err = graph(
            "FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n",
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "circular dependency detected on stage: stage0"
        );
    }

    #[test]
    fn expands_from_with_global_args() {
        let g = graph("ARG B=alpine\nARG T=${B}:3\nFROM $T\n", None).unwrap();
        assert_eq!(g.bases[0], BaseRef::Image("alpine:3".into()));
        assert!(matches!(
            graph("FROM ${BLANK} AS foo\n", None),
            Err(PlanError::BlankBase { .. })
        ));
    }

    #[test]
    fn named_contexts_replace_stages_and_bases_after_earlier_stages() {
        let df = "FROM scratch AS ctx\nFROM scratch AS a\nFROM ctx AS b\n\
                  FROM busybox AS prebuilt\nCOPY --from=a x y\nFROM prebuilt\n";
        let g = graph(df, None).unwrap();
        assert_eq!(
            g.bases[0],
            BaseRef::Named("ctx".into()),
            "stage ctx replaced"
        );
        assert_eq!(g.bases[2], BaseRef::Stage(0), "an earlier stage wins");
        assert_eq!(g.bases[3], BaseRef::Named("prebuilt".into()));
        assert!(g.deps[3].is_empty(), "a replaced stage reads nothing");
        assert_eq!(g.replaced, [true, false, false, true, false]);
        assert_eq!(g.order, [3, 4], "stage a is not needed any more");
        let g = graph("FROM ctx\n", None).unwrap();
        assert_eq!(g.bases[0], BaseRef::Named("ctx".into()));
        assert!(!g.replaced[0]);
    }
}
