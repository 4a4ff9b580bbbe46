//! Flags of `docker build`, `docker buildx build` and `podman build` that describe what
//! rbuild always does (`--rm`, `--layers`, `--provenance=false`) or name an rbuild
//! setting another way (`-D`, `--timestamp`, `--arch`), read into their [`Effects`].
//! A value that asks for something rbuild does not do is refused, never ignored
//! (`testdata/cli-compat.tsv` lists every flag).

use anyhow::bail;

use crate::plan::Platform;

/// The flags, shown under their own heading in `rbuild build --help`.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Compatibility (docker build, buildx, podman build)")]
pub struct CompatArgs {
    /// Also load the image into Docker (`docker load`), as buildx's `--load`.
    #[arg(long)]
    pub load: bool,
    /// Only `false`: rbuild makes no provenance attestation.
    #[arg(long, value_name = "false", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub provenance: Option<String>,
    /// Only `false`: rbuild makes no SBOM attestation.
    #[arg(long, value_name = "false", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub sbom: Option<String>,
    /// Only `true` (docker's default): rbuild leaves no intermediate containers.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub rm: Option<bool>,
    /// Only `true`: rbuild leaves no intermediate containers, failed builds included.
    #[arg(long = "force-rm", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub force_rm: Option<bool>,
    /// Only `true` (the default): no Docker Content Trust verification.
    #[arg(long = "disable-content-trust", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub disable_content_trust: Option<bool>,
    /// No effect (a note says so): the context is read in place, not sent to a daemon.
    #[arg(long)]
    pub compress: bool,
    /// Only `false`: rbuild adds no `io.buildah.version` label.
    #[arg(long = "identity-label", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub identity_label: Option<bool>,
    /// Only `true`: only the stages the target needs are built.
    #[arg(long = "skip-unused-stages", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub skip_unused_stages: Option<bool>,
    /// `true`: cache every step (rbuild's default); `false`: as `--no-cache`.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub layers: Option<bool>,
    /// Store layers uncompressed (`--compression uncompressed`).
    #[arg(short = 'D', long = "disable-compression", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", conflicts_with = "compression")]
    pub disable_compression: Option<bool>,
    /// Only `true`: with `SOURCE_DATE_EPOCH`, file times in new layers are clamped to it.
    #[arg(long = "rewrite-timestamp", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub rewrite_timestamp: Option<bool>,
    /// `SOURCE_DATE_EPOCH` (podman's `--timestamp`): created times and file times.
    #[arg(long, value_name = "SECONDS", conflicts_with = "source_date_epoch")]
    pub timestamp: Option<i64>,
    /// `SOURCE_DATE_EPOCH` (podman's flag).
    #[arg(long = "source-date-epoch", value_name = "SECONDS")]
    pub source_date_epoch: Option<i64>,
    /// The platform's OS (with `--arch`, `--variant`; instead of `--platform`).
    #[arg(long, value_name = "OS", conflicts_with = "platform")]
    pub os: Option<String>,
    /// The platform's architecture (`arm64`; instead of `--platform`).
    #[arg(long, value_name = "ARCH", conflicts_with = "platform")]
    pub arch: Option<String>,
    /// The platform's variant (`v8`; instead of `--platform`).
    #[arg(long, value_name = "VARIANT", conflicts_with = "platform")]
    pub variant: Option<String>,
}

/// What the flags change in the build.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// `--layers=false`.
    pub no_cache: bool,
    /// `-D`.
    pub uncompressed: bool,
    /// `--timestamp` or `--source-date-epoch`.
    pub source_date_epoch: Option<i64>,
    /// `--os`/`--arch`/`--variant`, as `os/arch[/variant]`.
    pub platform: Option<String>,
    /// Notes for the user (flags that have no effect).
    pub notes: Vec<&'static str>,
}

impl CompatArgs {
    /// The flags' effects; a value asking for what rbuild does not do is an error.
    pub fn effects(&self) -> anyhow::Result<Effects> {
        for (flag, value) in [("--provenance", &self.provenance), ("--sbom", &self.sbom)] {
            if let Some(v) = value.as_deref().filter(|v| !matches!(*v, "false" | "0")) {
                bail!("{flag}={v}: rbuild makes no attestations (SBOM, provenance); only {flag}=false is accepted");
            }
        }
        self.refuse_values()?;
        let mut effects = Effects {
            no_cache: self.layers == Some(false),
            uncompressed: self.disable_compression == Some(true),
            source_date_epoch: self.timestamp.or(self.source_date_epoch),
            platform: self.platform(),
            notes: Vec::new(),
        };
        if self.compress {
            effects.notes.push("note: --compress has no effect: rbuild reads the context in place (there is no daemon to send it to)");
        }
        Ok(effects)
    }

    /// Boolean flags whose other value asks for something rbuild does not do.
    fn refuse_values(&self) -> anyhow::Result<()> {
        let refused = [
            (
                self.rm == Some(false),
                "--rm=false",
                "rbuild runs steps in no container that could be kept",
            ),
            (
                self.force_rm == Some(false),
                "--force-rm=false",
                "rbuild runs steps in no container that could be kept",
            ),
            (
                self.disable_content_trust == Some(false),
                "--disable-content-trust=false",
                "rbuild does not verify Docker Content Trust signatures",
            ),
            (
                self.identity_label == Some(true),
                "--identity-label",
                "rbuild adds no io.buildah.version label (add labels with --label)",
            ),
            (
                self.skip_unused_stages == Some(false),
                "--skip-unused-stages=false",
                "rbuild builds only the stages the target needs, as BuildKit",
            ),
            (
                self.rewrite_timestamp == Some(false),
                "--rewrite-timestamp=false",
                "with SOURCE_DATE_EPOCH rbuild always clamps file times in new layers to it",
            ),
        ];
        match refused.into_iter().find(|(asked, _, _)| *asked) {
            Some((_, flag, why)) => bail!("{flag} is not supported: {why}"),
            None => Ok(()),
        }
    }

    /// `--os`, `--arch`, `--variant` over the host's platform.
    fn platform(&self) -> Option<String> {
        if self.os.is_none() && self.arch.is_none() && self.variant.is_none() {
            return None;
        }
        let host = Platform::host();
        let arch_given = self.arch.is_some();
        let platform = Platform {
            os: self.os.clone().unwrap_or(host.os),
            architecture: self.arch.clone().unwrap_or(host.architecture),
            // The host's variant belongs to the host's architecture only.
            variant: match (&self.variant, arch_given) {
                (Some(v), _) => v.clone(),
                (None, false) => host.variant,
                (None, true) => String::new(),
            },
        };
        Some(platform.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_describe_rbuild_are_accepted_others_refused() {
        let accepted = CompatArgs {
            rm: Some(true),
            force_rm: Some(true),
            disable_content_trust: Some(true),
            identity_label: Some(false),
            skip_unused_stages: Some(true),
            rewrite_timestamp: Some(true),
            provenance: Some("false".into()),
            sbom: Some("0".into()),
            ..CompatArgs::default()
        };
        assert_eq!(accepted.effects().unwrap(), Effects::default());
        let err = |args: CompatArgs| args.effects().unwrap_err().to_string();
        let rm = err(CompatArgs {
            rm: Some(false),
            ..CompatArgs::default()
        });
        assert!(rm.starts_with("--rm=false is not supported"), "{rm}");
        let provenance = err(CompatArgs {
            provenance: Some("mode=max".into()),
            ..CompatArgs::default()
        });
        assert!(
            provenance.contains("only --provenance=false"),
            "{provenance}"
        );
    }

    #[test]
    fn effects_of_podman_flags() {
        let args = CompatArgs {
            layers: Some(false),
            disable_compression: Some(true),
            timestamp: Some(7),
            arch: Some("arm64".into()),
            compress: true,
            ..CompatArgs::default()
        };
        let effects = args.effects().unwrap();
        assert!(effects.no_cache && effects.uncompressed);
        assert_eq!(effects.source_date_epoch, Some(7));
        assert_eq!(effects.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(effects.notes.len(), 1);
        let variant = CompatArgs {
            arch: Some("arm".into()),
            variant: Some("v7".into()),
            ..CompatArgs::default()
        };
        assert_eq!(variant.platform().as_deref(), Some("linux/arm/v7"));
    }
}
