//! `RUN --security=<mode>`.
//!
//! Mirrors BuildKit's `commands_runsecurity.go`: exactly `sandbox` or `insecure`
//! (case-sensitive), defaulting to `sandbox`; anything else is `security "x" is not valid`.
//! Whether `insecure` is permitted (an entitlement) is decided later, not here.

use std::fmt;
use std::str::FromStr;

use super::error::Error;

/// The privilege level of a `RUN` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Security {
    /// The normal, confined sandbox.
    #[default]
    Sandbox,
    /// A privileged container (`security.insecure` entitlement).
    Insecure,
}

impl Security {
    /// The Dockerfile spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Sandbox => "sandbox",
            Security::Insecure => "insecure",
        }
    }
}

impl FromStr for Security {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match value {
            "sandbox" => Ok(Security::Sandbox),
            "insecure" => Ok(Security::Insecure),
            _ => Err(Error::InvalidSecurity {
                value: value.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_modes() {
        assert_eq!("sandbox".parse::<Security>(), Ok(Security::Sandbox));
        assert_eq!("insecure".parse::<Security>(), Ok(Security::Insecure));
        assert_eq!(Security::default(), Security::Sandbox);
        assert_eq!(Security::Insecure.to_string(), "insecure");
    }

    #[test]
    fn rejects_others_with_buildkit_message() {
        let err = "privileged".parse::<Security>().map_err(|e| e.to_string());
        assert_eq!(err, Err(r#"security "privileged" is not valid"#.to_owned()));
    }
}
