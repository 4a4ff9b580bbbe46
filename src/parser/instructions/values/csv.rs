//! The single-line CSV reader BuildKit uses for `--mount` and `--device` values
//! (`github.com/tonistiigi/go-csvvalue` with its defaults, which behaves like Go's
//! `encoding/csv` reading one record).
//!
//! Rules: fields are separated by `,`; a field that starts with `"` is quoted and ends at a
//! `"` followed by `,` or the end, with `""` standing for one quote; a `"` anywhere in an
//! unquoted field is an error. One trailing `\n` (or `\r\n`) is dropped, and empty input is
//! the error `EOF`. Leading spaces are kept.

use super::error::CsvError;

/// Splits `input` into its CSV fields.
pub(crate) fn fields(input: &str) -> Result<Vec<String>, CsvError> {
    let line = input
        .strip_suffix("\r\n")
        .or_else(|| input.strip_suffix('\n'))
        .unwrap_or(input);
    if line.is_empty() {
        return Err(CsvError::Eof);
    }
    let mut out = Vec::new();
    // `pos` is the byte offset of `rest` in `line`; error columns are 1-based bytes.
    let mut pos = 0;
    let mut rest = line;
    loop {
        let consumed = match rest.strip_prefix('"') {
            None => unquoted_field(rest, pos, &mut out)?,
            Some(after_quote) => quoted_field(after_quote, pos + 1, &mut out)?.map(|n| n + 1),
        };
        match consumed {
            // invariant: `n` counts bytes up to and including an ASCII `,`, so it is a char
            // boundary of `rest`.
            Some(n) => {
                rest = rest.get(n..).unwrap_or_default();
                pos += n;
            }
            None => return Ok(out),
        }
    }
}

/// Reads an unquoted field at the start of `rest` (offset `pos`). Returns the bytes consumed
/// including the separator, or `None` at the end of the line.
fn unquoted_field(
    rest: &str,
    pos: usize,
    out: &mut Vec<String>,
) -> Result<Option<usize>, CsvError> {
    let (field, next) = match rest.split_once(',') {
        Some((field, _)) => (field, Some(field.len() + 1)),
        None => (rest, None),
    };
    if let Some(j) = field.find('"') {
        return Err(CsvError::BareQuote {
            column: pos + j + 1,
        });
    }
    out.push(field.to_owned());
    Ok(next)
}

/// Reads a quoted field whose opening quote has been removed; `rest` starts at offset `pos`.
/// Returns the bytes consumed after the opening quote (including the separator), or `None`
/// when the field ends the line.
fn quoted_field(rest: &str, pos: usize, out: &mut Vec<String>) -> Result<Option<usize>, CsvError> {
    let mut field = String::new();
    let mut offset = 0;
    loop {
        let tail = rest.get(offset..).unwrap_or_default();
        let Some(i) = tail.find('"') else {
            return Err(CsvError::Quote {
                column: pos + offset + 1,
            });
        };
        field.push_str(tail.get(..i).unwrap_or_default());
        offset += i + 1;
        match rest.as_bytes().get(offset) {
            Some(b'"') => {
                field.push('"');
                offset += 1;
            }
            Some(b',') => {
                out.push(field);
                return Ok(Some(offset + 1));
            }
            None => {
                out.push(field);
                return Ok(None);
            }
            // The closing quote is followed by something else: report the quote itself.
            Some(_) => {
                return Err(CsvError::Quote {
                    column: pos + offset,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Vec<String> {
        match fields(input) {
            Ok(f) => f,
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    #[test]
    fn splits_plain_and_quoted_fields() {
        assert_eq!(ok("foo,bar,baz"), ["foo", "bar", "baz"]);
        assert_eq!(ok("foo,bar,baz\r\n"), ["foo", "bar", "baz"]);
        assert_eq!(ok(" "), [" "]);
        assert_eq!(ok(r#"a,"b,cc ,ddd",e"#), ["a", "b,cc ,ddd", "e"]);
        assert_eq!(ok(r#""""#), [""]);
        assert_eq!(ok(r#"a,"foo""",c"#), ["a", "foo\"", "c"]);
        assert_eq!(ok("a,,b"), ["a", "", "b"]);
        assert_eq!(ok("a,b,"), ["a", "b", ""]);
        assert_eq!(ok(",,"), ["", "", ""]);
        assert_eq!(ok(r#""a",b,"c""#), ["a", "b", "c"]);
        assert_eq!(ok("ü,é"), ["ü", "é"]);
    }

    #[test]
    fn reports_go_csv_errors_with_columns() {
        assert_eq!(fields(""), Err(CsvError::Eof));
        assert_eq!(fields("\n"), Err(CsvError::Eof));
        assert_eq!(fields("\""), Err(CsvError::Quote { column: 2 }));
        assert_eq!(fields(r#"""""#), Err(CsvError::Quote { column: 4 }));
        assert_eq!(
            fields(r#"foo,aa"bb,cc"#),
            Err(CsvError::BareQuote { column: 7 })
        );
        assert_eq!(fields(r#"a""b,c"#), Err(CsvError::BareQuote { column: 2 }));
        assert_eq!(
            fields(r#"a "word","b""#),
            Err(CsvError::BareQuote { column: 3 })
        );
        assert_eq!(
            fields(r#""a word",b""#),
            Err(CsvError::BareQuote { column: 11 })
        );
        assert_eq!(
            fields(r#""a "word","b""#),
            Err(CsvError::Quote { column: 4 })
        );
        let message = fields(r#"x"y"#).map_err(|e| e.to_string());
        assert_eq!(
            message,
            Err("parse error on line 1, column 2: bare \" in non-quoted-field".to_owned())
        );
    }
}
