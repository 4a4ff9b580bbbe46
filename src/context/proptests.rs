//! Property test of the walk against a brute-force reference: for random small trees and
//! one or two random filter layers, the walk lists exactly the reference set in
//! depth-first, bytewise-sorted order. The reference applies each layer to the previous
//! layer's output: keep the paths the layer admits plus their ancestors.
//!
//! Each case builds a real tree, so the default case count is proptest's (256, or
//! `PROPTEST_CASES`) divided by four.

use std::collections::BTreeSet;
use std::fs;

use proptest::prelude::*;

use super::{BuildContext, Filter};

const NAMES: &[&str] = &["a", "b", "ab", "a.b", "!", "[", "-"];
const TOKENS: &[&str] = &[
    "a", "b", "*", "**", "?", "/", "[a-b]", "!", ".", "\\[", "-", "[^a]",
];

fn pattern() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.4),
        prop::collection::vec(prop::sample::select(TOKENS), 1..4),
    )
        .prop_map(|(bang, t)| format!("{}{}", if bang { "!" } else { "" }, t.concat()))
}

/// A tree: up to 3 levels; the last component of each generated path is a file.
fn tree() -> impl Strategy<Value = BTreeSet<Vec<&'static str>>> {
    prop::collection::btree_set(
        prop::collection::vec(prop::sample::select(NAMES), 1..4),
        1..8,
    )
}

fn layer() -> impl Strategy<Value = (Vec<String>, Vec<String>)> {
    (
        prop::collection::vec(pattern(), 0..3),
        prop::collection::vec(pattern(), 0..4),
    )
}

/// Every path of the tree with whether it is a directory. A path that is a prefix of
/// another is a directory; the generator may ask for both `a` (file) and `a/b`, in
/// which case `a` is a directory.
fn materialize(files: &BTreeSet<Vec<&str>>) -> BTreeSet<(Vec<String>, bool)> {
    let mut out = BTreeSet::new();
    for f in files {
        for k in 1..=f.len() {
            let path: Vec<String> = f[..k].iter().map(|s| s.to_string()).collect();
            let is_dir = k < f.len() || files.iter().any(|g| g.len() > k && g[..k] == f[..]);
            out.insert((path, is_dir));
        }
    }
    out
}

fn reference(all: &BTreeSet<(Vec<String>, bool)>, filters: &[Filter]) -> Option<Vec<String>> {
    let mut set: BTreeSet<Vec<String>> = all.iter().map(|(p, _)| p.clone()).collect();
    for filter in filters {
        let mut next = BTreeSet::new();
        for path in &set {
            if filter.admits(&path.join("/")).ok()? {
                for k in 1..=path.len() {
                    next.insert(path[..k].to_vec());
                }
            }
        }
        set = next;
    }
    // Sorting component vectors is exactly pre-order with sorted names.
    Some(set.into_iter().map(|p| p.join("/")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: (ProptestConfig::default().cases / 4).max(1),
        ..ProptestConfig::default()
    })]

    #[test]
    fn walk_matches_reference(files in tree(), layers in prop::collection::vec(layer(), 1..3)) {
        let all = materialize(&files);
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (path, is_dir) in &all {
            let full = dir.path().join(path.join("/"));
            let made = if *is_dir { fs::create_dir_all(&full) } else { fs::write(&full, b"") };
            made.map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let Ok(filters) = layers
            .iter()
            .map(|(inc, exc)| Filter::from_patterns(inc, exc))
            .collect::<Result<Vec<_>, _>>() else { return Ok(()) };
        let Some(want) = reference(&all, &filters) else { return Ok(()) };
        let ctx = filters.into_iter().fold(BuildContext::new(dir.path()), BuildContext::with_filter);
        let Ok(entries) = ctx.entries() else { return Ok(()) };
        let got: Vec<String> = entries.iter().map(|e| e.path_str().to_owned()).collect();
        prop_assert_eq!(got, want);
    }
}
