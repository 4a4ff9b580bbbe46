//! Reading JSON the way Go's `encoding/json` writes and reads it: Docker, containerd,
//! BuildKit and Buildah write `null` for an empty slice or map (`docker import` gives
//! `"Env":null,"Cmd":null,"Volumes":null,...`), and Go reads `null` into any field as
//! "leave it at its zero value". These helpers give serde the same reading, so every
//! field that may be absent may also be `null`.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

/// A field whose `null` means its default (`#[serde(default, deserialize_with = ...)]`).
pub(crate) fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A list of strings in which Go would read a `null` element as `""`: nulls dropped
/// (an empty `Env` or `OnBuild` entry means nothing), and a `null` list is empty.
pub(crate) fn strings<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let list = Option::<Vec<Option<String>>>::deserialize(d)?.unwrap_or_default();
    Ok(list.into_iter().flatten().collect())
}

/// Like [`strings`] for an optional list (`Cmd`, `Entrypoint`): `null` stays `None`,
/// `null` elements become `""` (an argument, so it is kept, as Go keeps it).
pub(crate) fn opt_strings<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    let list = Option::<Vec<Option<String>>>::deserialize(d)?;
    Ok(list.map(|l| l.into_iter().map(Option::unwrap_or_default).collect()))
}

/// A string map (`Labels`, `annotations`) whose `null` values read as `""`.
pub(crate) fn string_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let map = Option::<BTreeMap<String, Option<String>>>::deserialize(d)?.unwrap_or_default();
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// Any JSON value, read and discarded (the `{}` values of `ExposedPorts` and `Volumes`,
/// which Go reads into `struct{}` whatever they hold).
pub(crate) fn ignore<'de, D>(d: D) -> Result<(), D::Error>
where
    D: Deserializer<'de>,
{
    IgnoredAny::deserialize(d).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    struct Probe {
        #[serde(default, deserialize_with = "or_default")]
        n: u32,
        #[serde(default, deserialize_with = "strings")]
        env: Vec<String>,
        #[serde(default, deserialize_with = "opt_strings")]
        cmd: Option<Vec<String>>,
        #[serde(default, deserialize_with = "string_map")]
        labels: BTreeMap<String, String>,
    }

    #[test]
    fn nulls_read_as_go_reads_them() {
        let p: Probe =
            serde_json::from_str(r#"{"n":null,"env":null,"cmd":null,"labels":null}"#).unwrap();
        assert_eq!(p, Probe::default());
        let p: Probe = serde_json::from_str(
            r#"{"n":3,"env":["A=1",null],"cmd":["sh",null],"labels":{"a":null,"b":"2"}}"#,
        )
        .unwrap();
        assert_eq!(p.n, 3);
        assert_eq!(p.env, ["A=1"]);
        assert_eq!(p.cmd.unwrap(), ["sh", ""]);
        assert_eq!(p.labels["a"], "");
        assert_eq!(p.labels["b"], "2");
        let p: Probe = serde_json::from_str("{}").unwrap();
        assert_eq!(p, Probe::default());
    }

    #[test]
    fn wrong_types_are_still_errors() {
        let err = serde_json::from_str::<Probe>(r#"{"env":"A=1"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
