//! Entitlements (`--allow`): what a Dockerfile may ask for only when the user grants it,
//! as BuildKit's `entitlements` package: `network.host` for `RUN --network=host` and
//! `security.insecure` for `RUN --security=insecure`.
//!
//! buildx also knows `device` and `buildx.local.delete`; rbuild refuses them by name
//! (there is no CDI device injection and no local-cache deletion to grant), so that
//! nothing a user passes is silently ignored. The build-wide `--network host` is the
//! user's own choice and needs no entitlement, as in buildx.

use std::fmt;
use std::str::FromStr;

use crate::parser::Span;

use super::error::{PlanError, Result};

/// One entitlement a build may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entitlement {
    /// `network.host`: `RUN --network=host`.
    NetworkHost,
    /// `security.insecure`: `RUN --security=insecure`.
    SecurityInsecure,
}

impl Entitlement {
    /// The name `--allow` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Entitlement::NetworkHost => "network.host",
            Entitlement::SecurityInsecure => "security.insecure",
        }
    }
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an `--allow` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntitlementError {
    /// A buildx entitlement rbuild has nothing to grant for.
    #[error("--allow {name}: {reason}")]
    Unsupported { name: String, reason: &'static str },
    /// Not an entitlement at all.
    #[error("--allow {name}: unknown entitlement (expected network.host or security.insecure)")]
    Unknown { name: String },
}

impl FromStr for Entitlement {
    type Err = EntitlementError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let unsupported = |reason| EntitlementError::Unsupported {
            name: s.to_owned(),
            reason,
        };
        match s {
            "network.host" => Ok(Entitlement::NetworkHost),
            "security.insecure" => Ok(Entitlement::SecurityInsecure),
            // buildx accepts `device` and `device=NAME`.
            d if d == "device" || d.starts_with("device=") => Err(unsupported(
                "rbuild has no CDI device injection for RUN --device to grant; build with docker buildx for that",
            )),
            "buildx.local.delete" => Err(unsupported(
                "rbuild exports no local cache that a build could delete; use `rbuild prune` to remove cache",
            )),
            _ => Err(EntitlementError::Unknown { name: s.to_owned() }),
        }
    }
}

/// The entitlements a build grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entitlements {
    granted: Vec<Entitlement>,
}

impl Entitlements {
    /// Grants `entitlements`.
    pub fn new(entitlements: impl IntoIterator<Item = Entitlement>) -> Self {
        let mut granted: Vec<Entitlement> = entitlements.into_iter().collect();
        granted.sort();
        granted.dedup();
        Entitlements { granted }
    }

    /// Whether `entitlement` is granted.
    pub fn allows(&self, entitlement: Entitlement) -> bool {
        self.granted.contains(&entitlement)
    }

    /// Checks a RUN's `--network` and `--security` against the grants: the error names
    /// the flag the step needs, at the step's line.
    pub(super) fn check_run(
        &self,
        network: Option<&str>,
        security: Option<&str>,
        span: Span,
    ) -> Result<()> {
        let needs = |option: &str, entitlement: Entitlement| {
            PlanError::Invalid {
            message: format!("RUN {option} needs --allow {entitlement} (an entitlement the user grants, as with docker buildx build --allow {entitlement})"),
            span,
        }
        };
        if network == Some("host") && !self.allows(Entitlement::NetworkHost) {
            return Err(needs("--network=host", Entitlement::NetworkHost));
        }
        if security == Some("insecure") && !self.allows(Entitlement::SecurityInsecure) {
            return Err(needs("--security=insecure", Entitlement::SecurityInsecure));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_entitlements_and_refuses_the_rest_by_name() {
        assert_eq!("network.host".parse(), Ok(Entitlement::NetworkHost));
        assert_eq!(
            "security.insecure".parse(),
            Ok(Entitlement::SecurityInsecure)
        );
        for name in ["device", "device=nvidia.com/gpu", "buildx.local.delete"] {
            let err = name.parse::<Entitlement>().unwrap_err();
            assert!(
                matches!(err, EntitlementError::Unsupported { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().starts_with(&format!("--allow {name}: ")));
        }
        let err = "network.hots".parse::<Entitlement>().unwrap_err();
        assert!(err.to_string().contains("unknown entitlement"), "{err}");
    }

    #[test]
    fn run_flags_need_their_entitlement() {
        let span = Span::default();
        let none = Entitlements::default();
        let err = none.check_run(Some("host"), None, span).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("RUN --network=host needs --allow network.host"));
        let err = none.check_run(None, Some("insecure"), span).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("RUN --security=insecure needs --allow security.insecure"));
        assert!(none.check_run(Some("none"), Some("sandbox"), span).is_ok());
        assert!(none.check_run(Some("default"), None, span).is_ok());

        let all = Entitlements::new([Entitlement::SecurityInsecure, Entitlement::NetworkHost]);
        assert!(all.check_run(Some("host"), Some("insecure"), span).is_ok());
        let net = Entitlements::new([Entitlement::NetworkHost]);
        assert!(net.check_run(Some("host"), Some("insecure"), span).is_err());
    }
}
