//! Target platforms (`linux/amd64`, `linux/arm64/v8`) and the automatic platform
//! build arguments (`TARGETARCH`, `BUILDPLATFORM`, ...).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An OS/architecture/variant triple.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
        let architecture = crate::image::host_architecture();
        // containerd normalizes arm64/v8 to arm64, so BUILDPLATFORM has no variant.
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: String::new(),
        }
    }

    /// The platform an image config (or an index entry) declares, normalized.
    pub fn of_image(os: &str, architecture: &str, variant: &str) -> Self {
        let (architecture, variant) = normalize_arch(
            &architecture.to_ascii_lowercase(),
            &variant.to_ascii_lowercase(),
        );
        Platform {
            os: normalize_os(&os.to_ascii_lowercase()),
            architecture,
            variant,
        }
    }

    /// Whether an image of platform `image` serves a build for this platform: same OS
    /// and architecture, and variant when both name one.
    pub fn accepts(&self, image: &Platform) -> bool {
        self.os == image.os
            && self.architecture == image.architecture
            && (self.variant.is_empty()
                || image.variant.is_empty()
                || self.variant == image.variant)
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

    /// A specifier as containerd's `platforms.Parse` + `Normalize` read it (what
    /// buildx does with `--platform`): `os/arch[/variant]`, or one part, an OS (this
    /// machine's architecture) or an architecture (Linux); case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PlatformError { text: s.to_owned() };
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !(1..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(err());
        }
        let (os, arch, variant) = match parts.as_slice() {
            [one] if KNOWN_OS.contains(one) => {
                let host = Platform::host();
                return Ok(Platform {
                    os: normalize_os(one),
                    ..host
                });
            }
            [one] => ("linux", *one, ""),
            [os, arch] => (*os, *arch, ""),
            [os, arch, variant] => (*os, *arch, *variant),
            _ => return Err(err()),
        };
        let (architecture, variant) = normalize_arch(arch, variant);
        Ok(Platform {
            os: normalize_os(os),
            architecture,
            variant,
        })
    }
}

/// The operating systems containerd knows by name (a one-part specifier naming one
/// is an OS, else an architecture).
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "macos",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

fn normalize_os(os: &str) -> String {
    match os {
        "macos" => "darwin".to_owned(),
        other => other.to_owned(),
    }
}

/// containerd's architecture and variant normalization: aliases to Go's names,
/// `arm64/v8` to `arm64` (v8 is the only arm64), `arm` to `arm/v7`.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = match (arch, variant) {
        ("i386", _) => ("386", ""),
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", ""),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
        ("aarch64" | "arm64", "8" | "v8" | "v8.0") => ("arm64", ""),
        ("aarch64" | "arm64", "9" | "9.0" | "v9.0") => ("arm64", "v9"),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", "5") => ("arm", "v5"),
        ("arm", "6") => ("arm", "v6"),
        ("arm", "8") => ("arm", "v8"),
        (a, v) => (a, v),
    };
    (arch.to_owned(), variant.to_owned())
}

/// A `--platform` value: one platform or a comma-separated list (BuildKit's form);
/// each normalized, duplicates dropped, in the order given.
pub fn parse_list(text: &str) -> Result<Vec<Platform>, PlatformError> {
    let mut out: Vec<Platform> = Vec::new();
    for part in text.split(',') {
        let platform: Platform = part.parse()?;
        if !out.contains(&platform) {
            out.push(platform);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let p: Platform = "linux/arm/v6".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm/v6");
        assert_eq!(
            "linux/x86_64".parse::<Platform>().unwrap().architecture,
            "amd64"
        );
        assert!("linux//".parse::<Platform>().is_err());
        assert!("linux/amd64/v2/x".parse::<Platform>().is_err());
        assert!("".parse::<Platform>().is_err());
    }

    #[test]
    fn normalizes_as_containerd() {
        let cases = [
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/aarch64", "linux/arm64"),
            ("Linux/ARM64/V8", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/i386", "linux/386"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("arm64", "linux/arm64"),
            ("s390x", "linux/s390x"),
        ];
        for (given, normal) in cases {
            let p: Platform = given.parse().unwrap();
            assert_eq!(p.to_string(), normal, "{given}");
        }
        assert_eq!("linux".parse::<Platform>().unwrap(), Platform::host());
    }

    #[test]
    fn images_serve_the_platforms_they_match() {
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert!(arm64.accepts(&Platform::of_image("linux", "arm64", "v8")));
        assert!(arm64.accepts(&Platform::of_image("linux", "aarch64", "")));
        assert!(!arm64.accepts(&Platform::of_image("linux", "amd64", "")));
        let v6: Platform = "linux/arm/v6".parse().unwrap();
        assert!(!v6.accepts(&Platform::of_image("linux", "arm", "v7")));
        assert!(v6.accepts(&Platform::of_image("linux", "arm", "6")));
    }

    #[test]
    fn lists_are_split_normalized_and_deduplicated() {
        let list = parse_list("linux/amd64, linux/arm64/v8,linux/arm64").unwrap();
        let text: Vec<String> = list.iter().map(Platform::to_string).collect();
        assert_eq!(text, ["linux/amd64", "linux/arm64"]);
        let err = parse_list("linux/amd64,,linux/arm64").unwrap_err();
        assert_eq!(err.text, "");
        assert!(parse_list("linux/amd64,bogus/").is_err());
    }

    #[test]
    fn the_build_args_name_both_platforms() {
        let args = "linux/arm/v7".parse::<Platform>().unwrap().default_args();
        let get = |k: &str| args.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("TARGETPLATFORM").as_deref(), Some("linux/arm/v7"));
        assert_eq!(get("TARGETARCH").as_deref(), Some("arm"));
        assert_eq!(get("TARGETVARIANT").as_deref(), Some("v7"));
        assert_eq!(get("BUILDPLATFORM"), Some(Platform::host().to_string()));
        assert_eq!(get("BUILDVARIANT").as_deref(), Some(""));
    }
}
