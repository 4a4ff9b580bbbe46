//! `--format` templates: the subset of Go's `text/template` (with docker's extra
//! functions) that people pass to `docker inspect --format`, run on a JSON value.
//!
//! Supported: text and `{{ ... }}` actions (`{{-`/`-}}` trim spaces); `.`, `.A.B` field
//! paths; `json`, `index X KEY...`, `join X SEP`, `upper`, `lower`, `len`; `range` and
//! `if`/`else` blocks closed by `end`. Values print as Go prints them: lists as
//! `[a b]`, maps as `map[k:v]` with sorted keys, a missing key as `<no value>`, null as
//! `<nil>`. Anything else is an error naming the action.

use anyhow::{anyhow, bail};
use serde_json::Value;

/// A template part.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    /// A pipeline to print.
    Action(Vec<String>),
    Range(Vec<String>, Vec<Node>),
    If(Vec<String>, Vec<Node>, Vec<Node>),
}

/// Renders `template` on `data`.
pub fn render(template: &str, data: &Value) -> anyhow::Result<String> {
    let tokens = tokenize(template)?;
    let mut pos = 0;
    let (nodes, end) = parse(&tokens, &mut pos)?;
    if let Some(end) = end {
        bail!("template: unexpected {{{{{end}}}}}");
    }
    let mut out = String::new();
    run(&nodes, data, &mut out)?;
    Ok(out)
}

/// Text and actions (the words inside `{{ }}`), in order.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Text(String),
    Action(Vec<String>),
}

fn tokenize(template: &str) -> anyhow::Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow!("template: unclosed action"))?;
        let mut inner = &after[..end];
        if let Some(trimmed) = inner.strip_prefix('-') {
            text = text.trim_end();
            inner = trimmed;
        }
        let mut next = &after[end + 2..];
        if let Some(trimmed) = inner.strip_suffix('-') {
            inner = trimmed;
            next = next.trim_start();
        }
        if !text.is_empty() {
            out.push(Token::Text(text.to_owned()));
        }
        out.push(Token::Action(words(inner)?));
        rest = next;
    }
    if !rest.is_empty() {
        out.push(Token::Text(rest.to_owned()));
    }
    Ok(out)
}

/// The words of an action; a quoted string keeps its quotes (it is a literal).
fn words(action: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = action.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let mut word = c.to_string();
        if c == '"' {
            loop {
                match chars.next() {
                    Some('\\') => word.push(chars.next().unwrap_or('\\')),
                    Some('"') => break word.push('"'),
                    Some(other) => word.push(other),
                    None => bail!("template: unterminated string in {{{{{action}}}}}"),
                }
            }
        } else {
            while let Some(&n) = chars.peek() {
                if n.is_whitespace() {
                    break;
                }
                word.push(n);
                chars.next();
            }
        }
        out.push(word);
    }
    if out.is_empty() {
        bail!("template: empty action");
    }
    Ok(out)
}

/// Nodes up to an `end` or `else` (returned) or the end of the tokens.
fn parse(tokens: &[Token], pos: &mut usize) -> anyhow::Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while let Some(token) = tokens.get(*pos) {
        *pos += 1;
        let words = match token {
            Token::Text(text) => {
                nodes.push(Node::Text(text.clone()));
                continue;
            }
            Token::Action(words) => words,
        };
        match words[0].as_str() {
            "end" | "else" => return Ok((nodes, Some(words[0].clone()))),
            "range" => {
                let (body, end) = parse(tokens, pos)?;
                expect_end(end, "range")?;
                nodes.push(Node::Range(words[1..].to_vec(), body));
            }
            "if" => {
                let (then, end) = parse(tokens, pos)?;
                let otherwise = match end.as_deref() {
                    Some("else") => {
                        let (otherwise, end) = parse(tokens, pos)?;
                        expect_end(end, "if")?;
                        otherwise
                    }
                    _ => {
                        expect_end(end, "if")?;
                        Vec::new()
                    }
                };
                nodes.push(Node::If(words[1..].to_vec(), then, otherwise));
            }
            _ => nodes.push(Node::Action(words.clone())),
        }
    }
    Ok((nodes, None))
}

fn expect_end(end: Option<String>, what: &str) -> anyhow::Result<()> {
    match end.as_deref() {
        Some("end") => Ok(()),
        _ => bail!("template: {{{{{what}}}}} without {{{{end}}}}"),
    }
}

fn run(nodes: &[Node], dot: &Value, out: &mut String) -> anyhow::Result<()> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Action(words) => out.push_str(&print(&eval(words, dot)?)),
            Node::Range(words, body) => match eval(words, dot)? {
                Some(Value::Array(items)) => {
                    for item in &items {
                        run(body, item, out)?;
                    }
                }
                Some(Value::Object(map)) => {
                    for item in map.values() {
                        run(body, item, out)?;
                    }
                }
                Some(Value::Null) | None => {}
                Some(other) => bail!("template: range over {other}, not a list or a map"),
            },
            Node::If(words, then, otherwise) => {
                let branch = if truthy(&eval(words, dot)?) {
                    then
                } else {
                    otherwise
                };
                run(branch, dot, out)?;
            }
        }
    }
    Ok(())
}

/// The value of an action's words: a function call or a single operand.
/// `None` is a missing map key (Go's `<no value>`).
fn eval(words: &[String], dot: &Value) -> anyhow::Result<Option<Value>> {
    let arg = |i: usize| -> anyhow::Result<Option<Value>> {
        let word = words
            .get(i)
            .ok_or_else(|| anyhow!("template: {} needs an argument", words[0]))?;
        operand(word, dot)
    };
    let text = |v: Option<Value>| print(&v);
    Ok(match words[0].as_str() {
        "json" => Some(Value::String(serde_json::to_string(
            &arg(1)?.unwrap_or(Value::Null),
        )?)),
        "upper" => Some(Value::String(text(arg(1)?).to_uppercase())),
        "lower" => Some(Value::String(text(arg(1)?).to_lowercase())),
        "len" => Some(Value::from(match arg(1)? {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(m)) => m.len(),
            Some(Value::String(s)) => s.len(),
            other => bail!("template: len of {}", text(other)),
        })),
        "join" => {
            let sep = text(arg(2)?);
            match arg(1)? {
                Some(Value::Array(items)) => Some(Value::String(
                    items
                        .iter()
                        .map(|i| print(&Some(i.clone())))
                        .collect::<Vec<_>>()
                        .join(&sep),
                )),
                other => bail!("template: join of {}, not a list", text(other)),
            }
        }
        "index" => {
            let mut value = arg(1)?;
            for i in 2..words.len() {
                let key = arg(i)?;
                value = match (value, key) {
                    (Some(Value::Object(m)), Some(Value::String(k))) => m.get(&k).cloned(),
                    (Some(Value::Array(a)), Some(Value::Number(n))) => {
                        let i = n.as_u64().and_then(|i| usize::try_from(i).ok());
                        match i.and_then(|i| a.get(i)) {
                            Some(v) => Some(v.clone()),
                            None => bail!("template: index {n} out of range"),
                        }
                    }
                    (v, k) => bail!("template: cannot index {} with {}", text(v), text(k)),
                };
            }
            value
        }
        _ if words.len() == 1 => operand(&words[0], dot)?,
        other => bail!("template: unknown function {other:?}"),
    })
}

/// `.`, `.A.B`, a quoted string or a number.
fn operand(word: &str, dot: &Value) -> anyhow::Result<Option<Value>> {
    if word == "." {
        return Ok(Some(dot.clone()));
    }
    if let Some(path) = word.strip_prefix('.') {
        let mut value = Some(dot.clone());
        for field in path.split('.') {
            value = match value {
                Some(Value::Object(m)) => m.get(field).cloned(),
                Some(Value::Null) | None => None,
                Some(other) => bail!("template: can't evaluate field {field} in {other}"),
            };
        }
        return Ok(value);
    }
    if word.starts_with('"') {
        return Ok(Some(Value::String(
            serde_json::from_str::<String>(word).unwrap_or_else(|_| word.trim_matches('"').into()),
        )));
    }
    match word.parse::<i64>() {
        Ok(n) => Ok(Some(Value::from(n))),
        Err(_) => bail!("template: unknown word {word:?}"),
    }
}

/// Go's truth: false, 0, "", empty lists and maps, nil and missing values are false.
fn truthy(value: &Option<Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Bool(true)) => true,
    }
}

/// A value as Go's `fmt.Print` shows it.
fn print(value: &Option<Value>) -> String {
    match value {
        None => "<no value>".to_owned(),
        Some(v) => go_print(v),
    }
}

fn go_print(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_print).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_print(&map[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str) -> String {
        let data = json!({
            "Id": "sha256:abc",
            "RepoTags": ["app:1", "app:latest"],
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "x y"}, "Cmd": null},
            "Size": 42,
        });
        render(t, &data).unwrap()
    }

    #[test]
    fn the_forms_people_use_with_docker_inspect() {
        assert_eq!(r("{{.Id}}"), "sha256:abc");
        assert_eq!(r("{{.Config.Env}}"), "[A=1 B=2]");
        assert_eq!(r("{{json .Config.Labels}}"), r#"{"a":"x y","b":"2"}"#);
        assert_eq!(r("{{.Config.Labels}}"), "map[a:x y b:2]");
        assert_eq!(r(r#"{{index .Config.Labels "a"}}"#), "x y");
        assert_eq!(r("{{index .RepoTags 1}}"), "app:latest");
        assert_eq!(r(r#"{{join .RepoTags ", "}}"#), "app:1, app:latest");
        assert_eq!(
            r("{{range .RepoTags}}<{{.}}>{{end}}"),
            "<app:1><app:latest>"
        );
        assert_eq!(r("{{if .Config.Cmd}}cmd{{else}}no cmd{{end}}"), "no cmd");
        assert_eq!(
            r("{{.Config.Cmd}} {{.Nope}} {{.Size}}"),
            "<nil> <no value> 42"
        );
        assert_eq!(r("a {{- .Size -}} b {{len .RepoTags}}"), "a42b 2");
        assert_eq!(r("{{upper .Id}}"), "SHA256:ABC");
    }

    #[test]
    fn mistakes_are_errors() {
        let data = json!({"A": 1});
        for bad in [
            "{{.A",
            "{{range .A}}",
            "{{end}}",
            "{{nosuch .A}}",
            "{{.A.B}}",
        ] {
            assert!(render(bad, &data).is_err(), "{bad}");
        }
    }
}
