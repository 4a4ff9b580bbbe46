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

    /// Go reads a descriptor's size as an int64: a larger size is refused when the
    /// manifest is read, naming the field (it used to reach the download as `u64::MAX`).
    #[test]
    fn sizes_over_int64_are_refused() {
        let manifest = |size: &str| {
            format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"sha256:{z}","size":1}},"layers":[{{"mediaType":"x","digest":"sha256:{z}","size":{size}}}]}}"#,
                z = "0".repeat(64)
            )
        };
        let err = decode_json::<Manifest>(manifest("18446744073709551615").as_bytes()).unwrap_err();
        assert_eq!(err.field, "layers[0].size", "{err}");
        assert!(err.to_string().contains("9223372036854775807"), "{err}");
        let ok = decode_json::<Manifest>(manifest("9223372036854775807").as_bytes()).unwrap();
        assert_eq!(ok.layers[0].size, i64::MAX as u64);
    }
}
