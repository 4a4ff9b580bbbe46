//! The instructions that only edit the stage's state and image configuration: ENV,
//! LABEL, WORKDIR, ARG, HEALTHCHECK, EXPOSE (their history text too).

use super::steps::clean_path;
use super::Dispatcher;
use crate::image::{add_env, Empty, Healthcheck};
use crate::parser::instructions::{ArgDef, HealthSpec, KeyValue};
use crate::parser::Span;
use crate::plan::error::{PlanError, Result};
use crate::plan::history::healthcheck_created_by;
use crate::plan::Platform;

impl Dispatcher<'_> {
    pub(super) fn key_values(
        &self,
        pairs: &[KeyValue],
        span: Span,
        what: &str,
    ) -> Result<Vec<(String, String)>> {
        pairs
            .iter()
            .map(|kv| {
                Ok((
                    self.expand(&kv.key, span, what)?,
                    self.expand(&kv.value, span, what)?,
                ))
            })
            .collect()
    }

    pub(super) fn env_cmd(&mut self, pairs: &[KeyValue], span: Span) -> Result<String> {
        let pairs = self.key_values(pairs, span, "ENV")?;
        let mut text = String::from("ENV");
        for (k, v) in pairs {
            add_env(&mut self.config.config.env, &k, &v);
            add_env(&mut self.state.env, &k, &v);
            text.push_str(&format!(" {k}={v}"));
        }
        Ok(text)
    }

    pub(super) fn label(&mut self, pairs: &[KeyValue], span: Span) -> Result<String> {
        let pairs = self.key_values(pairs, span, "LABEL")?;
        let mut text = String::from("LABEL");
        for (k, v) in pairs {
            text.push_str(&format!(" {k}={v}"));
            self.config.config.labels.insert(k, v);
        }
        Ok(text)
    }

    pub(super) fn workdir(&mut self, path: &str, span: Span) -> Result<String> {
        let path = self.expand(path, span, "WORKDIR")?;
        let joined = if path.starts_with('/') {
            path
        } else {
            format!("{}/{path}", self.state.workdir)
        };
        let clean = clean_path(&joined);
        self.config.config.working_dir = clean.clone();
        self.state.workdir = clean.clone();
        Ok(clean)
    }

    pub(super) fn arg(&mut self, args: &[ArgDef], span: Span) -> Result<String> {
        let mut parts = Vec::new();
        for arg in args {
            let key = self.expand(&arg.key, span, "ARG")?;
            let mut value = match self.options.build_args.get(&key) {
                Some(v) => Some(v.clone()),
                None => match &arg.default {
                    Some(d) => Some(self.expand(d, span, "ARG")?),
                    None => self
                        .graph
                        .meta_values
                        .get(&key)
                        .cloned()
                        .flatten()
                        .or_else(|| self.automatic_arg(&key)),
                },
            };
            if let Some(v) = value.take() {
                add_env(&mut self.state.env, &key, &v);
                self.state.build_args.retain(|(k, _)| k != &key);
                self.state.build_args.push((key.clone(), v.clone()));
                parts.push(format!("{key}={v}"));
            } else {
                parts.push(key);
            }
        }
        Ok(format!("ARG {}", parts.join(" ")))
    }

    /// A platform argument: `TARGET*` name the build's platform, not the stage's
    /// (`FROM --platform=$BUILDPLATFORM` stages cross-compile for the target).
    pub(super) fn automatic_arg(&self, key: &str) -> Option<String> {
        let target = self.options.platform.clone().unwrap_or_else(Platform::host);
        target
            .default_args()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub(super) fn healthcheck(&mut self, h: &HealthSpec, span: Span) -> Result<String> {
        let ns =
            |v: &Option<String>, flag: &str| -> Result<i64> {
                match v {
                    None => Ok(0),
                    Some(text) => crate::parser::instructions::parse_duration_flag(flag, text)
                        .map_err(|e| PlanError::Invalid {
                            message: e.to_string(),
                            span,
                        }),
                }
            };
        let check = Healthcheck {
            test: h.test.clone(),
            interval: ns(&h.interval, "interval")?,
            timeout: ns(&h.timeout, "timeout")?,
            start_period: ns(&h.start_period, "start-period")?,
            start_interval: ns(&h.start_interval, "start-interval")?,
            retries: i64::from(h.retries.unwrap_or(0)),
        };
        let text = healthcheck_created_by(&check);
        self.config.config.healthcheck = Some(check);
        Ok(text)
    }

    pub(super) fn expose(&mut self, ports: &[String], span: Span) -> Result<String> {
        let mut specs = Vec::new();
        for p in ports {
            let words =
                self.lex
                    .process_words(p, &self.env())
                    .map_err(|source| PlanError::Expand {
                        what: "EXPOSE".into(),
                        span,
                        source,
                    })?;
            specs.extend(words);
        }
        let keys =
            crate::parser::instructions::expose_keys(&specs).map_err(|e| PlanError::Invalid {
                message: e.to_string(),
                span,
            })?;
        for k in &keys {
            self.config.config.exposed_ports.insert(k.clone(), Empty {});
        }
        let listed: Vec<String> = keys.iter().map(|k| format!("{k}:{{}}")).collect();
        Ok(format!("EXPOSE map[{}]", listed.join(" ")))
    }
}
