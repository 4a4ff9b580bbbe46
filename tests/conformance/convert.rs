//! Conformance corpora `instructions/convert.json` (whole-Dockerfile conversion and the
//! config helpers) and `instructions/error-lines.json` (where build errors point).

use std::collections::BTreeMap;

use rbuild::digest::Digest;
use rbuild::image::{self, ImageConfig};
use rbuild::parser::instructions;
use rbuild::plan::{self, BaseError, BaseImage, BaseResolver, Plan, PlanOptions, Platform};
use serde_json::Value;

use crate::support::{self, Tally};

/// Conversion never needs image contents: the images the corpus builds from resolve to
/// an empty config; any other name is missing, as it would be from a registry.
struct AnyImage;

/// The error of a name [`AnyImage`] does not know.
#[derive(Debug, thiserror::Error)]
#[error("image {0} not found")]
struct NotFound(String);

impl BaseResolver for AnyImage {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<BaseImage, BaseError> {
        let repo = reference.split([':', '@']).next().unwrap_or_default();
        if !matches!(repo, "alpine" | "busybox") {
            return Err(BaseError::new(NotFound(reference.to_owned())));
        }
        let config = ImageConfig {
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            ..Default::default()
        };
        Ok(BaseImage {
            reference: reference.to_owned(),
            digest: Digest::of(reference.as_bytes()),
            config,
        })
    }
}

fn convert(text: &str, target: Option<&str>) -> Result<Plan, String> {
    let df = instructions::parse_text(text).map_err(|e| e.to_string())?;
    let options = PlanOptions {
        target: target.map(str::to_owned),
        ..Default::default()
    };
    plan::plan(&df, &options, &AnyImage).map_err(|e| e.to_string())
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

#[test]
fn dockerfiles() {
    let mut tally = Tally::new("instructions/convert.json");
    let v = support::read_json("instructions/convert.json");
    for (i, case) in v["dockerfiles"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let result = convert(
            case["dockerfile"].as_str().unwrap_or_default(),
            case["target"].as_str(),
        );
        let outcome = match (&result, &case["error"]) {
            (Ok(_), Value::Null) => match case["expect_image_labels"].as_object() {
                None => Ok(()),
                Some(want) => {
                    let got = result
                        .as_ref()
                        .ok()
                        .and_then(Plan::target_stage)
                        .map(|s| s.config.config.labels.clone());
                    let want: BTreeMap<String, String> = want
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect();
                    if got.as_ref() == Some(&want) {
                        Ok(())
                    } else {
                        Err(format!("labels {got:?}"))
                    }
                }
            },
            (Err(_), Value::Bool(true)) => Ok(()),
            (Err(e), Value::String(want)) if e.contains(want.as_str()) => Ok(()),
            (Ok(_), _) => Err("converted without error".into()),
            (Err(e), _) => Err(format!("unexpected error {e:?}")),
        };
        tally.check(&format!("dockerfiles[{i}]"), outcome);
    }
    tally.finish();
}

#[test]
fn config_helpers() {
    let mut tally = Tally::new("instructions/convert.json(helpers)");
    let v = support::read_json("instructions/convert.json");
    for (i, case) in v["add_env"]["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let mut env = strs(&case["env"]);
        image::add_env(
            &mut env,
            case["key"].as_str().unwrap_or_default(),
            case["value"].as_str().unwrap_or_default(),
        );
        tally.check(
            &format!("add_env[{i}]"),
            if env == strs(&case["expect"]) {
                Ok(())
            } else {
                Err(format!("{env:?}"))
            },
        );
    }
    for (i, case) in v["parse_key_value"]["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let c = strs(case);
        let got = image::parse_key_value(&c[0]);
        tally.check(
            &format!("parse_key_value[{i}]"),
            if got == (c[1].as_str(), c[2].as_str()) {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            },
        );
    }
    for (i, case) in v["proxy_env_from_build_args"]["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let args: BTreeMap<String, String> = case["args"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let got = serde_json::to_value(plan::proxy_env(&args)).unwrap_or_default();
        tally.check(
            &format!("proxy_env[{i}]"),
            if got == case["expect"] {
                Ok(())
            } else {
                Err(format!("{got}"))
            },
        );
    }
    for (i, case) in v["healthcheck_history"]["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let ns =
            |k: &str| instructions::parse_duration_flag(k, case[k].as_str().unwrap_or_default());
        let check = (|| -> Result<image::Healthcheck, String> {
            Ok(image::Healthcheck {
                test: strs(&case["test"]),
                interval: ns("interval").map_err(|e| e.to_string())?,
                timeout: ns("timeout").map_err(|e| e.to_string())?,
                start_period: ns("start_period").map_err(|e| e.to_string())?,
                start_interval: ns("start_interval").map_err(|e| e.to_string())?,
                retries: case["retries"].as_i64().unwrap_or(0),
            })
        })();
        let want = case["created_by"].as_str().unwrap_or_default();
        let outcome = check.and_then(|h| {
            let got = plan::healthcheck_created_by(&h);
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        });
        tally.check(&format!("healthcheck_history[{i}]"), outcome);
    }
    for (i, case) in v["source_date_epoch"]["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let got = plan::source_date_epoch(case["value"].as_str().unwrap_or_default());
        let outcome = match (got, case["error_contains"].as_str()) {
            (Err(e), Some(want)) if e.to_string().contains(want) => Ok(()),
            (Ok(t), None) if t == case["expect_unix"].as_i64() => {
                let formatted = t.map(|t| t.to_string()).unwrap_or_default();
                if formatted == case["formatted"].as_str().unwrap_or_default() {
                    Ok(())
                } else {
                    Err(formatted)
                }
            }
            (other, _) => Err(format!("{other:?}")),
        };
        tally.check(&format!("source_date_epoch[{i}]"), outcome);
    }
    tally.finish();
}

/// The line a build of `text` (in a context holding only the Dockerfile) fails at, from
/// the real binary's `Dockerfile:LINE` error.
fn build_error_lines(text: &str) -> Option<(usize, usize)> {
    let dir = tempfile::tempdir().ok()?;
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).ok()?;
    std::fs::write(ctx.join("Dockerfile"), text).ok()?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(dir.path().join("store"))
        .args(["build", "--progress", "quiet"])
        .arg(&ctx)
        .output()
        .ok()?;
    if out.status.success() {
        return None;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let after = stderr.split("Dockerfile:").nth(1)?;
    let number = |s: &str| {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<usize>()
            .ok()
    };
    let start = number(after)?;
    let digits = start.to_string().len();
    let end = after[digits..]
        .strip_prefix('-')
        .and_then(number)
        .unwrap_or(start);
    Some((start, end))
}

/// Error lines: parse- and plan-time failures are read from the error's span, build-time
/// failures from the real binary's report.
#[test]
fn error_lines() {
    let mut tally = Tally::new("instructions/error-lines.json");
    let v = support::read_json("instructions/error-lines.json");
    for case in v["cases"].as_array().cloned().unwrap_or_default() {
        let name = case["name"].as_str().unwrap_or_default();
        let text = case["dockerfile"].as_str().unwrap_or_default();
        let want: Vec<u64> = case["error_lines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        let lines = match instructions::parse_text(text) {
            Err(e) => Some((e.span.line, e.span.end_line)),
            Ok(df) => match plan::plan(&df, &PlanOptions::default(), &AnyImage) {
                Err(e) => e.span().map(|s| (s.line, s.end_line)),
                Ok(_) => build_error_lines(text),
            },
        };
        let outcome = match lines {
            None => Err("the build did not fail with a Dockerfile line".to_owned()),
            Some((start, end)) => {
                let got: Vec<u64> = (start as u64..=end as u64).collect();
                if got == want {
                    Ok(())
                } else {
                    Err(format!("lines {got:?}"))
                }
            }
        };
        tally.check(name, outcome);
    }
    tally.finish();
}
