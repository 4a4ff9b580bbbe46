//! `RUN --network=<mode>`.
//!
//! Mirrors BuildKit's `commands_runnetwork.go`: exactly `default`, `none` or `host`
//! (case-sensitive), defaulting to `default`; anything else is `invalid network mode "x"`.
//! Whether `host` is permitted (an entitlement) is decided later, not here.

use std::fmt;
use std::str::FromStr;

use super::error::Error;

/// The network namespace a `RUN` step gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Network {
    /// The builder's default sandbox network.
    #[default]
    Default,
    /// No network: loopback only.
    None,
    /// The host's network namespace.
    Host,
}

impl Network {
    /// The Dockerfile spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Default => "default",
            Network::None => "none",
            Network::Host => "host",
        }
    }
}

impl FromStr for Network {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        match value {
            "default" => Ok(Network::Default),
            "none" => Ok(Network::None),
            "host" => Ok(Network::Host),
            _ => Err(Error::InvalidNetwork {
                value: value.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_modes() {
        for mode in [Network::Default, Network::None, Network::Host] {
            assert_eq!(mode.as_str().parse::<Network>(), Ok(mode));
        }
        assert_eq!(Network::default(), Network::Default);
    }

    #[test]
    fn rejects_others_with_buildkit_message() {
        let err = "Host".parse::<Network>().map_err(|e| e.to_string());
        assert_eq!(err, Err(r#"invalid network mode "Host""#.to_owned()));
        assert!("".parse::<Network>().is_err());
    }
}
