//! A parser for the subset of Go RE2 syntax that [`super::translate`] can produce.
//!
//! BuildKit compiles its generated text with Go's `regexp.Compile` (Perl flags), so a
//! pattern's meaning is whatever Go makes of that text: `\d` is an ASCII digit, `^` in the
//! middle is an anchor that never holds, `[a*]` becomes the class `[a[^/]` repeated and a
//! literal `]`, a reversed range is an error. This module reproduces Go's parser for
//! everything the translation can emit: literals, `.`, `^`, `$`, classes (with `[:name:]`,
//! `\pX`, `\d`-style members and Go's escapes), groups, `*`/`+`/`?` (with an optional lazy
//! `?`, which cannot change a full-match answer) and the escapes `\A \z \b \B \Q…\E`.
//! Alternation and `(?` groups cannot be produced and are reported as unsupported.

use super::class::{self, CharClass, Member};
use super::error::PatternErrorKind;

/// A zero-width test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Assertion {
    /// `^` or `\A`: at the start of the input.
    BeginText,
    /// `$` or `\z`: at the end of the input.
    EndText,
    /// `\b`: between an ASCII word character and a non-word character.
    WordBoundary,
    /// `\B`: not at a word boundary.
    NotWordBoundary,
}

/// One element of a sequence.
#[derive(Debug, Clone)]
pub(super) enum Node {
    /// One character from a class.
    Class(CharClass),
    /// A zero-width assertion.
    Assert(Assertion),
    /// A parenthesised sub-sequence.
    Group(Vec<Item>),
}

/// How often a node repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Repeat {
    /// Exactly once.
    One,
    /// `*`
    ZeroOrMore,
    /// `+`
    OneOrMore,
    /// `?`
    ZeroOrOne,
}

/// A node with its repetition.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub node: Node,
    pub repeat: Repeat,
}

type Parsed<T> = Result<T, PatternErrorKind>;

/// Parses RE2 text into a sequence of items.
pub(super) fn parse(text: &str) -> Parsed<Vec<Item>> {
    let mut parser = Parser { rest: text };
    parser.sequence(false)
}

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.rest = &self.rest[c.len_utf8()..];
        Some(c)
    }

    fn sequence(&mut self, in_group: bool) -> Parsed<Vec<Item>> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                ')' if in_group => {
                    self.bump();
                    return Ok(items);
                }
                ')' => return Err(PatternErrorKind::UnbalancedGroup),
                '(' => {
                    self.bump();
                    if self.peek() == Some('?') {
                        return Err(PatternErrorKind::UnsupportedSyntax { construct: '(' });
                    }
                    let inner = self.sequence(true)?;
                    items.push(one(Node::Group(inner)));
                }
                '|' => return Err(PatternErrorKind::UnsupportedSyntax { construct: '|' }),
                '*' | '+' | '?' => self.repeat(&mut items)?,
                '^' => self.assert(&mut items, Assertion::BeginText),
                '$' => self.assert(&mut items, Assertion::EndText),
                '.' => {
                    self.bump();
                    items.push(one(Node::Class(CharClass::any_but_newline())));
                }
                '[' => {
                    self.bump();
                    let class = self.class()?;
                    items.push(one(Node::Class(class)));
                }
                '\\' => self.escape(&mut items)?,
                c => {
                    self.bump();
                    items.push(one(Node::Class(CharClass::literal(c))));
                }
            }
        }
        if in_group {
            return Err(PatternErrorKind::UnbalancedGroup);
        }
        Ok(items)
    }

    fn assert(&mut self, items: &mut Vec<Item>, assertion: Assertion) {
        self.bump();
        items.push(one(Node::Assert(assertion)));
    }

    /// A repetition operator applies to the previous item, which must not already repeat.
    fn repeat(&mut self, items: &mut [Item]) -> Parsed<()> {
        let repeat = match self.bump() {
            Some('*') => Repeat::ZeroOrMore,
            Some('+') => Repeat::OneOrMore,
            _ => Repeat::ZeroOrOne,
        };
        if self.peek() == Some('?') {
            // Non-greedy: irrelevant to whether a match exists.
            self.bump();
        }
        match items.last_mut() {
            Some(last) if last.repeat == Repeat::One => {
                last.repeat = repeat;
                Ok(())
            }
            _ => Err(PatternErrorKind::MisplacedRepeat),
        }
    }

    /// A `\` outside a class.
    fn escape(&mut self, items: &mut Vec<Item>) -> Parsed<()> {
        let rest: &'a str = self.rest;
        let mut after = rest[1..].chars();
        let assertion = match after.next() {
            Some('A') => Some(Assertion::BeginText),
            Some('z') => Some(Assertion::EndText),
            Some('b') => Some(Assertion::WordBoundary),
            Some('B') => Some(Assertion::NotWordBoundary),
            Some('C') => {
                return Err(PatternErrorKind::InvalidEscape {
                    escape: "\\C".into(),
                })
            }
            Some('Q') => {
                self.quoted(items, after.as_str());
                return Ok(());
            }
            _ => None,
        };
        if let Some(assertion) = assertion {
            self.rest = after.as_str();
            items.push(one(Node::Assert(assertion)));
            return Ok(());
        }
        let member = match self.class_escape()? {
            Some(member) => CharClass::new(false, vec![member]),
            None => CharClass::literal(self.single_escape()?),
        };
        items.push(one(Node::Class(member)));
        Ok(())
    }

    /// `\Q…\E`: everything up to `\E` (or the end) is literal.
    fn quoted(&mut self, items: &mut Vec<Item>, body: &'a str) {
        let (literal, rest) = body.split_once("\\E").unwrap_or((body, ""));
        items.extend(
            literal
                .chars()
                .map(|c| one(Node::Class(CharClass::literal(c)))),
        );
        self.rest = rest;
    }

    /// `\pX`, `\PX` or a Perl class at the cursor, consumed; `None` if there is none.
    fn class_escape(&mut self) -> Parsed<Option<Member>> {
        let mut chars = self.rest.chars();
        chars.next();
        let Some(kind) = chars.next() else {
            return Ok(None);
        };
        if kind == 'p' || kind == 'P' {
            let name = chars.next();
            let member = name.and_then(|n| class::unicode_category(n, kind == 'P'));
            let Some(member) = member else {
                return Err(PatternErrorKind::UnknownClass {
                    name: format!("\\{kind}{}", name.map(String::from).unwrap_or_default()),
                });
            };
            self.rest = chars.as_str();
            return Ok(Some(member));
        }
        let member = class::perl_class(kind);
        if member.is_some() {
            self.rest = chars.as_str();
        }
        Ok(member)
    }

    /// Go's `parseEscape`: a `\` escape standing for one character.
    fn single_escape(&mut self) -> Parsed<char> {
        let start = self.rest;
        self.bump();
        let c = self.bump().ok_or(PatternErrorKind::TrailingBackslash)?;
        let value = match c {
            '0'..='7' => self.octal(c),
            'x' => self.hex(),
            'a' => Some('\x07'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Some(c),
            _ => None,
        };
        value.ok_or_else(|| PatternErrorKind::InvalidEscape {
            escape: start[..start.len() - self.rest.len()].to_owned(),
        })
    }

    /// `\0`, `\0NN`, `\NN`: up to three octal digits. A lone `\1`…`\7` is a backreference,
    /// which RE2 rejects.
    fn octal(&mut self, first: char) -> Option<char> {
        let is_octal = |c: Option<char>| c.is_some_and(|c| ('0'..='7').contains(&c));
        if first != '0' && !is_octal(self.peek()) {
            return None;
        }
        let mut value = first.to_digit(8)?;
        for _ in 0..2 {
            if !is_octal(self.peek()) {
                break;
            }
            value = value * 8 + self.bump().and_then(|d| d.to_digit(8))?;
        }
        char::from_u32(value)
    }

    /// `\xHH`. The braced form `\x{…}` cannot be produced (braces are always escaped).
    fn hex(&mut self) -> Option<char> {
        let hi = self.bump()?.to_digit(16)?;
        let lo = self.bump()?.to_digit(16)?;
        char::from_u32(hi * 16 + lo)
    }

    /// A class after its `[`, up to and including the closing `]` (Go's `parseClass`).
    fn class(&mut self) -> Parsed<CharClass> {
        let negated = self.rest.starts_with('^');
        if negated {
            self.bump();
        }
        let mut members = Vec::new();
        let mut first = true;
        while first || !self.rest.starts_with(']') {
            first = false;
            if let Some(member) = self.named_class()? {
                members.push(member);
                continue;
            }
            if self.rest.starts_with('\\') {
                if let Some(member) = self.class_escape()? {
                    members.push(member);
                    continue;
                }
            }
            members.push(self.class_range()?);
        }
        self.bump();
        Ok(CharClass::new(negated, members))
    }

    /// `[:name:]` inside a class. Like Go, the closing `:]` is searched in all the
    /// remaining text; without one, the `[` is an ordinary member.
    fn named_class(&mut self) -> Parsed<Option<Member>> {
        if self.rest.len() <= 2 || !self.rest.starts_with("[:") {
            return Ok(None);
        }
        let Some(end) = self.rest[2..].find(":]") else {
            return Ok(None);
        };
        let name = &self.rest[2..2 + end];
        let member = class::posix_class(name).ok_or_else(|| PatternErrorKind::UnknownClass {
            name: format!("[:{name}:]"),
        })?;
        self.rest = &self.rest[end + 4..];
        Ok(Some(member))
    }

    /// A member or `lo-hi` range; `-` just before `]` is a literal.
    fn class_range(&mut self) -> Parsed<Member> {
        let lo = self.class_char()?;
        let mut hi = lo;
        if self.rest.len() >= 2 && self.rest.starts_with('-') && !self.rest[1..].starts_with(']') {
            self.bump();
            hi = self.class_char()?;
            if hi < lo {
                return Err(PatternErrorKind::ReversedRange { lo, hi });
            }
        }
        Ok(Member::Range(lo, hi))
    }

    fn class_char(&mut self) -> Parsed<char> {
        match self.peek() {
            None => Err(PatternErrorKind::UnterminatedClass),
            Some('\\') => self.single_escape(),
            Some(_) => self.bump().ok_or(PatternErrorKind::UnterminatedClass),
        }
    }
}

fn one(node: Node) -> Item {
    Item {
        node,
        repeat: Repeat::One,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<String> {
        parse(text)
            .unwrap()
            .iter()
            .map(|i| match &i.node {
                Node::Class(_) => format!("C{:?}", i.repeat),
                Node::Assert(a) => format!("{a:?}"),
                Node::Group(g) => format!("G{}{:?}", g.len(), i.repeat),
            })
            .collect()
    }

    #[test]
    fn generated_shapes() {
        assert_eq!(
            kinds("^(.*/)?[^/]*$"),
            ["BeginText", "G2ZeroOrOne", "CZeroOrMore", "EndText"]
        );
        // `[a*]` becomes the class `[a[^/]` repeated, then a literal `]`.
        assert_eq!(
            kinds("^[a[^/]*]$"),
            ["BeginText", "CZeroOrMore", "COne", "EndText"]
        );
        assert_eq!(kinds("^\\Qa*\\Eb"), ["BeginText", "COne", "COne", "COne"]);
    }

    #[test]
    fn errors_like_go() {
        use PatternErrorKind::*;
        for (text, want) in [
            ("^[Local-Only]$", ReversedRange { lo: 'l', hi: 'O' }),
            (
                "^[[:foo:]]$",
                UnknownClass {
                    name: "[:foo:]".into(),
                },
            ),
            (
                "^\\pX$",
                UnknownClass {
                    name: "\\pX".into(),
                },
            ),
            (
                "^\\y$",
                InvalidEscape {
                    escape: "\\y".into(),
                },
            ),
            (
                "^\\é$",
                InvalidEscape {
                    escape: "\\é".into(),
                },
            ),
            (
                "^\\1$",
                InvalidEscape {
                    escape: "\\1".into(),
                },
            ),
            (
                "^\\x4$",
                InvalidEscape {
                    escape: "\\x4$".into(),
                },
            ),
            ("^[a", UnterminatedClass),
            ("^a)", UnbalancedGroup),
            ("^(a", UnbalancedGroup),
            ("*", MisplacedRepeat),
            ("a**", MisplacedRepeat),
        ] {
            assert_eq!(parse(text).err(), Some(want), "{text:?}");
        }
    }

    #[test]
    fn escapes_and_classes_parse() {
        for text in [
            "^\\d\\D\\s\\w\\pL\\PN$",
            "^[\\]a]$",
            "^[\\-x]$",
            "^[[:alpha:][:^digit:]\\d\\pL]$",
            "^[[:x]$",
            "^\\x41\\101\\0\\n\\.$",
            "^\\Aa\\bb\\Bc\\z$",
            "^a*?$",
        ] {
            assert!(parse(text).is_ok(), "{text:?}");
        }
    }
}
