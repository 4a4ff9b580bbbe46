//! TEMPORARY local shim (not committed): replaced by the real lexer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shell error")]
pub struct Error;
#[derive(Default)]
pub struct EnvList;
pub struct Lex {
    pub raw_quotes: bool,
    pub raw_escapes: bool,
    pub skip_unset_env: bool,
}
impl Lex {
    pub fn new(_e: char) -> Self {
        Lex {
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
        }
    }
    pub fn process_words(&self, s: &str, _env: &EnvList) -> Result<Vec<String>, Error> {
        let mut out = vec![];
        let mut cur = String::new();
        let mut q: Option<char> = None;
        let mut any = false;
        for c in s.chars() {
            match q {
                Some(qc) if c == qc => {
                    q = None;
                    if self.raw_quotes {
                        cur.push(c)
                    }
                }
                Some(_) => cur.push(c),
                None if c == '\'' || c == '"' => {
                    q = Some(c);
                    any = true;
                    if self.raw_quotes {
                        cur.push(c)
                    }
                }
                None if c.is_whitespace() => {
                    if !cur.is_empty() || any {
                        out.push(std::mem::take(&mut cur));
                        any = false
                    }
                }
                None => cur.push(c),
            }
        }
        if q.is_some() {
            return Err(Error);
        }
        if !cur.is_empty() || any {
            out.push(cur)
        }
        Ok(out)
    }
}
