//! The typed instructions: what each Dockerfile instruction says, before expansion.
//!
//! Values are kept as written (quotes and `$VAR` intact) where BuildKit expands them
//! later with the stage's `ARG`/`ENV` state; the plan expands them. Flags are parsed
//! and validated here.

use serde::Serialize;

use crate::parser::Span;

/// A `key=value` pair of `ENV` or `LABEL`, unexpanded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Legacy `ENV key value` form (no `=`).
    pub legacy: bool,
}

/// One name of an `ARG`, with its optional default (unexpanded) and doc comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDef {
    pub key: String,
    pub default: Option<String>,
    /// The text after `KEY ` on a comment line right above the instruction.
    pub doc_comment: String,
}

/// A command line of `RUN`, `CMD`, `ENTRYPOINT` or a heredoc-carrying `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    /// Shell form: one string run through `SHELL`; exec form: the argv.
    pub args: Vec<String>,
    /// Shell form (`true`) or JSON exec form (`false`).
    pub prepend_shell: bool,
    /// Heredoc files of a `RUN` (content verbatim; `chomp` strips leading tabs later).
    pub files: Vec<InlineFile>,
}

/// A heredoc used as a `RUN` script or file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineFile {
    pub name: String,
    pub data: String,
    pub chomp: bool,
    pub expand: bool,
}

/// A heredoc used as a `COPY`/`ADD` source: an inline file named after its delimiter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceContent {
    pub path: String,
    /// The body, tabs already stripped for `<<-`.
    pub data: String,
    pub expand: bool,
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopySpec {
    /// Source paths, URLs or patterns, unexpanded.
    pub sources: Vec<String>,
    /// Inline heredoc sources.
    pub contents: Vec<SourceContent>,
    /// Destination, unexpanded.
    pub dest: String,
    /// `--from` (COPY only): a stage name, index or image.
    pub from: Option<String>,
    /// The other flags, as written.
    #[serde(flatten)]
    pub options: CopyOptions,
}

/// The flags of `COPY`/`ADD` besides `--from`: as written in a [`CopySpec`], expanded in
/// the plan's `CopyOp` (one description of COPY for both).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyOptions {
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// `ADD --checksum`.
    pub checksum: Option<String>,
    /// `ADD --keep-git-dir` (`None`: not given; the URL's `?keep-git-dir=` decides).
    pub keep_git_dir: Option<bool>,
    /// `ADD --unpack` (`None`: BuildKit's default, unpack local archives only).
    pub unpack: Option<bool>,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSpec {
    pub command: CommandLine,
    /// `--mount` values, unexpanded.
    pub mounts: Vec<String>,
    /// `--network`.
    pub network: Option<String>,
    /// `--security`.
    pub security: Option<String>,
    /// `--device` values.
    pub devices: Vec<String>,
    /// Names of the flags given, sorted.
    pub flags_used: Vec<String>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthSpec {
    /// `["NONE"]`, `["CMD", argv...]` or `["CMD-SHELL", script]`.
    pub test: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<u32>,
}

/// One instruction inside a stage (FROM starts a stage and is not one of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Instruction {
    Env { pairs: Vec<KeyValue> },
    Label { pairs: Vec<KeyValue> },
    Maintainer { name: String },
    Add(CopySpec),
    Copy(CopySpec),
    Onbuild { expression: String },
    Workdir { path: String },
    Run(RunSpec),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Healthcheck(HealthSpec),
    Expose { ports: Vec<String> },
    User { user: String },
    Volume { paths: Vec<String> },
    Stopsignal { signal: String },
    Arg { args: Vec<ArgDef> },
    Shell { shell: Vec<String> },
}

impl Instruction {
    /// The keyword in upper case (`COPY`), as shown in history and progress.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::Env { .. } => "ENV",
            Instruction::Label { .. } => "LABEL",
            Instruction::Maintainer { .. } => "MAINTAINER",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Onbuild { .. } => "ONBUILD",
            Instruction::Workdir { .. } => "WORKDIR",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Expose { .. } => "EXPOSE",
            Instruction::User { .. } => "USER",
            Instruction::Volume { .. } => "VOLUME",
            Instruction::Stopsignal { .. } => "STOPSIGNAL",
            Instruction::Arg { .. } => "ARG",
            Instruction::Shell { .. } => "SHELL",
        }
    }
}

/// An instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    pub instruction: Instruction,
    /// The logical source line.
    pub original: String,
    pub span: Span,
}

/// A `FROM` line: the start of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    /// The base: an image reference, a stage name or index, or `scratch` (unexpanded).
    pub base: String,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    pub original: String,
    pub span: Span,
    /// The text after `NAME ` on a comment line right above `FROM`.
    pub doc_comment: String,
}
