//! The token issuer's policy: accounts with passwords, and rules mapping repository
//! name globs to allowed actions, for each account and for anonymous clients.
//!
//! A request is granted the intersection of what it asks and what the rules allow, the
//! way real issuers (Docker Hub, `docker_auth`) behave: asking for more is not an error,
//! the token simply carries less. Only `repository` scopes are ever granted.

use std::collections::BTreeMap;

/// One access entry: a requested scope, or a granted entry of a token's `access` claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Resource type: `repository` (or `registry` for `registry:catalog:*`).
    pub kind: String,
    /// Resource name, e.g. `team/app`.
    pub name: String,
    /// Actions, e.g. `["pull", "push"]`.
    pub actions: Vec<String>,
}

impl Access {
    /// Parses `repository:team/app:pull,push`. The name may itself hold colons
    /// (`repository:localhost:5000/x:pull`): the type ends at the first colon, the
    /// actions start after the last.
    pub fn parse(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        Some(Access {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    /// Back to `type:name:action,action`.
    pub fn scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }

    /// The entry as the token's `access` claim holds it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "type": self.kind, "name": self.name, "actions": self.actions })
    }
}

/// Accounts and their rules; anonymous rules apply to requests without credentials.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    accounts: BTreeMap<String, Account>,
    anonymous: Vec<Rule>,
}

#[derive(Clone, Debug)]
struct Account {
    password: String,
    rules: Vec<Rule>,
}

/// `pattern` (a glob where `*` matches any run of characters, `/` included) allows
/// `actions` (`*` allows every action).
#[derive(Clone, Debug)]
struct Rule {
    pattern: String,
    actions: Vec<String>,
}

impl Policy {
    /// No accounts, nothing allowed.
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Adds account `name` with `password` and rules `(glob, "pull,push")`.
    pub fn user(mut self, name: &str, password: &str, rules: &[(&str, &str)]) -> Policy {
        let account = Account {
            password: password.to_owned(),
            rules: rules.iter().map(|&(p, a)| Rule::new(p, a)).collect(),
        };
        self.accounts.insert(name.to_owned(), account);
        self
    }

    /// Sets the rules for requests without credentials, e.g. `[("public/*", "pull")]`.
    pub fn anonymous(mut self, rules: &[(&str, &str)]) -> Policy {
        self.anonymous = rules.iter().map(|&(p, a)| Rule::new(p, a)).collect();
        self
    }

    /// Whether `name` exists and `password` is its password.
    pub fn authenticate(&self, name: &str, password: &str) -> bool {
        self.accounts
            .get(name)
            .is_some_and(|a| a.password == password)
    }

    /// What `user` (`None`: anonymous) gets of `requested`: per scope, the requested
    /// actions the rules allow; scopes left with no action are dropped.
    pub fn grant(&self, user: Option<&str>, requested: &[Access]) -> Vec<Access> {
        let rules = match user {
            Some(name) => self.accounts.get(name).map_or(&[][..], |a| &a.rules[..]),
            None => &self.anonymous[..],
        };
        requested
            .iter()
            .filter(|want| want.kind == "repository")
            .filter_map(|want| {
                let allowed: Vec<&str> = rules
                    .iter()
                    .filter(|r| glob(&r.pattern, &want.name))
                    .flat_map(|r| r.actions.iter().map(String::as_str))
                    .collect();
                let actions: Vec<String> = want
                    .actions
                    .iter()
                    .filter(|a| allowed.contains(&"*") || allowed.contains(&a.as_str()))
                    .cloned()
                    .collect();
                (!actions.is_empty()).then(|| Access {
                    actions,
                    ..(*want).clone()
                })
            })
            .collect()
    }
}

impl Rule {
    fn new(pattern: &str, actions: &str) -> Rule {
        Rule {
            pattern: pattern.to_owned(),
            actions: actions.split(',').map(|a| a.trim().to_owned()).collect(),
        }
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            // Try every split point for the star; names are short.
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_infra_policy_grants_the_intersection() {
        let policy = Policy::new()
            .user("alice", "pw", &[("team/*", "pull,push"), ("*", "pull")])
            .anonymous(&[("public/*", "pull")]);
        let ask = |s: &str| Access::parse(s).expect("scope");
        let granted = policy.grant(
            Some("alice"),
            &[
                ask("repository:team/app:pull,push,delete"),
                ask("repository:other:pull,push"),
            ],
        );
        let scopes: Vec<String> = granted.iter().map(Access::scope).collect();
        assert_eq!(
            scopes,
            ["repository:team/app:pull,push", "repository:other:pull"]
        );
        assert!(policy
            .grant(None, &[ask("repository:team/app:pull")])
            .is_empty());
        assert_eq!(
            policy
                .grant(None, &[ask("repository:public/a/b:pull,push")])
                .len(),
            1
        );
        assert!(policy.authenticate("alice", "pw"));
        assert!(!policy.authenticate("alice", "nope"));
        assert_eq!(
            ask("repository:localhost:5000/x:pull").name,
            "localhost:5000/x"
        );
        assert!(glob("a*c*", "abxcd") && !glob("a*c", "abxcd") && glob("*", ""));
    }
}
