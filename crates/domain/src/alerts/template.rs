//! Annotation templates: text with `{{ name }}` placeholders (`{{ stream }} has {{ value }}
//! pending`). Only known names are allowed, so a typo is refused when the rule is saved
//! rather than sent to someone at 3 a.m.; `{{ labels.team }}` reads a label.

use std::collections::BTreeMap;

use super::{AlertError, invalid};

/// The names a template may use, besides `labels.<name>`.
pub const VARIABLES: &[&str] = &[
    "rule",
    "severity",
    "cluster",
    "stream",
    "consumer",
    "value",
    "threshold",
    "state",
];

enum Part<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn parse(template: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        parts.push(Part::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "a '{{' is not closed with '}}'".to_string())?;
        let name = after[..close].trim();
        if name.is_empty() {
            return Err("'{{ }}' names nothing; use one of the variables".into());
        }
        let known = VARIABLES.contains(&name)
            || name
                .strip_prefix("labels.")
                .is_some_and(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if !known {
            return Err(format!(
                "unknown variable '{name}'; use one of {}, or labels.<name>",
                VARIABLES.join(", ")
            ));
        }
        parts.push(Part::Var(name));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err("a '}}' has no '{{' before it".into());
    }
    parts.push(Part::Text(rest));
    Ok(parts)
}

/// Checks a template; the message says what is wrong and what to use.
pub fn check(field: &str, template: &str) -> Result<(), AlertError> {
    parse(template).map(drop).map_err(|e| invalid(field, e))
}

/// Renders a template: `vars` by name, `labels` for `labels.<name>`; a name without a value
/// renders empty.
pub fn render(template: &str, vars: &BTreeMap<&str, String>, labels: &BTreeMap<String, String>) -> String {
    let Ok(parts) = parse(template) else {
        return template.to_string();
    };
    let mut out = String::with_capacity(template.len() + 32);
    for p in parts {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::Var(name) => {
                let value = match name.strip_prefix("labels.") {
                    Some(l) => labels.get(l).map(String::as_str),
                    None => vars.get(name).map(String::as_str),
                };
                out.push_str(value.unwrap_or(""));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables_and_labels() {
        let vars = BTreeMap::from([("stream", "ORDERS".to_string()), ("value", "1200".to_string())]);
        let labels = BTreeMap::from([("team".to_string(), "payments".to_string())]);
        assert_eq!(
            render(
                "{{ stream }} has {{value}} pending ({{ labels.team }}{{ labels.x }})",
                &vars,
                &labels
            ),
            "ORDERS has 1200 pending (payments)"
        );
    }

    #[test]
    fn refuses_what_would_render_wrong() {
        let e = |t: &str| check("annotations.summary", t).unwrap_err().to_string();
        assert!(
            e("{{ strem }} lags").contains("unknown variable 'strem'"),
            "{}",
            e("{{ strem }}")
        );
        assert!(e("{{ stream lags").contains("not closed"));
        assert!(e("stream }} lags").contains("no '{{'"));
        assert!(e("{{}}").contains("names nothing"));
        assert!(check("a", "plain text").is_ok());
        assert!(check("a", "{{ labels.team }} and {{ consumer }}").is_ok());
    }
}
