//! Fault rules for [`super::FaultProxy`]: which requests to disturb, how, how many times,
//! and counters of what happened.
//!
//! Every rule whose predicate matches a request counts it as `seen`; the first matching
//! rule with budget left applies its fault and counts it as `faulted`. After `times`
//! faults a rule lets requests through (still counting them).

use std::fmt;
use std::sync::Arc;

/// What a rule does to a matching request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (e.g. 500) and a registry-style JSON error; the request
    /// never reaches the registry.
    Status(u16),
    /// Answer `429 Too Many Requests` with `Retry-After: 1`, without forwarding.
    TooManyRequests,
    /// Read the request, then close the connection without a response.
    Drop,
    /// Forward; pass the head and only the first half of a 200/206 body, then close.
    CutBody,
    /// Forward; pass a 200/206 body with its middle byte inverted (same length), as a
    /// corrupted blob download that only a digest check can notice.
    CorruptBody,
    /// Forward; pass the head and the first half of a 200/206 body, then hold the rest
    /// until [`super::FaultProxy::resume_stalled`]: a download caught half-way, for as
    /// long as a test needs to look at it.
    StallBody,
    /// Hold the request, its body unread, until [`super::FaultProxy::resume_stalled`],
    /// then forward it: an upload caught before it is done.
    Hold,
}

impl Fault {
    /// Whether the fault is applied to the registry's response (else instead of it,
    /// or, for [`Fault::Hold`], before it).
    pub fn on_response(self) -> bool {
        matches!(self, Fault::CutBody | Fault::CorruptBody | Fault::StallBody)
    }
}

type Predicate = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Which requests a fault applies to, and how many times.
#[derive(Clone)]
pub struct Rule {
    fault: Fault,
    method: Option<String>,
    path_contains: Vec<String>,
    predicate: Option<Predicate>,
    times: usize,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("fault", &self.fault)
            .field("method", &self.method)
            .field("path_contains", &self.path_contains)
            .field("predicate", &self.predicate.is_some())
            .field("times", &self.times)
            .finish()
    }
}

impl Rule {
    /// `fault` on every request, once.
    pub fn new(fault: Fault) -> Rule {
        Rule {
            fault,
            method: None,
            path_contains: Vec::new(),
            predicate: None,
            times: 1,
        }
    }

    /// Only requests with this method (`GET`, `HEAD`, `PATCH`, ...).
    pub fn method(mut self, method: &str) -> Rule {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose target (path and query) contains `needle`; repeatable, all
    /// must match.
    pub fn path_contains(mut self, needle: &str) -> Rule {
        self.path_contains.push(needle.to_owned());
        self
    }

    /// Only requests for which `predicate(method, target)` holds.
    pub fn matching(
        mut self,
        predicate: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
    ) -> Rule {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Apply the fault `n` times (default 1), then let matching requests through.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self
                .path_contains
                .iter()
                .all(|n| target.contains(n.as_str()))
            && self.predicate.as_ref().is_none_or(|p| p(method, target))
    }
}

/// A rule added to a proxy, for [`super::FaultProxy::counts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleId(pub(super) usize);

/// How many requests a rule matched, and to how many it applied its fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCounts {
    /// Matching requests, faulted or not.
    pub seen: usize,
    /// Requests the fault was applied to.
    pub faulted: usize,
}

/// The rules of one proxy with their counters.
#[derive(Debug, Default)]
pub struct Rules {
    entries: Vec<(Rule, RuleCounts)>,
}

impl Rules {
    /// Adds a rule after the existing ones.
    pub fn add(&mut self, rule: Rule) -> RuleId {
        self.entries.push((rule, RuleCounts::default()));
        RuleId(self.entries.len() - 1)
    }

    /// Counters of rule `id`.
    pub fn counts(&self, id: RuleId) -> RuleCounts {
        self.entries.get(id.0).map(|(_, c)| *c).unwrap_or_default()
    }

    /// Counts a request and picks the fault to apply, if any (its budget is taken).
    pub fn decide(&mut self, method: &str, target: &str) -> Option<(RuleId, Fault)> {
        let mut chosen = None;
        for (i, (rule, counts)) in self.entries.iter_mut().enumerate() {
            if !rule.matches(method, target) {
                continue;
            }
            counts.seen += 1;
            if chosen.is_none() && counts.faulted < rule.times {
                counts.faulted += 1;
                chosen = Some((RuleId(i), rule.fault));
            }
        }
        chosen
    }

    /// Gives back a fault that could not be applied (a response fault on a response
    /// without a body), so it hits the next matching request instead.
    pub fn release(&mut self, id: RuleId) {
        if let Some((_, counts)) = self.entries.get_mut(id.0) {
            counts.faulted = counts.faulted.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_infra_fault_rules_count_and_run_out() {
        let mut rules = Rules::default();
        let blobs = rules.add(
            Rule::new(Fault::Status(500))
                .method("get")
                .path_contains("/blobs/")
                .times(2),
        );
        let any = rules.add(Rule::new(Fault::Drop).matching(|m, _| m == "GET"));
        let get = |r: &mut Rules| r.decide("GET", "/v2/a/blobs/sha256:00").map(|(_, f)| f);
        assert_eq!(get(&mut rules), Some(Fault::Status(500)));
        assert_eq!(get(&mut rules), Some(Fault::Status(500)));
        assert_eq!(get(&mut rules), Some(Fault::Drop));
        assert_eq!(get(&mut rules), None);
        assert_eq!(rules.decide("PUT", "/v2/a/blobs/uploads/x"), None);
        assert_eq!(
            rules.counts(blobs),
            RuleCounts {
                seen: 4,
                faulted: 2
            }
        );
        assert_eq!(
            rules.counts(any),
            RuleCounts {
                seen: 4,
                faulted: 1
            }
        );
        rules.release(any);
        assert_eq!(get(&mut rules), Some(Fault::Drop));
    }
}
