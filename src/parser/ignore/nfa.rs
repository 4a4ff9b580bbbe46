//! A Thompson NFA for the parsed RE2 subset, run as a Pike-style state-set simulation.
//!
//! Matching is linear in `path length × program size`, never backtracks, and keeps the
//! closure on an explicit stack, so no pattern can blow the stack or the clock. The same
//! program also answers the pruning question "can this pattern match any path that
//! starts with `dir/`?" ([`Program::may_match_with_prefix`]), which a regex library
//! cannot: run the prefix, then search the graph for a way to the end.
//!
//! Go's `MatchString` on `^…$` is a search anchored by the leading `^`; `\Q` can swallow
//! the trailing `$`, in which case any extension of a match also matches. The simulation
//! therefore accepts as soon as the match state is reached.

use super::class::{is_word_char, CharClass};
use super::re2::{Assertion, Item, Node, Repeat};

/// One instruction.
#[derive(Debug, Clone)]
enum Inst {
    /// Consume one character of the class, then go to the next instruction.
    Char(CharClass),
    /// Continue at the next instruction if the assertion holds here.
    Assert(Assertion),
    /// Continue at both targets.
    Split(usize, usize),
    /// Continue at the target.
    Jump(usize),
    /// The whole expression has matched.
    Match,
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub(super) struct Program {
    insts: Vec<Inst>,
}

/// What is known around a position, for the zero-width assertions.
#[derive(Debug, Clone, Copy)]
struct Context {
    at_start: bool,
    prev: Option<char>,
    /// `Some(next)` when the next character is known, `None` at the end of input.
    next: Option<char>,
    /// The next character is unknown (pruning analysis): be permissive, except that
    /// the input certainly continues.
    unknown_next: bool,
}

impl Context {
    fn holds(&self, assertion: Assertion) -> bool {
        let word = |c: Option<char>| c.is_some_and(is_word_char);
        match assertion {
            Assertion::BeginText => self.at_start,
            Assertion::EndText => !self.unknown_next && self.next.is_none(),
            Assertion::WordBoundary if self.unknown_next => true,
            Assertion::NotWordBoundary if self.unknown_next => true,
            Assertion::WordBoundary => word(self.prev) != word(self.next),
            Assertion::NotWordBoundary => word(self.prev) == word(self.next),
        }
    }
}

impl Program {
    /// Compiles a parsed sequence.
    pub(super) fn compile(items: &[Item]) -> Self {
        let mut insts = Vec::new();
        emit_sequence(items, &mut insts);
        insts.push(Inst::Match);
        Program { insts }
    }

    /// Whether the expression matches `input` (anchored at its start).
    pub(super) fn is_match(&self, input: &str) -> bool {
        self.run(input, false).1
    }

    /// Whether some non-empty `tail` makes `prefix + tail` match. May answer `true` for a
    /// tail no real path has (e.g. one with `\n`): callers use it to decide that skipping
    /// is safe only on `false`.
    pub(super) fn may_match_with_prefix(&self, prefix: &str) -> bool {
        let (states, matched) = self.run(prefix, true);
        if matched {
            return true;
        }
        // Take one more (unknown) character from any state, then look for a path to Match.
        let mut seen = vec![false; self.insts.len()];
        let mut stack: Vec<usize> = states
            .iter()
            .filter(|&pc| matches!(self.insts.get(pc), Some(Inst::Char(_))))
            .map(|pc| pc + 1)
            .collect();
        while let Some(pc) = stack.pop() {
            match seen.get_mut(pc) {
                Some(slot) if !*slot => *slot = true,
                _ => continue,
            }
            // invariant: targets are in bounds by construction; `get` keeps it panic-free.
            let Some(inst) = self.insts.get(pc) else {
                continue;
            };
            match inst {
                Inst::Match => return true,
                Inst::Char(_) => stack.push(pc + 1),
                Inst::Assert(Assertion::BeginText) => {}
                Inst::Assert(_) => stack.push(pc + 1),
                Inst::Split(a, b) => stack.extend([*a, *b]),
                Inst::Jump(t) => stack.push(*t),
            }
        }
        false
    }

    /// Runs the simulation over `input`. Returns the final state set and whether the
    /// match state was reached on the way. With `open_end`, the input is a prefix: the
    /// final closure assumes more characters follow.
    fn run(&self, input: &str, open_end: bool) -> (StateSet, bool) {
        let mut current = StateSet::new(self.insts.len());
        let mut next = StateSet::new(self.insts.len());
        let mut chars = input.chars().peekable();
        let mut ctx = Context {
            at_start: true,
            prev: None,
            next: chars.peek().copied(),
            unknown_next: open_end && input.is_empty(),
        };
        self.add(&mut current, 0, ctx);
        while let Some(c) = chars.next() {
            if current.contains(self.match_pc()) {
                return (current, true);
            }
            ctx = Context {
                at_start: false,
                prev: Some(c),
                next: chars.peek().copied(),
                unknown_next: open_end && chars.peek().is_none(),
            };
            next.clear();
            for pc in current.iter() {
                if let Some(Inst::Char(class)) = self.insts.get(pc) {
                    if class.contains(c) {
                        self.add(&mut next, pc + 1, ctx);
                    }
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        let matched = current.contains(self.match_pc());
        (current, matched)
    }

    /// The index of the final [`Inst::Match`].
    fn match_pc(&self) -> usize {
        self.insts.len().saturating_sub(1)
    }

    /// Adds `start` and everything reachable from it without consuming input.
    fn add(&self, set: &mut StateSet, start: usize, ctx: Context) {
        let mut stack = vec![start];
        while let Some(pc) = stack.pop() {
            if !set.insert(pc) {
                continue;
            }
            match self.insts.get(pc) {
                Some(Inst::Assert(a)) if ctx.holds(*a) => stack.push(pc + 1),
                Some(Inst::Split(a, b)) => stack.extend([*b, *a]),
                Some(Inst::Jump(t)) => stack.push(*t),
                _ => {}
            }
        }
    }
}

fn emit_sequence(items: &[Item], insts: &mut Vec<Inst>) {
    for item in items {
        emit_item(item, insts);
    }
}

fn emit_item(item: &Item, insts: &mut Vec<Inst>) {
    match item.repeat {
        Repeat::One => emit_node(&item.node, insts),
        Repeat::ZeroOrMore => {
            let split = insts.len();
            insts.push(Inst::Jump(0));
            emit_node(&item.node, insts);
            insts.push(Inst::Jump(split));
            insts[split] = Inst::Split(split + 1, insts.len());
        }
        Repeat::OneOrMore => {
            let start = insts.len();
            emit_node(&item.node, insts);
            insts.push(Inst::Split(start, insts.len() + 1));
        }
        Repeat::ZeroOrOne => {
            let split = insts.len();
            insts.push(Inst::Jump(0));
            emit_node(&item.node, insts);
            insts[split] = Inst::Split(split + 1, insts.len());
        }
    }
}

fn emit_node(node: &Node, insts: &mut Vec<Inst>) {
    match node {
        Node::Class(class) => insts.push(Inst::Char(class.clone())),
        Node::Assert(a) => insts.push(Inst::Assert(*a)),
        Node::Group(items) => emit_sequence(items, insts),
    }
}

/// A set of program counters with insertion order and O(1) membership.
#[derive(Debug)]
struct StateSet {
    member: Vec<bool>,
    order: Vec<usize>,
}

impl StateSet {
    fn new(size: usize) -> Self {
        StateSet {
            member: vec![false; size],
            order: Vec::with_capacity(size),
        }
    }

    fn insert(&mut self, pc: usize) -> bool {
        match self.member.get_mut(pc) {
            Some(slot) if !*slot => {
                *slot = true;
                self.order.push(pc);
                true
            }
            _ => false,
        }
    }

    fn contains(&self, pc: usize) -> bool {
        self.member.get(pc).copied().unwrap_or(false)
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.order.iter().copied()
    }

    fn clear(&mut self) {
        for &pc in &self.order {
            if let Some(slot) = self.member.get_mut(pc) {
                *slot = false;
            }
        }
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::re2::parse;
    use super::*;

    fn program(text: &str) -> Program {
        Program::compile(&parse(text).unwrap())
    }

    #[test]
    fn matches_like_go() {
        let cases = [
            ("^[^/]*$", "abc", true),
            ("^[^/]*$", "a/b", false),
            ("^(.*/)?dir2/[^/]*$", "dir/dir2/file", true),
            ("^(.*/)?dir2/[^/]*$", "dir2/file", true),
            ("^(.*/)?dir2/[^/]*$", "dir/dir2/file/", false),
            ("^a[b-d]e$", "ace", true),
            ("^a[^b-d]e$", "aze", true),
            ("^a\\\\$", "a\\", true),
            ("^a^b[^/]*$", "a^b", false),
            ("^\\d[^/]*$", "7up", true),
            ("^\\Qa[^/]*$", "a[^/]*$tail", true),
            ("^a\\b$", "a", true),
            ("^a\\bb$", "ab", false),
        ];
        for (text, input, want) in cases {
            assert_eq!(program(text).is_match(input), want, "{text:?} on {input:?}");
        }
    }

    #[test]
    fn prefix_analysis() {
        let cases = [
            ("^[^/]*\\.md$", "node_modules/", false),
            ("^(.*/)?[^/]*\\.md$", "node_modules/", true),
            ("^dir/x[^/]*$", "dir/", true),
            ("^dir/x[^/]*$", "other/", false),
            ("^di[^/]*$", "dir/", false),
            ("^a^b$", "a/", false),
            ("^d/\\Q", "d/", true),
            ("^d/$", "d/", false),
        ];
        for (text, prefix, want) in cases {
            assert_eq!(
                program(text).may_match_with_prefix(prefix),
                want,
                "{text:?} after {prefix:?}"
            );
        }
    }
}
