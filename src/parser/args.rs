//! How each instruction's argument text becomes argument values (BuildKit's line
//! parsers): JSON arrays, maybe-JSON, whitespace lists, name=value pairs, HEALTHCHECK
//! and ONBUILD.

use super::error::ErrorKind;
use super::words::{parse_words, split_fields, split_once_fields};

/// Parsed arguments of one instruction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// Argument values in order.
    pub values: Vec<String>,
    /// Whether they came from a JSON array.
    pub json: bool,
}

impl Args {
    fn plain(values: Vec<String>) -> Self {
        Args {
            values,
            json: false,
        }
    }
}

/// How an instruction splits its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `RUN CMD ENTRYPOINT SHELL`: a JSON array or the text verbatim.
    MaybeJson,
    /// `ADD COPY VOLUME`: a JSON array or whitespace-separated words.
    MaybeJsonList,
    /// `FROM EXPOSE`: whitespace-separated words.
    Fields,
    /// `MAINTAINER USER WORKDIR STOPSIGNAL`: the text verbatim.
    Text,
    /// `ARG`: quote-keeping words.
    Words,
    /// `ENV LABEL`: name=value pairs (or the legacy `name value`).
    NameValue,
    /// `HEALTHCHECK`: a type word then maybe-JSON.
    Healthcheck,
    /// `ONBUILD`: a nested instruction.
    SubCommand,
    /// An unknown instruction: one empty value.
    Unknown,
}

/// The argument shape of instruction `name` (lowercase).
pub fn shape_of(name: &str) -> Shape {
    match name {
        "run" | "cmd" | "entrypoint" | "shell" => Shape::MaybeJson,
        "add" | "copy" | "volume" => Shape::MaybeJsonList,
        "from" | "expose" => Shape::Fields,
        "maintainer" | "user" | "workdir" | "stopsignal" => Shape::Text,
        "arg" => Shape::Words,
        "env" | "label" => Shape::NameValue,
        "healthcheck" => Shape::Healthcheck,
        "onbuild" => Shape::SubCommand,
        _ => Shape::Unknown,
    }
}

/// Parses `rest` (flags removed, trimmed) for an instruction of the given shape and
/// keyword. [`Shape::SubCommand`] is handled by the caller.
pub fn parse_args(
    shape: Shape,
    keyword: &str,
    rest: &str,
    escape: char,
) -> Result<Args, ErrorKind> {
    match shape {
        Shape::MaybeJson => maybe_json(rest),
        Shape::MaybeJsonList => maybe_json_list(rest),
        Shape::Fields => Ok(Args::plain(split_fields(rest))),
        Shape::Text | Shape::SubCommand => Ok(Args::plain(if rest.is_empty() {
            vec![]
        } else {
            vec![rest.to_owned()]
        })),
        Shape::Words => Ok(Args::plain(parse_words(rest, escape))),
        Shape::NameValue => {
            name_values(&keyword.to_ascii_uppercase(), rest, escape).map(Args::plain)
        }
        Shape::Healthcheck => healthcheck(rest),
        Shape::Unknown => Ok(Args::plain(vec![String::new()])),
    }
}

/// Outcome of reading text as a JSON array of strings.
pub enum Json {
    /// A JSON array of strings.
    Strings(Vec<String>),
    /// Valid JSON array holding a value that is not a string: an error for the caller.
    NotStrings,
    /// Not a JSON array: the text is taken another way.
    NotJson,
}

/// Reads `text` (leading whitespace allowed) as a JSON array of strings.
pub fn parse_json_array(text: &str) -> Json {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return Json::NotJson;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(text) {
        Err(_) => Json::NotJson,
        Ok(values) => {
            let strings: Option<Vec<String>> = values
                .into_iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect();
            strings.map_or(Json::NotStrings, Json::Strings)
        }
    }
}

fn maybe_json(rest: &str) -> Result<Args, ErrorKind> {
    if rest.is_empty() {
        return Ok(Args::default());
    }
    match parse_json_array(rest) {
        Json::Strings(values) => Ok(Args { values, json: true }),
        Json::NotStrings => Err(ErrorKind::NotStringArray),
        Json::NotJson => Ok(Args::plain(vec![rest.to_owned()])),
    }
}

fn maybe_json_list(rest: &str) -> Result<Args, ErrorKind> {
    match parse_json_array(rest) {
        Json::Strings(values) => Ok(Args { values, json: true }),
        Json::NotStrings => Err(ErrorKind::NotStringArray),
        Json::NotJson => Ok(Args::plain(split_fields(rest.trim()))),
    }
}

/// `ENV`/`LABEL` pairs: `[k1, v1, "=", k2, v2, "=", ...]`, or `[name, value, ""]` for
/// the legacy `KEY name value` form.
fn name_values(keyword: &str, rest: &str, escape: char) -> Result<Vec<String>, ErrorKind> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(vec![]);
    };
    if !first.contains('=') {
        let (name, value) = split_once_fields(rest);
        let Some(value) = value else {
            return Err(ErrorKind::MissingValue {
                keyword: keyword.to_owned(),
            });
        };
        return Ok(vec![name.to_owned(), value.to_owned(), String::new()]);
    }
    let mut out = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(ErrorKind::MissingEquals { word });
        };
        out.extend([key.to_owned(), value.to_owned(), "=".to_owned()]);
    }
    Ok(out)
}

fn healthcheck(rest: &str) -> Result<Args, ErrorKind> {
    // Byte-wise scan, as BuildKit does: the type word ends at the first space byte.
    let bytes = rest.as_bytes();
    let sep = bytes
        .iter()
        .position(|&b| (b as char).is_whitespace())
        .unwrap_or(bytes.len());
    if sep == 0 {
        return Ok(Args::default());
    }
    let next = bytes[sep..]
        .iter()
        .position(|&b| !(b as char).is_whitespace())
        .map_or(bytes.len(), |p| sep + p);
    let kind = String::from_utf8_lossy(&bytes[..sep]).into_owned();
    let cmd = maybe_json(&String::from_utf8_lossy(&bytes[next..]))?;
    let mut values = vec![kind];
    values.extend(cmd.values);
    Ok(Args {
        values,
        json: cmd.json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_value_forms() {
        let nv = |s| name_values("ENV", s, '\\');
        assert_eq!(nv("a b c").unwrap(), ["a", "b c", ""]);
        assert_eq!(
            nv("a=1 b=\"x y\"").unwrap(),
            ["a", "1", "=", "b", "\"x y\"", "="]
        );
        assert_eq!(
            nv("a").unwrap_err().to_string(),
            "ENV must have two arguments"
        );
        assert!(nv("a=1 b")
            .unwrap_err()
            .to_string()
            .contains(r#"can't find = in "b""#));
    }

    #[test]
    fn json_forms() {
        assert_eq!(
            maybe_json("[\"a\", \"b\"]").unwrap(),
            Args {
                values: vec!["a".into(), "b".into()],
                json: true
            }
        );
        assert_eq!(maybe_json("[\"a\"").unwrap().values, ["[\"a\""]);
        assert!(matches!(maybe_json("[1]"), Err(ErrorKind::NotStringArray)));
        assert_eq!(maybe_json_list("a  b").unwrap().values, ["a", "b"]);
    }

    #[test]
    fn healthcheck_splits_type() {
        assert_eq!(healthcheck("CMD a b").unwrap().values, ["CMD", "a b"]);
        assert_eq!(healthcheck("NONE").unwrap().values, ["NONE"]);
    }
}
