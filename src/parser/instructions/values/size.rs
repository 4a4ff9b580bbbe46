//! Byte sizes as `docker/go-units` `RAMInBytes` (v0.5) reads them, for tmpfs `size=`.
//!
//! A size is a non-negative decimal number (Go `strconv.ParseFloat` syntax: sign, digits,
//! one dot, exponent), then an optional single space, then an optional case-insensitive
//! suffix: `b`, or one of `k m g t p` alone or followed by `b`, `i` or `ib`. Every multiple
//! is binary (`1k` = 1024). The result is truncated to whole bytes.
//!
//! Differences from Go, all on inputs nobody writes: hexadecimal floats (`0x1p4`), which Go
//! accepts, are rejected; a value of 2^63 bytes or more saturates instead of wrapping.

/// `go-units` `RAMInBytes`: a non-negative decimal number, an optional space, and an
/// optional case-insensitive suffix `b`, or `k m g t p` followed by nothing, `b`, `i` or
/// `ib` (all binary multiples). Fractions are truncated after scaling.
pub fn ram_in_bytes(text: &str) -> Option<u64> {
    let sep = text.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    // invariant: `sep` indexes an ASCII character, so both splits are on char boundaries.
    let (number, suffix) = if text.as_bytes().get(sep) == Some(&b' ') {
        (text.get(..sep)?, text.get(sep + 1..)?)
    } else {
        (text.get(..=sep)?, text.get(sep + 1..)?)
    };
    let size = go_parse_float(number)?;
    if size < 0.0 {
        return None;
    }
    if suffix.is_empty() {
        return Some(size as u64);
    }
    if suffix.len() > 3 {
        return None;
    }
    let suffix = suffix.to_lowercase();
    let bytes = suffix.as_bytes();
    let shift = match bytes.first()? {
        b'b' => return (bytes.len() == 1).then_some(size as u64),
        b'k' => 10,
        b'm' => 20,
        b'g' => 30,
        b't' => 40,
        b'p' => 50,
        _ => return None,
    };
    let valid_tail = match bytes.len() {
        2 => matches!(bytes.get(1), Some(b'i' | b'b')),
        3 => bytes.get(1..) == Some(b"ib".as_slice()),
        _ => true,
    };
    valid_tail.then_some((size * (1u64 << shift) as f64) as u64)
}

/// Go's `strconv.ParseFloat` for decimal text: sign, digits with at most one dot (at least
/// one digit), optional exponent; out-of-range values are errors.
fn go_parse_float(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (unsigned.get(..i)?, Some(unsigned.get(i + 1..)?)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(whole) && digits(fraction) && whole.len() + fraction.len() > 0;
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_units_sizes() {
        let cases = [
            ("0", 0),
            ("32", 32),
            ("32b", 32),
            ("32 B", 32),
            ("32k", 32 << 10),
            ("32K", 32 << 10),
            ("32kb", 32 << 10),
            ("32Kib", 32 << 10),
            ("32KIB", 32 << 10),
            ("64m", 64 << 20),
            ("64 MiB", 64 << 20),
            ("1g", 1 << 30),
            ("1.5g", 3 << 29),
            ("2t", 2 << 40),
            ("1p", 1 << 50),
            ("0.5k", 512),
            (".5k", 512),
            ("5.k", 5 << 10),
            ("1e3", 1000),
            ("+1k", 1024),
            ("-0", 0),
            ("1.0001", 1),
            ("1 ", 1),
        ];
        for (text, want) in cases {
            assert_eq!(ram_in_bytes(text), Some(want), "{text}");
        }
    }

    #[test]
    fn rejects_what_go_units_rejects() {
        for text in [
            "", "k", "-1", "-1k", "1kk", "1kbb", "1kx", "1x", "1bb", " 1", "1  k", ".", "1..2",
            "1.2.3", "1e", "e5", "1e400", "0x10", "1_000", "inf", "1 kib ",
        ] {
            assert_eq!(ram_in_bytes(text), None, "{text:?}");
        }
    }
}
