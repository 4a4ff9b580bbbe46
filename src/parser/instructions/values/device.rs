//! `RUN --device=<value>`: a CDI device request.
//!
//! Mirrors BuildKit's `instructions.ParseDevice` (`commands_rundevice.go`). The value is a
//! CSV list of fields:
//!
//! * `name=<device>` sets the device name (a second name is an error);
//! * `required` alone means `required=true`; `required=<bool>` takes Go's booleans;
//! * any other field, with or without `=`, is taken whole as the name when no name is set
//!   yet, so `vendor.com/gpu=all` names the device `vendor.com/gpu=all`;
//! * otherwise a bare word is `invalid field ... must be a key=value pair` and a `key=value`
//!   is `unexpected key ...`.
//!
//! Keys are case-insensitive. A value with no name at all (`required`) is accepted, as in
//! BuildKit.

use super::csv;
use super::error::{Error, Result};
use super::golang::parse_bool;
use super::suggest::closest;

/// A parsed `--device` request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    /// The CDI device name, e.g. `vendor1.com/device=foo`; empty when none was given.
    pub name: String,
    /// Whether the build fails when the device is unavailable.
    pub required: bool,
}

/// Parses one `--device` value.
pub fn parse_device(value: &str) -> Result<Device> {
    let fields = csv::fields(value).map_err(|reason| Error::Csv {
        what: "devices",
        reason,
    })?;
    let mut device = Device::default();
    for field in fields {
        apply_field(&mut device, field)?;
    }
    Ok(device)
}

fn apply_field(device: &mut Device, field: String) -> Result<()> {
    let Some((key, value)) = field.split_once('=') else {
        return match field.to_lowercase().as_str() {
            "required" => {
                device.required = true;
                Ok(())
            }
            _ if device.name.is_empty() => {
                device.name = field;
                Ok(())
            }
            _ => Err(Error::NotKeyValue { field }),
        };
    };
    let key = key.to_lowercase();
    match key.as_str() {
        "name" if !device.name.is_empty() => Err(Error::DeviceNameAlreadySet {
            name: device.name.clone(),
        }),
        "name" => {
            device.name = value.to_owned();
            Ok(())
        }
        "required" => {
            device.required = parse_bool(value).ok_or_else(|| Error::InvalidValue {
                key: key.clone(),
                value: value.to_owned(),
            })?;
            Ok(())
        }
        _ if device.name.is_empty() => {
            device.name = field;
            Ok(())
        }
        _ => Err(Error::UnknownKey {
            suggestion: closest(&key, &["name", "required"]),
            key,
            field,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(value: &str) -> Device {
        match parse_device(value) {
            Ok(d) => d,
            Err(e) => panic!("{value}: {e}"),
        }
    }

    fn message(value: &str) -> String {
        match parse_device(value) {
            Ok(d) => panic!("{value}: unexpectedly parsed as {d:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn implicit_and_explicit_names() {
        assert_eq!(device("gpu").name, "gpu");
        assert_eq!(device("NAME=gpu,REQUIRED").name, "gpu");
        assert!(device("NAME=gpu,REQUIRED").required);
        assert_eq!(
            device("required,gpu=all"),
            Device {
                name: "gpu=all".to_owned(),
                required: true
            }
        );
        assert_eq!(device("\"a,b\",required=0").name, "a,b");
        assert_eq!(
            device("required"),
            Device {
                name: String::new(),
                required: true
            }
        );
        assert_eq!(device("name=").name, "");
    }

    #[test]
    fn errors_match_buildkit() {
        assert_eq!(message(""), "failed to parse csv devices: EOF");
        assert_eq!(message("a,b"), "invalid field 'b' must be a key=value pair");
        assert_eq!(
            message("a,requird=1"),
            "unexpected key 'requird' in 'requird=1' (did you mean required?)"
        );
        assert_eq!(message("a,x=1"), "unexpected key 'x' in 'x=1'");
        assert_eq!(message("a,required=yes"), "invalid value for required: yes");
        assert_eq!(message("a,name=b"), "device name already set to a");
        assert_eq!(
            message("a\"b"),
            "failed to parse csv devices: parse error on line 1, column 2: bare \" in non-quoted-field"
        );
    }
}
