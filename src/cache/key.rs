//! Cache keys: a versioned, canonical encoding of everything that decides a step's
//! result, hashed with SHA-256.
//!
//! A key is built from its parent's key and named inputs, in the order the caller adds
//! them (the plan decides which inputs a step has). Each input is a name and a value;
//! both are length-prefixed, so no two different input lists encode alike. The inputs
//! are also kept, readable, so that a later miss can say which one changed
//! ([`super::explain()`]). Values that are large (file contents, the environment) are
//! added as digests; secrets are never inputs.

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// Bumped whenever the encoding or the meaning of an input changes: old records then
/// simply never match.
pub const KEY_VERSION: &str = "rbuild-cache-v1";

/// A step's cache key.
pub type CacheKey = Digest;

/// A key's inputs by name, in the order they were added (a Vec: building a map for
/// every context file of every build would cost more than the rare explanation).
pub type Inputs = Vec<(String, String)>;

/// Builds one key.
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    hasher: Sha256,
    inputs: Inputs,
}

impl KeyBuilder {
    /// A key below `parent` (`None` for the first step of a stage from `scratch`).
    pub fn new(parent: Option<&CacheKey>) -> Self {
        let mut hasher = Sha256::new();
        field(&mut hasher, KEY_VERSION.as_bytes());
        match parent {
            Some(p) => field(&mut hasher, p.as_bytes()),
            None => field(&mut hasher, b""),
        }
        KeyBuilder {
            hasher,
            inputs: Vec::new(),
        }
    }

    /// Adds input `name` with `value`; the value is also kept for explanations.
    pub fn input(&mut self, name: &str, value: &str) -> &mut Self {
        self.input_owned(name.to_owned(), value.to_owned())
    }

    /// Makes room for `more` inputs.
    pub fn reserve(&mut self, more: usize) {
        self.inputs.reserve_exact(more);
    }

    /// [`input`](Self::input) for strings the caller gives up (no copy: a COPY of 100k
    /// files has as many inputs).
    pub fn input_owned(&mut self, name: String, value: String) -> &mut Self {
        field(&mut self.hasher, name.as_bytes());
        field(&mut self.hasher, value.as_bytes());
        self.inputs.push((name, value));
        self
    }

    /// Adds a list input (the order matters) as one value per element.
    pub fn list<S: AsRef<str>>(&mut self, name: &str, values: &[S]) -> &mut Self {
        let joined: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
        field(&mut self.hasher, name.as_bytes());
        field(&mut self.hasher, &(values.len() as u64).to_le_bytes());
        for v in &joined {
            field(&mut self.hasher, v.as_bytes());
        }
        self.inputs.push((
            name.to_owned(),
            serde_json::to_string(&joined).unwrap_or_default(),
        ));
        self
    }

    /// The key and the inputs that made it.
    pub fn finish(self) -> (CacheKey, Inputs) {
        let bytes: [u8; 32] = self.hasher.finalize().into();
        (Digest::from_bytes(bytes), self.inputs)
    }
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parent: Option<&CacheKey>, inputs: &[(&str, &str)]) -> CacheKey {
        let mut b = KeyBuilder::new(parent);
        for (n, v) in inputs {
            b.input(n, v);
        }
        b.finish().0
    }

    #[test]
    fn keys_are_stable_and_sensitive() {
        let a = key(None, &[("cmd", "echo hi")]);
        assert_eq!(a, key(None, &[("cmd", "echo hi")]));
        assert_ne!(a, key(None, &[("cmd", "echo ho")]));
        assert_ne!(a, key(Some(&a), &[("cmd", "echo hi")]));
        // Length prefixes: moving bytes between name and value changes the key.
        assert_ne!(key(None, &[("ab", "c")]), key(None, &[("a", "bc")]));
        assert_ne!(
            key(None, &[("a", "b"), ("c", "d")]),
            key(None, &[("a", "b\u{8}\u{0}c"), ("", "d")])
        );
    }

    #[test]
    fn lists_keep_order_and_boundaries() {
        let l = |v: &[&str]| {
            let mut b = KeyBuilder::new(None);
            b.list("env", v);
            b.finish()
        };
        assert_ne!(l(&["A=1", "B=2"]).0, l(&["B=2", "A=1"]).0);
        assert_ne!(l(&["A=1B=2"]).0, l(&["A=1", "B=2"]).0);
        assert_eq!(l(&["A=1"]).1, [("env".to_owned(), "[\"A=1\"]".to_owned())]);
    }
}
