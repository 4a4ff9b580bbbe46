//! The "(did you mean X?)" hint BuildKit appends to some errors (`util/suggest`).
//!
//! BuildKit picks the first option whose Levenshtein distance to the value is below 3 and
//! smaller than any earlier one, and gives no hint when the value equals an option. Where
//! BuildKit iterates a Go map (mount types, sharing modes) its order is random; rbuild uses
//! the fixed order of the lists passed in, so ties resolve deterministically.

/// Returns the closest option to `value` (case-sensitive), if any is within distance 2.
pub(crate) fn closest(value: &str, options: &[&str]) -> Option<String> {
    let mut best: Option<&str> = None;
    let mut best_distance = 3;
    for &option in options {
        if option == value {
            return None;
        }
        let distance = levenshtein(value, option);
        if distance < best_distance {
            best = Some(option);
            best_distance = distance;
        }
    }
    best.map(str::to_owned)
}

/// Edit distance over Unicode scalar values with unit costs.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_levenshtein() {
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("bnd", "bind"), 1);
        assert_eq!(levenshtein("µs", "us"), 1);
    }

    #[test]
    fn suggests_only_close_non_identical_options() {
        let options = ["bind", "cache", "tmpfs", "secret", "ssh"];
        assert_eq!(closest("bnd", &options).as_deref(), Some("bind"));
        assert_eq!(closest("sercet", &options).as_deref(), Some("secret"));
        assert_eq!(closest("volume", &options), None);
        assert_eq!(closest("bind", &options), None);
    }
}
