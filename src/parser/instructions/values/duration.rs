//! Go durations and the `HEALTHCHECK` duration flags.
//!
//! [`parse_go_duration`] is Go's `time.ParseDuration`: an optional sign, then one or more
//! `<number><unit>` terms (`1h30m`, `1.5s`, `.5ms`, `-2m`), units `ns us µs μs ms s m h`, with
//! the bare `0` as the only unit-less value. Values are signed nanoseconds limited to
//! `i64`; fractions are computed as Go does (through `f64`, truncated). Error messages are
//! Go's, including its byte-wise quoting.
//!
//! [`parse_opt_interval`] is BuildKit's `parseOptInterval` for `--interval`, `--timeout`,
//! `--start-period` and `--start-interval`: empty means unset, zero is allowed (it means
//! "use the default"), and anything else below 1ms, negatives included, is an error.

use std::fmt;
use std::time::Duration;

use super::error::{Error, Result};

const NANOS_PER_MILLI: i64 = 1_000_000;
/// `1 << 63`: the magnitude limit Go checks while accumulating (one past `i64::MAX`).
const LIMIT: u64 = 1 << 63;

/// A Go `time.Duration`: signed nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub i64);

impl GoDuration {
    /// The value in nanoseconds.
    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// The value as a [`Duration`], or `None` when negative.
    pub fn to_std(self) -> Option<Duration> {
        u64::try_from(self.0).ok().map(Duration::from_nanos)
    }
}

impl fmt::Display for GoDuration {
    /// Shows the nanosecond count with an `ns` unit (parseable back by Go and rbuild).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ns", self.0)
    }
}

/// Parses a duration flag value of `HEALTHCHECK`, as BuildKit's `parseOptInterval`.
///
/// Returns `None` for an empty value and `Some(Duration::ZERO)` for an explicit zero (both
/// leave the image config's field unset). `flag` is the flag name used in the error
/// (`Interval "interval" cannot be less than 1ms`).
pub fn parse_opt_interval(flag: &str, value: &str) -> Result<Option<Duration>> {
    if value.is_empty() {
        return Ok(None);
    }
    let nanos = parse_go_duration(value)?.as_nanos();
    if nanos == 0 {
        return Ok(Some(Duration::ZERO));
    }
    match u64::try_from(nanos) {
        Ok(n) if nanos >= NANOS_PER_MILLI => Ok(Some(Duration::from_nanos(n))),
        _ => Err(Error::IntervalTooShort {
            flag: flag.to_owned(),
        }),
    }
}

/// Parses a Go duration string (`time.ParseDuration`).
pub fn parse_go_duration(input: &str) -> Result<GoDuration> {
    let invalid = || Error::InvalidDuration {
        input: input.to_owned(),
    };
    let (negative, mut rest) = match input.as_bytes().first() {
        Some(b'-') => (true, input.get(1..).unwrap_or_default()),
        Some(b'+') => (false, input.get(1..).unwrap_or_default()),
        _ => (false, input),
    };
    if rest == "0" {
        return Ok(GoDuration(0));
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (term, remaining) = parse_term(rest, input)?;
        total = total
            .checked_add(term)
            .filter(|&t| t <= LIMIT)
            .ok_or_else(invalid)?;
        rest = remaining;
    }
    if negative {
        // `total` is at most 2^63, whose negation is exactly `i64::MIN`.
        return Ok(GoDuration(0i64.wrapping_sub_unsigned(total)));
    }
    i64::try_from(total).map(GoDuration).map_err(|_| invalid())
}

/// Parses one `<number><unit>` term at the start of `s`; returns its magnitude in
/// nanoseconds and the text after it. `input` is the whole value, for error messages.
fn parse_term<'a>(s: &'a str, input: &str) -> Result<(u64, &'a str)> {
    let invalid = || Error::InvalidDuration {
        input: input.to_owned(),
    };
    if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
        return Err(invalid());
    }
    let (whole, after_whole) = split_digits(s);
    let int_part = leading_int(whole).ok_or_else(invalid)?;
    let (fraction, rest) = match after_whole.strip_prefix('.') {
        Some(after_dot) => split_digits(after_dot),
        None => ("", after_whole),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(invalid());
    }
    // The unit runs to the next digit or dot; both are ASCII, so the split is on a char
    // boundary even after a multi-byte unit such as `µs`.
    let unit_len = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (unit, remaining) = rest.split_at(unit_len);
    if unit.is_empty() {
        return Err(Error::MissingDurationUnit {
            input: input.to_owned(),
        });
    }
    let scale = unit_nanos(unit).ok_or_else(|| Error::UnknownDurationUnit {
        unit: unit.to_owned(),
        input: input.to_owned(),
    })?;
    if int_part > LIMIT / scale {
        return Err(invalid());
    }
    let mut value = int_part * scale;
    let (numerator, denominator) = leading_fraction(fraction);
    if numerator > 0 {
        // Go computes the fraction in floating point (exact to the nanosecond for hours).
        value += (numerator as f64 * (scale as f64 / denominator)) as u64;
        if value > LIMIT {
            return Err(invalid());
        }
    }
    Ok((value, remaining))
}

/// Splits off the leading ASCII digits.
fn split_digits(s: &str) -> (&str, &str) {
    s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()))
}

/// The integer value of a digit run, or `None` when it exceeds 2^63.
fn leading_int(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |acc, b| {
        let next = acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        (next <= LIMIT).then_some(next)
    })
}

/// The fraction digits as `numerator / denominator`; digits that would overflow are
/// ignored (they only lose precision), as in Go.
fn leading_fraction(digits: &str) -> (u64, f64) {
    let mut numerator: u64 = 0;
    let mut denominator = 1.0;
    for b in digits.bytes() {
        let next = numerator
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .filter(|&n| n <= LIMIT && numerator <= (LIMIT - 1) / 10);
        match next {
            Some(n) => {
                numerator = n;
                denominator *= 10.0;
            }
            None => break,
        }
    }
    (numerator, denominator)
}

/// Nanoseconds per unit; both micro signs (U+00B5, U+03BC) are accepted.
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> i64 {
        match parse_go_duration(s) {
            Ok(d) => d.as_nanos(),
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn message(s: &str) -> String {
        match parse_go_duration(s) {
            Ok(d) => panic!("{s}: unexpectedly parsed as {d}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_go_examples() {
        assert_eq!(nanos("0"), 0);
        assert_eq!(nanos("-0"), 0);
        assert_eq!(nanos("+0"), 0);
        assert_eq!(nanos("5s"), 5_000_000_000);
        assert_eq!(nanos("30s"), 30_000_000_000);
        assert_eq!(nanos("1478s"), 1_478_000_000_000);
        assert_eq!(nanos("-5s"), -5_000_000_000);
        assert_eq!(nanos("+5s"), 5_000_000_000);
        assert_eq!(nanos("-0s"), 0);
        assert_eq!(nanos("5.0s"), 5_000_000_000);
        assert_eq!(nanos("5.6s"), 5_600_000_000);
        assert_eq!(nanos("5.s"), 5_000_000_000);
        assert_eq!(nanos(".5s"), 500_000_000);
        assert_eq!(nanos("1.004s"), 1_004_000_000);
        assert_eq!(nanos("100.00100s"), 100_001_000_000);
        assert_eq!(nanos("10ns"), 10);
        assert_eq!(nanos("11us"), 11_000);
        assert_eq!(nanos("12µs"), 12_000);
        assert_eq!(nanos("12μs"), 12_000);
        assert_eq!(nanos("13ms"), 13_000_000);
        assert_eq!(nanos("15m"), 900_000_000_000);
        assert_eq!(nanos("16h"), 57_600_000_000_000);
        assert_eq!(nanos("3h30m"), 12_600_000_000_000);
        assert_eq!(nanos("10.5s4m"), 250_500_000_000);
        assert_eq!(nanos("-2m3.4s"), -123_400_000_000);
        assert_eq!(nanos("1h2m3s4ms5us6ns"), 3_723_004_005_006);
        assert_eq!(nanos("39h9m14.425s"), 140_954_425_000_000);
        assert_eq!(nanos("52763797000ns"), 52_763_797_000);
        assert_eq!(nanos("0.3333333333333333333h"), 1_200_000_000_000);
        assert_eq!(nanos("9007199254740993ns"), 9_007_199_254_740_993);
        assert_eq!(nanos("9223372036854775807ns"), i64::MAX);
        assert_eq!(nanos("9223372036854775.807us"), i64::MAX);
        assert_eq!(nanos("-9223372036854775808ns"), i64::MIN);
        assert_eq!(nanos("-2562047h47m16.854775808s"), i64::MIN);
        assert_eq!(nanos("0.100000000000000000000h"), 360_000_000_000);
        assert_eq!(nanos("0.830103483285477580700h"), 2_988_372_539_827);
    }

    #[test]
    fn rejects_like_go() {
        assert_eq!(message(""), r#"time: invalid duration """#);
        assert_eq!(message("3"), r#"time: missing unit in duration "3""#);
        assert_eq!(message("-"), r#"time: invalid duration "-""#);
        assert_eq!(message("s"), r#"time: invalid duration "s""#);
        assert_eq!(message("."), r#"time: invalid duration ".""#);
        assert_eq!(message("-.s"), r#"time: invalid duration "-.s""#);
        assert_eq!(message(".s"), r#"time: invalid duration ".s""#);
        assert_eq!(message("+.s"), r#"time: invalid duration "+.s""#);
        assert_eq!(message("1d"), r#"time: unknown unit "d" in duration "1d""#);
        assert_eq!(
            message("1s "),
            r#"time: unknown unit "s " in duration "1s ""#
        );
        assert_eq!(
            message("1µ"),
            r#"time: unknown unit "\xc2\xb5" in duration "1\xc2\xb5""#
        );
        assert_eq!(
            message("9223372036854775808ns"),
            r#"time: invalid duration "9223372036854775808ns""#
        );
        assert_eq!(
            message("9223372036854775.808us"),
            r#"time: invalid duration "9223372036854775.808us""#
        );
        assert_eq!(
            message("-9223372036854775809ns"),
            r#"time: invalid duration "-9223372036854775809ns""#
        );
        assert_eq!(message("3000000h"), r#"time: invalid duration "3000000h""#);
        assert_eq!(
            message("1s-1s"),
            r#"time: unknown unit "s-" in duration "1s-1s""#
        );
        assert_eq!(
            message("1s+"),
            r#"time: unknown unit "s+" in duration "1s+""#
        );
    }

    #[test]
    fn interval_rule() {
        let ms = Duration::from_millis;
        assert_eq!(parse_opt_interval("interval", ""), Ok(None));
        assert_eq!(
            parse_opt_interval("interval", "0"),
            Ok(Some(Duration::ZERO))
        );
        assert_eq!(
            parse_opt_interval("interval", "0ms"),
            Ok(Some(Duration::ZERO))
        );
        assert_eq!(parse_opt_interval("interval", "1ms"), Ok(Some(ms(1))));
        assert_eq!(parse_opt_interval("timeout", "1m30s"), Ok(Some(ms(90_000))));
        let short = parse_opt_interval("interval", "50ns").map_err(|e| e.to_string());
        assert_eq!(
            short,
            Err(r#"Interval "interval" cannot be less than 1ms"#.to_owned())
        );
        let negative = parse_opt_interval("start-period", "-1s").map_err(|e| e.to_string());
        assert_eq!(
            negative,
            Err(r#"Interval "start-period" cannot be less than 1ms"#.to_owned())
        );
        assert!(matches!(
            parse_opt_interval("interval", "1x"),
            Err(Error::UnknownDurationUnit { .. })
        ));
    }

    #[test]
    fn go_duration_conversions() {
        assert_eq!(GoDuration(5).to_std(), Some(Duration::from_nanos(5)));
        assert_eq!(GoDuration(-5).to_std(), None);
        assert_eq!(GoDuration(7).to_string(), "7ns");
    }
}
