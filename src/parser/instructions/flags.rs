//! Instruction flags (`--from=x`, `--link`, `--exclude=a --exclude=b`): BuildKit's
//! `BFlags`, with its exact errors.
//!
//! An instruction declares which flags it accepts and of which kind; [`Flags::parse`]
//! then reads the flag words the parser kept. A bool flag may be bare or `=true|false`;
//! a string flag needs `=value`; a strings flag may repeat. Anything undeclared is an
//! error that suggests the closest known flag.

use std::collections::BTreeMap;

use super::error::InstructionError;

/// The kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--name` or `--name=true|false`.
    Bool,
    /// `--name=value`, once.
    String,
    /// `--name=value`, repeatable.
    Strings,
}

#[derive(Debug, Clone)]
struct FlagDef {
    kind: FlagKind,
    default: String,
    values: Vec<String>,
    used: bool,
}

/// The declared flags of one instruction and, after [`Flags::parse`], their values.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    defs: BTreeMap<String, FlagDef>,
}

impl Flags {
    /// Declares a flag with its default value (`"true"`/`"false"` for bools).
    pub fn declare(&mut self, name: &str, kind: FlagKind, default: &str) -> &mut Self {
        let def = FlagDef {
            kind,
            default: default.to_owned(),
            values: Vec::new(),
            used: false,
        };
        self.defs.insert(name.to_owned(), def);
        self
    }

    /// Reads the flag words `args` (each starting with `--`).
    pub fn parse(&mut self, args: &[String]) -> Result<(), InstructionError> {
        for word in args {
            let Some(body) = word.strip_prefix("--") else {
                return Err(InstructionError::FlagWithoutDashes { word: word.clone() });
            };
            if body.is_empty() {
                return Ok(());
            }
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            if !self.defs.contains_key(name) {
                let suggestion = self.suggest(name);
                return Err(InstructionError::UnknownFlag {
                    flag: name.to_owned(),
                    suggestion,
                });
            }
            // invariant: checked just above.
            let Some(def) = self.defs.get_mut(name) else {
                continue;
            };
            if def.used && def.kind != FlagKind::Strings {
                return Err(InstructionError::DuplicateFlag {
                    flag: name.to_owned(),
                });
            }
            def.used = true;
            match (def.kind, value) {
                (FlagKind::Bool, None) => def.values = vec!["true".to_owned()],
                (FlagKind::Bool, Some("")) | (FlagKind::String | FlagKind::Strings, None) => {
                    return Err(InstructionError::MissingFlagValue {
                        flag: name.to_owned(),
                    });
                }
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    b @ ("true" | "false") => def.values = vec![b.to_owned()],
                    _ => {
                        let (flag, value) = (name.to_owned(), v.to_owned());
                        return Err(InstructionError::BadBool { flag, value });
                    }
                },
                (FlagKind::String, Some(v)) => def.values = vec![v.to_owned()],
                (FlagKind::Strings, Some(v)) => def.values.push(v.to_owned()),
            }
        }
        Ok(())
    }

    /// The closest declared flag name to `name`, if any is close.
    fn suggest(&self, name: &str) -> Option<String> {
        self.defs
            .keys()
            .map(|k| (edit_distance(k, name), k))
            .filter(|(d, k)| *d <= 2.max(k.len() / 3))
            .min()
            .map(|(_, k)| k.clone())
    }

    fn def(&self, name: &str) -> Option<&FlagDef> {
        self.defs.get(name)
    }

    /// The value of a string flag (its default when not given).
    pub fn string(&self, name: &str) -> String {
        self.def(name).map_or_else(String::new, |d| {
            d.values
                .last()
                .cloned()
                .unwrap_or_else(|| d.default.clone())
        })
    }

    /// The value of a string flag, `None` when it was not given.
    pub fn opt_string(&self, name: &str) -> Option<String> {
        self.def(name)
            .filter(|d| d.used)
            .and_then(|d| d.values.last().cloned())
    }

    /// The value of a bool flag.
    pub fn bool(&self, name: &str) -> bool {
        self.string(name) == "true"
    }

    /// All values of a repeatable flag.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.def(name).map(|d| d.values.clone()).unwrap_or_default()
    }

    /// Whether the flag appeared.
    pub fn is_used(&self, name: &str) -> bool {
        self.def(name).is_some_and(|d| d.used)
    }

    /// Names of the flags that appeared, sorted.
    pub fn used(&self) -> Vec<String> {
        self.defs
            .iter()
            .filter(|(_, d)| d.used)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// Edit distance with adjacent transpositions (optimal string alignment), for "did you
/// mean" hints: `chwon` is one step from `chown`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_kinds() {
        let mut f = Flags::default();
        f.declare("from", FlagKind::String, "")
            .declare("link", FlagKind::Bool, "false");
        f.declare("exclude", FlagKind::Strings, "");
        f.parse(&words(&[
            "--from=a",
            "--link",
            "--exclude=x",
            "--exclude=y",
        ]))
        .unwrap();
        assert_eq!(f.string("from"), "a");
        assert!(f.bool("link"));
        assert_eq!(f.strings("exclude"), ["x", "y"]);
        assert_eq!(f.used(), ["exclude", "from", "link"]);
    }

    #[test]
    fn errors_name_the_flag() {
        let mut f = Flags::default();
        f.declare("chown", FlagKind::String, "");
        let err = f.parse(&words(&["--chwon=1"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown flag: --chwon (did you mean --chown?)"
        );
        let err = f.parse(&words(&["--chown"])).unwrap_err();
        assert_eq!(err.to_string(), "missing a value on flag: chown");
    }
}
