//! The one error type of the value parsers.
//!
//! Each variant carries the offending text as structured fields; its `Display` is BuildKit's
//! message for the same failure, word for word, so conformance tests and users see what
//! `docker build` prints. Messages therefore keep BuildKit's capitalisation (`Interval ...`)
//! where the house style would otherwise lowercase them.

use std::fmt;

use super::golang::quote;
use super::mount_type::MountType;

/// Result alias for the value parsers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A value that BuildKit would reject, with BuildKit's message as `Display`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An `EXPOSE` port spec that does not parse.
    #[error("invalid port: {}: {}", quote(.spec), .reason)]
    InvalidPort { spec: String, reason: PortError },

    /// Text that is not a Go duration.
    #[error("time: invalid duration {}", go_time_quote(.input))]
    InvalidDuration { input: String },
    /// A Go duration number without a unit (`"10"`).
    #[error("time: missing unit in duration {}", go_time_quote(.input))]
    MissingDurationUnit { input: String },
    /// A Go duration with a unit other than `ns us µs ms s m h`.
    #[error("time: unknown unit {} in duration {}", go_time_quote(.unit), go_time_quote(.input))]
    UnknownDurationUnit { unit: String, input: String },
    /// A `HEALTHCHECK` duration flag that is non-zero but below one millisecond.
    #[error("Interval {} cannot be less than 1ms", quote(.flag))]
    IntervalTooShort { flag: String },

    /// The CSV syntax of a `--mount` or `--device` value is broken.
    #[error("failed to parse csv {what}: {reason}")]
    Csv {
        /// `mounts` or `devices`, as in BuildKit's message.
        what: &'static str,
        reason: CsvError,
    },
    /// A bare word where a `key=value` field is required.
    #[error("invalid field '{field}' must be a key=value pair")]
    NotKeyValue { field: String },
    /// An unknown `key=value` key.
    #[error("unexpected key '{key}' in '{field}'{}", hint(.suggestion))]
    UnknownKey {
        key: String,
        field: String,
        suggestion: Option<String>,
    },
    /// A boolean or size value that does not parse.
    #[error("invalid value for {key}: {value}")]
    InvalidValue { key: String, value: String },

    /// A second device name in one `--device` value.
    #[error("device name already set to {name}")]
    DeviceNameAlreadySet { name: String },

    /// `type=` names no mount type.
    #[error("unsupported mount type {}{}", quote(.value), hint(.suggestion))]
    UnsupportedMountType {
        value: String,
        suggestion: Option<String>,
    },
    /// A key that the mount type (as set so far) does not take, e.g. `required` on a bind.
    #[error("unexpected key '{key}' for mount type '{mount_type}'")]
    KeyNotForMountType { key: String, mount_type: MountType },
    /// `sharing=` names no sharing mode.
    #[error("unsupported sharing value {}{}", quote(.value), hint(.suggestion))]
    UnsupportedSharing {
        value: String,
        suggestion: Option<String>,
    },
    /// `mode`, `uid` or `gid` is not a 32-bit number (octal for `mode`).
    #[error("invalid value {value} for {field}")]
    InvalidFileInfo { field: FileInfoField, value: String },
    /// `mode`, `uid` or `gid` on a bind or tmpfs mount.
    #[error("{field} not allowed for {} type mounts", quote(.mount_type.as_str()))]
    FileInfoNotAllowed {
        field: FileInfoField,
        mount_type: MountType,
    },
    /// `sharing=` on a mount other than a cache.
    #[error("invalid cache sharing set for {mount_type} mount")]
    SharingNotForMountType { mount_type: MountType },
    /// `from=` on a secret mount.
    #[error("secret mount should not have a from")]
    SecretWithFrom,
    /// `sharing=` on a secret mount.
    #[error("secret mount should not define sharing")]
    SecretWithSharing,
    /// A secret mount with none of `source`, `target`, `id`.
    #[error("invalid secret mount. one of source, target required")]
    SecretWithoutSource,
    /// A secret mount with both `source` and `id`.
    #[error("both source and id can't be set")]
    SecretSourceAndId,
    /// An ssh mount with `source=` (rejected when BuildKit dispatches the RUN).
    #[error("ssh does not support source")]
    SshWithSource,
    /// A bind, cache or tmpfs target that resolves to `/`.
    #[error("invalid mount target {}", quote(.target))]
    InvalidMountTarget { target: String },

    /// A git URL query key without a value (`?ref=`).
    #[error("query {} has no value", quote(.key))]
    GitQueryNoValue { key: String },
    /// A git URL query key given twice.
    #[error("query {} has multiple values", quote(.key))]
    GitQueryMultipleValues { key: String },
    /// Two different refs for one git URL (fragment, `ref`, `tag`, `branch`).
    #[error("ref conflicts: {} vs {}", quote(.first), quote(.second))]
    GitRefConflict { first: String, second: String },
    /// Two different subdirectories for one git URL (fragment and `subdir`).
    #[error("subdir conflicts: {} vs {}", quote(.first), quote(.second))]
    GitSubdirConflict { first: String, second: String },
    /// Both `tag` and `branch` in one git URL.
    #[error("branch conflicts with tag")]
    GitBranchAndTag,
    /// A git URL query value that does not parse (`mtime`, `fetch-by-commit`, ...).
    #[error("invalid {key} value: {}", quote(.value))]
    GitQueryValue { key: String, value: String },
    /// An unknown git URL query key.
    #[error("unexpected query {}", quote(.key))]
    GitUnexpectedQuery { key: String },

    /// `RUN --network=` names no network mode.
    #[error("invalid network mode {}", quote(.value))]
    InvalidNetwork { value: String },
    /// `RUN --security=` names no security mode.
    #[error("security {} is not valid", quote(.value))]
    InvalidSecurity { value: String },
}

/// Why an `EXPOSE` spec was rejected (the part after `invalid port: "<spec>": `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The container port is empty (`""`, `8080:`, `1.2.3.4:80:/tcp`).
    #[error("no port specified")]
    NoPort,
    /// The protocol after `/` is not tcp, udp or sctp (lowercased).
    #[error("invalid proto: {0}")]
    InvalidProto(String),
    /// The host part is not an IP address (hostnames are not allowed).
    #[error("invalid IP address: {0}")]
    InvalidIp(String),
    /// The container port or range does not parse.
    #[error("invalid containerPort: {0}")]
    InvalidContainerPort(String),
    /// The host port or range does not parse.
    #[error("invalid hostPort: {0}")]
    InvalidHostPort(String),
    /// Container and host ranges of different lengths.
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    RangeMismatch { container: String, host: String },
}

/// A CSV syntax error, worded as Go's `encoding/csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// Empty input.
    #[error("EOF")]
    Eof,
    /// A `"` inside an unquoted field (1-based byte column).
    #[error("parse error on line 1, column {column}: bare \" in non-quoted-field")]
    BareQuote { column: usize },
    /// An unterminated quoted field, or text after its closing quote.
    #[error("parse error on line 1, column {column}: extraneous or missing \" in quoted-field")]
    Quote { column: usize },
}

/// The file-ownership options of a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileInfoField {
    Mode,
    Uid,
    Gid,
}

impl fmt::Display for FileInfoField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileInfoField::Mode => "mode",
            FileInfoField::Uid => "uid",
            FileInfoField::Gid => "gid",
        })
    }
}

/// BuildKit's suggestion suffix, empty without a suggestion.
fn hint(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

/// The quoting of Go's `time` package errors: ASCII is kept (with `"` and `\` escaped),
/// every other byte and every control byte is written as `\xHH`.
fn go_time_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c.is_ascii() && c >= ' ' {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_buildkit() {
        let port = Error::InvalidPort {
            spec: String::new(),
            reason: PortError::NoPort,
        };
        assert_eq!(port.to_string(), r#"invalid port: "": no port specified"#);
        let unit = Error::UnknownDurationUnit {
            unit: "µ".to_owned(),
            input: "1µ".to_owned(),
        };
        assert_eq!(
            unit.to_string(),
            r#"time: unknown unit "\xc2\xb5" in duration "1\xc2\xb5""#
        );
        let key = Error::UnknownKey {
            key: "taget".to_owned(),
            field: "taget=/x".to_owned(),
            suggestion: Some("target".to_owned()),
        };
        assert_eq!(
            key.to_string(),
            "unexpected key 'taget' in 'taget=/x' (did you mean target?)"
        );
        let info = Error::FileInfoNotAllowed {
            field: FileInfoField::Uid,
            mount_type: MountType::Bind,
        };
        assert_eq!(
            info.to_string(),
            r#"uid not allowed for "bind" type mounts"#
        );
        let csv = Error::Csv {
            what: "mounts",
            reason: CsvError::Eof,
        };
        assert_eq!(csv.to_string(), "failed to parse csv mounts: EOF");
    }
}
