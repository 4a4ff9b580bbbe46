//! The fields of tar headers and the payloads of meta entries, decoded as Go's
//! `archive/tar` decodes them: numeric fields, the header checksum, PAX records (by
//! their length prefix, binary-safe) and PAX times, GNU long names.

use std::io;

/// An `InvalidData` error saying `what`.
pub(super) fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// A GNU long name without its NUL terminator(s).
pub(super) fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

/// Parses PAX records `"<len> <key>=<value>\n"` by their length prefix.
pub(super) fn parse_pax(mut data: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    while !data.is_empty() && data[0] != 0 {
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| invalid("PAX record without length"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("PAX record length is not a number"))?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(invalid("malformed PAX record"));
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| invalid("PAX record without `=`"))?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

/// A PAX time: `[-]seconds[.fraction]`, as (seconds, nanoseconds >= 0).
pub(super) fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut sec: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().take(9).collect();
    let mut nsec: u32 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    if secs.starts_with('-') && nsec > 0 {
        sec = sec.checked_sub(1)?;
        nsec = 1_000_000_000 - nsec;
    }
    Some((sec, nsec))
}

/// Whether a 512-byte block's header checksum field matches its bytes (the field itself
/// counted as spaces), which is what makes a block a tar header.
pub fn header_checksum_ok(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    let Ok(stored) = tar::Header::from_byte_slice(&block[..512]).cksum() else {
        return false;
    };
    stored == header_checksum(&block[..512])
}

/// The checksum of a 512-byte header block: the sum of its bytes, the checksum field
/// (bytes 148..156) counted as spaces.
pub(super) fn header_checksum(block: &[u8]) -> u32 {
    block
        .iter()
        .take(512)
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum()
}

/// A numeric header field read as Go's `archive/tar` reads it (what Docker and
/// containerd accept): octal with leading and trailing spaces and NULs ignored, an
/// empty field being 0 (some writers leave uid, gid or mtime unset); a base-256 field
/// (high bit set) is left to the `tar` crate's reading, `parsed`.
pub(super) fn numeric(field: &[u8], parsed: io::Result<u64>) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        return parsed.ok();
    }
    let start = field.iter().position(|b| !matches!(b, b' ' | 0));
    let Some(start) = start else {
        return Some(0);
    };
    let end = field
        .iter()
        .rposition(|b| !matches!(b, b' ' | 0))
        .unwrap_or(start);
    let digits = std::str::from_utf8(&field[start..=end]).ok()?;
    u64::from_str_radix(digits, 8).ok()
}
