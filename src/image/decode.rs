//! Parsing image JSON (configs, manifests, indexes) with errors that name the field.

use serde::de::DeserializeOwned;

/// Why a JSON document cannot be read as the type asked for: serde's message and, when
/// it is known, the path of the field it failed on (`config.Env`, `layers[2].size`).
#[derive(Debug, thiserror::Error)]
#[error("{}{source}", field_text(.field))]
pub struct JsonError {
    /// The path of the failing field; empty for the document as a whole.
    pub field: String,
    /// What serde said.
    #[source]
    pub source: serde_json::Error,
}

fn field_text(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

/// Parses `bytes` as `T`, naming the failing field on error.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        JsonError {
            field: if field == "." { String::new() } else { field },
            source: e.into_inner(),
        }
    })?;
    de.end().map_err(|source| JsonError {
        field: String::new(),
        source,
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageConfig, Manifest};

    #[test]
    fn errors_name_the_field() {
        let err = decode_json::<ImageConfig>(br#"{"config":{"Env":"A=1"}}"#).unwrap_err();
        assert_eq!(err.field, "config.Env");
        assert!(
            err.to_string()
                .starts_with("field `config.Env`: invalid type"),
            "{err}"
        );
        let err = decode_json::<Manifest>(
            br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:00","size":1},"layers":[]}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "config.digest", "{err}");
        let err = decode_json::<ImageConfig>(b"{} x").unwrap_err();
        assert_eq!(err.field, "");
        assert!(err.to_string().contains("trailing characters"), "{err}");
    }
}
