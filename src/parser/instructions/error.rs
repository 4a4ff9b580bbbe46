//! Errors of the typed instruction layer, worded as BuildKit words them, and the kind the
//! layer reports: its own errors or the untyped layer's below it.

use crate::parser::{ErrorKind, Located, ParseError};

/// An error of the typed layer ([`super::parse`], [`super::parse_text`]), with its location.
pub type DockerfileError = Located<DockerfileErrorKind>;

/// What the typed layer reports: a syntax error of the untyped layer, or an invalid
/// instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerfileErrorKind {
    #[error(transparent)]
    Syntax(#[from] ErrorKind),
    #[error("{0}")]
    Instruction(#[from] InstructionError),
}

impl From<ParseError> for DockerfileError {
    fn from(e: ParseError) -> Self {
        e.map_kind(DockerfileErrorKind::Syntax)
    }
}

/// Why an instruction (or the instruction list) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstructionError {
    #[error("unknown instruction: {keyword}")]
    UnknownInstruction { keyword: String },
    #[error("{keyword} requires exactly one argument")]
    ExactlyOneArgument { keyword: &'static str },
    #[error("{keyword} requires at least one argument")]
    AtLeastOneArgument { keyword: &'static str },
    #[error("{keyword} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination { keyword: &'static str },
    #[error("Bad input to {keyword}, too many arguments")]
    TooManyArguments { keyword: &'static str },
    #[error("{keyword} names can not be blank")]
    BlankName { keyword: &'static str },
    #[error("{keyword} cannot accept a heredoc as {role}")]
    BadHeredoc {
        keyword: &'static str,
        role: &'static str,
    },
    #[error("{keyword} requires the arguments to be in JSON form")]
    NotJson { keyword: &'static str },
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error("invalid name for build stage: {}, name can't start with a number or contain symbols", crate::parser::quote::go_quote(.name))]
    InvalidStageName { name: String },
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChained,
    #[error("{trigger} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger { trigger: String },
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArgs,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCmd,
    #[error("Unknown type {} in HEALTHCHECK (try CMD)", crate::parser::quote::go_quote(.kind))]
    HealthcheckType { kind: String },
    #[error("--retries cannot be negative ({value})")]
    NegativeRetries { value: i64 },
    #[error("invalid --retries value {}: not an integer", crate::parser::quote::go_quote(.value))]
    BadRetries { value: String },
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("source can't be a URL for COPY")]
    CopyFromUrl,
    #[error("no build stage in current context")]
    NoStage,
    #[error("arg should start with -- : {word}")]
    FlagWithoutDashes { word: String },
    #[error("unknown flag: --{flag}{}", .suggestion.as_ref().map(|s| format!(" (did you mean --{s}?)")).unwrap_or_default())]
    UnknownFlag {
        flag: String,
        suggestion: Option<String>,
    },
    #[error("duplicate flag specified: {flag}")]
    DuplicateFlag { flag: String },
    #[error("missing a value on flag: {flag}")]
    MissingFlagValue { flag: String },
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    BadBool { flag: String, value: String },
}
