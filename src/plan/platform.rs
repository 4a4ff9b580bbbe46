//! Target platforms (`linux/amd64`, `linux/arm64/v8`) and the automatic platform
//! build arguments (`TARGETARCH`, `BUILDPLATFORM`, ...).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An OS/architecture/variant triple.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

/// Why a platform string is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {text:?}: expected os/arch[/variant], e.g. linux/amd64")]
pub struct PlatformError {
    pub text: String,
}

impl Platform {
    /// The platform of the machine rbuild runs on.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        let variant = if architecture == "arm64" { "v8" } else { "" };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.into(),
        }
    }

    /// The automatic build arguments BuildKit defines for a target platform, with the
    /// build platform being the host.
    pub fn default_args(&self) -> Vec<(String, String)> {
        let build = Platform::host();
        vec![
            ("BUILDPLATFORM".into(), build.to_string()),
            ("BUILDOS".into(), build.os.clone()),
            ("BUILDARCH".into(), build.architecture.clone()),
            ("BUILDVARIANT".into(), build.variant.clone()),
            ("TARGETPLATFORM".into(), self.to_string()),
            ("TARGETOS".into(), self.os.clone()),
            ("TARGETARCH".into(), self.architecture.clone()),
            ("TARGETVARIANT".into(), self.variant.clone()),
        ]
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PlatformError { text: s.to_owned() };
        let parts: Vec<&str> = s.trim().split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(err());
        }
        let architecture = match parts[1].to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".to_owned(),
            "aarch64" => "arm64".to_owned(),
            other => other.to_owned(),
        };
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture,
            variant: parts
                .get(2)
                .map(|v| v.to_ascii_lowercase())
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            "linux/x86_64".parse::<Platform>().unwrap().architecture,
            "amd64"
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//".parse::<Platform>().is_err());
    }
}
