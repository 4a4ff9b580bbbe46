//! The variables an expansion reads: the [`EnvGetter`] trait and the [`EnvList`] set.
//!
//! Owns variable lookup only; where the values come from (ARG, ENV, build args, the base
//! image) is the instruction layer's business. Names are case-sensitive, as on Unix: rbuild
//! builds Linux images, so BuildKit's Windows rule (names compared upper-cased) does not
//! apply.
//!
//! Invariant of [`EnvList`]: each name appears once, at the position where it was first set.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

/// Read access to a set of variables.
pub trait EnvGetter {
    /// The value of `key`, or `None` when it is unset. `Some("")` is set but empty.
    fn get(&self, key: &str) -> Option<&str>;

    /// The names of all set variables (used for "did you mean" suggestions).
    fn keys(&self) -> Vec<String>;
}

/// An ordered set of variables built from `KEY=VALUE` entries.
///
/// Cloning is cheap (the entries are shared); [`EnvList::set`] copies them only when they
/// are shared, so the instruction layer can snapshot the ARG/ENV state per instruction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList {
    entries: Arc<Vec<(String, String)>>,
}

impl EnvList {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the set from `KEY=VALUE` entries, like BuildKit's `EnvsFromSlice`.
    ///
    /// Each entry is split at its first `=`; an entry without `=` sets `KEY` to `""`. A
    /// later entry for the same name replaces the earlier value.
    pub fn from_slice<S: AsRef<str>>(entries: &[S]) -> Self {
        entries.iter().collect()
    }

    /// Sets `key` to `value`, keeping the position of an existing `key`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        let entries = Arc::make_mut(&mut self.entries);
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => entries.push((key, value)),
        }
    }

    /// Adds one `KEY=VALUE` (or bare `KEY`) entry.
    pub fn push_entry(&mut self, entry: &str) {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        self.set(key, value);
    }

    /// The value of `key`, or `None` when it is unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The variables, in the order their names were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of distinct variables.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no variable is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for EnvList {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut env = EnvList::new();
        for entry in iter {
            env.push_entry(entry.as_ref());
        }
        env
    }
}

impl EnvGetter for EnvList {
    fn get(&self, key: &str) -> Option<&str> {
        EnvList::get(self, key)
    }

    fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.clone()).collect()
    }
}

impl EnvGetter for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }

    fn keys(&self) -> Vec<String> {
        BTreeMap::keys(self).cloned().collect()
    }
}

impl<H: BuildHasher> EnvGetter for HashMap<String, String, H> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = HashMap::keys(self).cloned().collect();
        keys.sort();
        keys
    }
}

impl<E: EnvGetter + ?Sized> EnvGetter for &E {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }

    fn keys(&self) -> Vec<String> {
        (**self).keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_entries_win_and_keep_first_position() {
        let env = EnvList::from_slice(&["a=1", "b=2", "a=3=4", "c"]);
        assert_eq!(env.get("a"), Some("3=4"));
        assert_eq!(env.get("c"), Some(""));
        assert_eq!(env.get("d"), None);
        assert_eq!(EnvGetter::keys(&env), ["a", "b", "c"]);
    }

    #[test]
    fn names_are_case_sensitive() {
        let env = EnvList::from_slice(&["PWD=/home"]);
        assert_eq!(env.get("pwd"), None);
    }

    #[test]
    fn clones_are_independent() {
        let base = EnvList::from_slice(&["a=1"]);
        let mut next = base.clone();
        next.set("a", "2");
        next.set("b", "3");
        assert_eq!(base.get("a"), Some("1"));
        assert_eq!(base.len(), 1);
        assert_eq!(next.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "3")]);
    }
}
