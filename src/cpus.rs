//! The number of CPUs this process may use, asked of the system once.
//!
//! `std::thread::available_parallelism` reads `/proc/self/cgroup`, the cgroup's CPU
//! quota and the affinity mask on every call: a dozen syscalls. Walks that decide per
//! directory whether to split their work (snapshot fingerprints, COPY writers) asked
//! it thousands of times per build; they ask this instead.

use std::sync::OnceLock;

/// CPUs available to this process (at least 1), as `available_parallelism` said the
/// first time it was asked.
pub fn available() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_what_the_system_says_and_stays_put() {
        let system = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(available(), system);
        assert_eq!(available(), available());
        assert!(available() >= 1);
    }
}
