//! History text (`created_by`) written as BuildKit writes it, for the instructions
//! whose text is not the instruction itself: HEALTHCHECK's Go struct dump with Go
//! durations, COPY/ADD's expanded sources and destination.

use crate::image::Healthcheck;
use crate::parser::instructions::values::redact_url_credentials;
use crate::plan::CopyOp;

/// The history text of a HEALTHCHECK as current BuildKit writes it (Go's `%+v` of the
/// settings; BuildKit's own `TestDispatchHealthcheckHistory` vector, in the conformance
/// corpus). Older BuildKit (Docker 20.10's) printed Go's `%q` of the struct instead,
/// `&{["CMD-SHELL" "…"] "30s" "0s" "0s" '\x03'}`; history text is informational only.
pub fn healthcheck_created_by(check: &Healthcheck) -> String {
    format!(
        "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        check.test.join(" "),
        go_duration(check.interval),
        go_duration(check.timeout),
        go_duration(check.start_period),
        go_duration(check.start_interval),
        check.retries
    )
}

/// The history text of a COPY or ADD as BuildKit writes it: the expanded sources, each
/// here-document as `<<NAME`, then the destination as written (expanded, not made
/// absolute): `COPY a b ./ # buildkit`. Unlike BuildKit, credentials in URL sources are
/// masked (`https://user:xxxxx@host/...`): an image's history is public.
pub(super) fn copy_created_by(what: &str, op: &CopyOp, written_dest: &str) -> String {
    let mut text = what.to_owned();
    for source in &op.sources {
        text.push(' ');
        text.push_str(source);
    }
    for content in &op.contents {
        text.push_str(" <<");
        text.push_str(&content.path);
    }
    redact_url_credentials(&format!("{text} {written_dest} # buildkit"))
}

/// Go's `time.Duration.String()` for history text.
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let (sign, ns) = if ns < 0 {
        ("-", ns.unsigned_abs())
    } else {
        ("", ns as u64)
    };
    if ns < 1_000 {
        return format!("{sign}{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{sign}{}µs", trim_float(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{sign}{}ms", trim_float(ns as f64 / 1e6));
    }
    let secs = ns as f64 / 1e9;
    let (h, rem) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
    let (m, rem) = (rem / 60_000_000_000, rem % 60_000_000_000);
    let s = trim_float(rem as f64 / 1e9);
    match (h, m) {
        (0, 0) => format!("{sign}{}s", trim_float(secs)),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(1_000_000_000), "1s");
        assert_eq!(go_duration(100_000_000), "100ms");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
    }
}
