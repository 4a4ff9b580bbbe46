//! What a step's cache key contains (the encoding is `cache::KeyBuilder`'s).
//!
//! key(step) = hash(key(parent), inputs), with these inputs after expansion:
//!
//! | step | inputs |
//! |---|---|
//! | every filesystem step | `instruction` (the op, canonical), `option:*` (compression, `SOURCE_DATE_EPOCH`) |
//! | `RUN` | `env` (ENV without the build args), `arg:NAME` (each build arg in scope), `user`, `workdir`, `platform` (the stage's), `network`, `security`, `mount:N` (each mount's spec; a bind's source identity), heredoc files, `ulimit:NAME` and `shm-size` when given (as BuildKit; cgroup limits are not inputs) |
//! | `COPY`/`ADD` | `user` (for `--chown` names); from the context or a named context's tree `file:PATH` per selected entry (type, mode, content digest or link target, not mtimes); from a stage its key, from an image its digest (`source:...`); URLs by checksum or fetched content; git repositories by the commit their ref resolves to (`git:REMOTE#REF:SUBDIR`, credentials masked; `--keep-git-dir`, `?submodules=` and the rest are in the instruction) |
//! | `WORKDIR` | `user` (owner of a created directory) |
//!
//! The first step's parent is the stage's base: `scratch`, the base image's manifest
//! digest, the base stage's last key, or a named context's tree (`file:` inputs of the
//! whole tree, by content: never its name or where it is). Metadata steps (ENV, LABEL, ...) have no key
//! of their own: what they change that matters to later steps (ENV, USER, WORKDIR,
//! SHELL, ARG) is an input of those steps, so editing a LABEL misses nothing, as in
//! BuildKit. Secret values are never inputs (only a secret mount's id and target).

use super::{Base, CopyOp, GitSource, Op, RunMount, RunOp, Source, Step};
use crate::cache::{CacheKey, Inputs, KeyBuilder};
use crate::parser::instructions::values::{clean_path, redact_url_credentials, MountType};

/// What the executor supplies to key a step: content identities it has to read.
pub trait KeySources {
    type Error;
    /// `file:` inputs for what `op` reads from the build context, or from the named
    /// context's tree its source is ([`Source::Named`]).
    fn context_files(&self, op: &CopyOp) -> Result<Vec<(String, String)>, Self::Error>;
    /// `file:` inputs for the context subtree `rel` bound by a mount at `target`.
    fn context_tree(&self, rel: &str, target: &str) -> Result<Vec<(String, String)>, Self::Error>;
    /// `file:` inputs for the subtree `rel` of named context `name`, at `target`.
    fn named_tree(
        &self,
        name: &str,
        rel: &str,
        target: &str,
    ) -> Result<Vec<(String, String)>, Self::Error>;
    /// The last key of stage `index` (built or keyed before this step).
    fn stage_key(&self, index: usize) -> Result<CacheKey, Self::Error>;
    /// The content identity of an ADD URL without `--checksum`.
    fn url_identity(&self, url: &str) -> Result<String, Self::Error>;
    /// The commit an ADD git source resolves to (its ref looked up on the remote,
    /// nothing cloned).
    fn git_commit(&self, source: &GitSource) -> Result<String, Self::Error>;
}

/// A step's key and the inputs that made it (for explanations).
pub type KeyedStep = (CacheKey, Inputs);

/// Build-wide options that change what a step produces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// Layer compression and level, e.g. `gzip-6`.
    pub compression: String,
    /// `SOURCE_DATE_EPOCH`, if any.
    pub epoch: Option<i64>,
    /// `--network` for RUN steps that do not say.
    pub network: Option<String>,
    /// Inputs of every RUN step from build-wide flags that change what it sees:
    /// `ulimit:NAME` per `--ulimit`, `shm-size` unless the default.
    pub run: Vec<(String, String)>,
}

/// The key a stage starts from.
pub fn base_key<S: KeySources>(base: &Base, sources: &S) -> Result<CacheKey, S::Error> {
    match base {
        Base::Stage(j) => sources.stage_key(*j),
        Base::Scratch => Ok(only("base", "scratch")),
        Base::Image(image) => Ok(only("base", &image.digest.to_string())),
        Base::Named(name) => {
            let mut b = KeyBuilder::new(None);
            b.input("base", "context");
            for (name, value) in sources.named_tree(name, "", "/")? {
                b.input(&name, &value);
            }
            Ok(b.finish().0)
        }
    }
}

fn only(name: &str, value: &str) -> CacheKey {
    let mut b = KeyBuilder::new(None);
    b.input(name, value);
    b.finish().0
}

/// The key of `step` below `parent` and its inputs; `None` for a metadata step.
pub fn step_key<S: KeySources>(
    parent: &CacheKey,
    step: &Step,
    options: &KeyOptions,
    sources: &S,
) -> Result<Option<KeyedStep>, S::Error> {
    let mut b = KeyBuilder::new(Some(parent));
    match &step.op {
        Op::Meta => return Ok(None),
        Op::Workdir { path } => {
            b.input("instruction", &format!("WORKDIR {path}"));
            b.input("user", &step.state.user);
        }
        Op::Run(run) => run_inputs(&mut b, run, step, options, sources)?,
        Op::Copy(copy) => copy_inputs(&mut b, copy, step, sources)?,
    }
    b.input("option:compression", &options.compression);
    if let Some(epoch) = options.epoch {
        b.input("option:SOURCE_DATE_EPOCH", &epoch.to_string());
    }
    Ok(Some(b.finish()))
}

fn run_inputs<S: KeySources>(
    b: &mut KeyBuilder,
    run: &RunOp,
    step: &Step,
    options: &KeyOptions,
    sources: &S,
) -> Result<(), S::Error> {
    let state = &step.state;
    b.input("instruction", &format!("RUN {:?}", run.argv));
    let is_arg = |entry: &String| {
        let key = entry.split('=').next().unwrap_or_default();
        state.build_args.iter().any(|(k, _)| k == key)
    };
    let env: Vec<&String> = state.env.iter().filter(|e| !is_arg(e)).collect();
    b.list("env", &env.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    for (name, value) in &state.build_args {
        b.input(&format!("arg:{name}"), value);
    }
    b.input("user", &state.user);
    b.input("workdir", &state.workdir);
    b.input("platform", &state.platform.to_string());
    let network = run
        .network
        .as_deref()
        .or(options.network.as_deref())
        .unwrap_or("default");
    b.input("network", network);
    if let Some(security) = &run.security {
        b.input("security", security);
    }
    for (name, value) in &options.run {
        b.input(name, value);
    }
    for (i, file) in run.files.iter().enumerate() {
        b.input(&format!("heredoc:{i}"), &format!("{file:?}"));
    }
    for (i, mount) in run.mounts.iter().enumerate() {
        mount_inputs(b, i, mount, &state.workdir, sources)?;
    }
    Ok(())
}

fn mount_inputs<S: KeySources>(
    b: &mut KeyBuilder,
    index: usize,
    mount: &RunMount,
    workdir: &str,
    sources: &S,
) -> Result<(), S::Error> {
    let spec = &mount.spec;
    // The spec as written (secret values are never part of it).
    b.input(&format!("mount:{index}"), &format!("{spec:?}"));
    let target = spec.resolve_target(workdir).unwrap_or_default();
    match (&spec.kind, &mount.from) {
        (MountType::Bind, Some(tree @ (Source::Context | Source::Named(_)))) => {
            // `..` cannot climb above the context root (as the mount itself does).
            let source = spec.source.as_deref().unwrap_or_default();
            let cleaned = clean_path(&format!("/{source}"));
            let rel = cleaned.trim_start_matches('/');
            let inputs = match tree {
                Source::Named(name) => sources.named_tree(name, rel, &target)?,
                _ => sources.context_tree(rel, &target)?,
            };
            for (name, value) in inputs {
                b.input(&name, &value);
            }
        }
        (MountType::Bind | MountType::Cache, Some(from)) => {
            let identity = source_identity(from, sources)?;
            b.input(&format!("source:mount {index}"), &identity);
        }
        _ => {}
    }
    Ok(())
}

fn copy_inputs<S: KeySources>(
    b: &mut KeyBuilder,
    copy: &CopyOp,
    step: &Step,
    sources: &S,
) -> Result<(), S::Error> {
    let what = if copy.is_add { "ADD" } else { "COPY" };
    let flags = (
        &copy.sources,
        &copy.contents,
        &copy.dest,
        &copy.options.chown,
        &copy.options.chmod,
        copy.options.link,
        copy.options.parents,
        &copy.options.exclude,
        &copy.options.checksum,
        copy.options.keep_git_dir.unwrap_or(false),
        copy.options.unpack,
    );
    // Credentials are not content: keep them out of the inputs the logs store.
    b.input(
        "instruction",
        &redact_url_credentials(&format!("{what} {flags:?}")),
    );
    b.input("user", &step.state.user);
    b.input("workdir", &step.state.workdir);
    match &copy.source {
        Source::Context | Source::Named(_) => {
            let files = sources.context_files(copy)?;
            b.reserve(files.len());
            for (name, value) in files {
                b.input_owned(name, value);
            }
        }
        other => {
            let identity = source_identity(other, sources)?;
            b.input("source:--from", &identity);
        }
    }
    for git in &copy.git {
        b.input(&format!("git:{}", git.display()), &sources.git_commit(git)?);
    }
    if copy.is_add && copy.options.checksum.is_none() {
        let downloads = copy.sources.iter().filter(|s| is_url(s));
        for url in downloads.filter(|s| copy.git_source(s).is_none()) {
            let name = format!("url:{}", redact_url_credentials(url));
            b.input(&name, &sources.url_identity(url)?);
        }
    }
    Ok(())
}

fn source_identity<S: KeySources>(source: &Source, sources: &S) -> Result<String, S::Error> {
    Ok(match source {
        Source::Context => "context".to_owned(),
        Source::Stage(j) => format!("stage {}", sources.stage_key(*j)?),
        Source::Image(image) => format!("image {}", image.digest),
        // Only a cache mount's seed gets here: it seeds a new cache once, as the
        // context does.
        Source::Named(name) => format!("context {name}"),
    })
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::parser::instructions::parse_text;
    use crate::plan::{plan, BaseError, BaseImage, BaseResolver, PlanOptions, Platform};

    struct NoImages;
    impl BaseResolver for NoImages {
        fn resolve(&self, r: &str, _: &Platform) -> Result<BaseImage, BaseError> {
            Err(BaseError::new(std::io::Error::other(format!(
                "{r} not found"
            ))))
        }
    }

    /// Context files whose content is the path name plus a version.
    struct Fake {
        version: u32,
    }
    impl KeySources for Fake {
        type Error = String;
        fn context_files(&self, op: &CopyOp) -> Result<Vec<(String, String)>, String> {
            Ok(op
                .sources
                .iter()
                .filter(|s| op.git_source(s).is_none())
                .map(|s| (format!("file:{s}"), format!("f 644 - v{}", self.version)))
                .collect())
        }
        fn context_tree(&self, rel: &str, target: &str) -> Result<Vec<(String, String)>, String> {
            Ok(vec![(
                format!("file:{target}/{rel}"),
                format!("v{}", self.version),
            )])
        }
        fn named_tree(
            &self,
            name: &str,
            rel: &str,
            t: &str,
        ) -> Result<Vec<(String, String)>, String> {
            Ok(vec![(
                format!("file:{t}/{rel}"),
                format!("{name} v{}", self.version),
            )])
        }
        fn stage_key(&self, index: usize) -> Result<CacheKey, String> {
            Ok(Digest::of(format!("stage {index}").as_bytes()))
        }
        fn url_identity(&self, url: &str) -> Result<String, String> {
            Ok(url.to_owned())
        }
        fn git_commit(&self, source: &GitSource) -> Result<String, String> {
            Ok(format!("{}@v{}", source.display(), self.version))
        }
    }

    /// The keys of the last stage's steps (None for metadata steps).
    fn keys(dockerfile: &str, args: &[(&str, &str)], version: u32) -> Vec<Option<CacheKey>> {
        let df = parse_text(dockerfile).unwrap();
        let options = PlanOptions {
            build_args: args
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        let p = plan(&df, &options, &NoImages).unwrap();
        let stage = p.target_stage().unwrap();
        let sources = Fake { version };
        let mut parent = base_key(&stage.base, &sources).unwrap();
        let mut out = Vec::new();
        for step in &stage.steps {
            let key = step_key(&parent, step, &KeyOptions::default(), &sources)
                .unwrap()
                .map(|(k, _)| k);
            if let Some(k) = key {
                parent = k;
            }
            out.push(key);
        }
        out
    }

    #[test]
    fn an_arg_only_touches_the_steps_that_see_it() {
        let df = "FROM scratch\nCOPY a /a\nRUN true\nARG V\nRUN echo $V\n";
        let one = keys(df, &[("V", "1")], 1);
        let two = keys(df, &[("V", "2")], 1);
        assert_eq!(one[0], two[0], "COPY before the ARG");
        assert_eq!(one[1], two[1], "RUN before the ARG");
        assert_eq!(one[2], None, "ARG is a metadata step");
        assert_ne!(one[3], two[3], "RUN that sees V");
    }

    #[test]
    fn a_run_is_keyed_by_its_platform_and_a_copy_is_not() {
        let df = |p: &str| format!("FROM --platform={p} scratch\nCOPY a /a\nRUN true\n");
        let arm = keys(&df("linux/arm64"), &[], 1);
        let amd = keys(&df("linux/amd64"), &[], 1);
        assert_eq!(arm[0], amd[0], "the same bytes copied");
        assert_ne!(arm[1], amd[1], "a RUN on another platform");
        assert_eq!(arm, keys(&df("linux/aarch64"), &[], 1), "normalized");
    }

    #[test]
    fn content_changes_miss_from_that_copy_on_and_labels_miss_nothing() {
        let df = "FROM scratch\nRUN true\nCOPY a /a\nLABEL x=1\nRUN true\n";
        let v1 = keys(df, &[], 1);
        let v2 = keys(df, &[], 2);
        assert_eq!(v1[0], v2[0]);
        assert_ne!(v1[1], v2[1]);
        assert_ne!(v1[3], v2[3], "parent changed");
        let labelled = keys(&df.replace("x=1", "x=2"), &[], 1);
        assert_eq!(v1[3], labelled[3], "a LABEL edit keeps later steps");
    }

    #[test]
    fn instruction_env_user_and_options_are_inputs() {
        let base = keys("FROM scratch\nRUN a\n", &[], 1)[0];
        assert_ne!(base, keys("FROM scratch\nRUN b\n", &[], 1)[0]);
        assert_ne!(base, keys("FROM scratch\nENV X=1\nRUN a\n", &[], 1)[1]);
        assert_ne!(base, keys("FROM scratch\nUSER app\nRUN a\n", &[], 1)[1]);
        assert_ne!(
            base,
            keys("FROM scratch\nRUN --network=none a\n", &[], 1)[0]
        );
        let df = parse_text("FROM scratch\nRUN a\n").unwrap();
        let p = plan(&df, &PlanOptions::default(), &NoImages).unwrap();
        let stage = p.target_stage().unwrap();
        let parent = base_key(&stage.base, &Fake { version: 1 }).unwrap();
        let key = |o: &KeyOptions| {
            step_key(&parent, &stage.steps[0], o, &Fake { version: 1 })
                .unwrap()
                .unwrap()
                .0
        };
        let gzip = KeyOptions {
            compression: "gzip-6".into(),
            ..Default::default()
        };
        let zstd = KeyOptions {
            compression: "zstd-3".into(),
            ..Default::default()
        };
        assert_ne!(key(&gzip), key(&zstd));
        let ulimit = KeyOptions {
            compression: "gzip-6".into(),
            run: vec![("ulimit:nofile".into(), "100:100".into())],
            ..Default::default()
        };
        assert_ne!(key(&gzip), key(&ulimit));
    }

    #[test]
    fn a_git_source_keys_by_its_commit_and_never_by_credentials() {
        let df = "FROM scratch\nADD https://u:pw@h/r.git#main /src\n";
        assert_ne!(keys(df, &[], 1), keys(df, &[], 2), "a new commit misses");
        let other_password = df.replace("u:pw", "u:other");
        assert_eq!(keys(df, &[], 1), keys(&other_password, &[], 1));
        let p = plan(&parse_text(df).unwrap(), &PlanOptions::default(), &NoImages).unwrap();
        let stage = p.target_stage().unwrap();
        let sources = Fake { version: 1 };
        let parent = base_key(&stage.base, &sources).unwrap();
        let (_, inputs) = step_key(&parent, &stage.steps[0], &KeyOptions::default(), &sources)
            .unwrap()
            .unwrap();
        let text = format!("{inputs:?}");
        assert!(!text.contains("pw"), "{text}");
        assert!(text.contains("git:https://u:xxxxx@h/r.git#main"), "{text}");
        assert!(
            !text.contains("\"url:"),
            "a git URL is not downloaded: {text}"
        );
    }

    #[test]
    fn secret_mounts_key_by_id_only() {
        let df = "FROM scratch\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\n";
        assert_eq!(keys(df, &[], 1), keys(df, &[], 1));
        let bind = "FROM scratch\nRUN --mount=type=bind,source=src,target=/s ls /s\n";
        assert_ne!(
            keys(bind, &[], 1),
            keys(bind, &[], 2),
            "bound content is an input"
        );
    }

    #[test]
    fn a_named_tree_base_is_keyed_by_its_content() {
        let base = Base::Named("src".into());
        let v1 = base_key(&base, &Fake { version: 1 }).unwrap();
        assert_eq!(v1, base_key(&base, &Fake { version: 1 }).unwrap());
        assert_ne!(v1, base_key(&base, &Fake { version: 2 }).unwrap());
        assert_ne!(v1, base_key(&Base::Scratch, &Fake { version: 1 }).unwrap());
    }
}
