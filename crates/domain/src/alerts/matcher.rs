//! Label matchers, as Alertmanager's: `name = value`, `!=`, `=~` and `!~` (a regular
//! expression anchored at both ends). Silences and routes select alerts with them; rules
//! select names with [`Glob`]s.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{AlertError, check_label_name, invalid};

/// Most matchers in one silence or route.
pub const MAX_MATCHERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }
}

/// One condition on an alert's labels. A label the alert does not have is the empty string
/// (so `team != ""` asks for the label to be there), as Alertmanager has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.symbol(), self.value)
    }
}

impl Matcher {
    pub fn check(&self, field: &str) -> Result<(), AlertError> {
        check_label_name(&format!("{field}.name"), &self.name)?;
        if self.value.len() > 1024 {
            return Err(invalid(format!("{field}.value"), "at most 1024 bytes"));
        }
        if matches!(self.op, MatchOp::Regex | MatchOp::NotRegex) {
            anchored(&self.value).map_err(|e| invalid(format!("{field}.value"), e))?;
        }
        Ok(())
    }

    /// Whether `labels` satisfy this matcher. A regex that does not compile (it was checked
    /// when the matcher was made) matches nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => anchored(&self.value).is_ok_and(|r| r.is_match(v)),
            MatchOp::NotRegex => anchored(&self.value).is_ok_and(|r| !r.is_match(v)),
        }
    }
}

/// Whether every matcher holds.
pub fn all_match(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

pub fn check_matchers(field: &str, matchers: &[Matcher]) -> Result<(), AlertError> {
    if matchers.len() > MAX_MATCHERS {
        return Err(invalid(field, format!("at most {MAX_MATCHERS} matchers")));
    }
    for (i, m) in matchers.iter().enumerate() {
        m.check(&format!("{field}[{i}]"))?;
    }
    Ok(())
}

fn anchored(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("not a valid regular expression: {e}"))
}

/// A name pattern: `*` any run of characters, `?` one character, anything else itself.
/// `ORDERS*` matches `ORDERS` and `ORDERS_EU`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Glob(pub String);

impl Glob {
    pub fn check(&self, field: &str) -> Result<(), AlertError> {
        if self.0.is_empty() || self.0.len() > 255 || self.0.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                field,
                format!(
                    "'{}' is not a name pattern: 1 to 255 characters without white space ('*' any run, '?' one)",
                    self.0
                ),
            ));
        }
        Ok(())
    }

    pub fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

/// Iterative wildcard match with one backtrack point: linear in practice, never exponential.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher {
            name: name.into(),
            op,
            value: value.into(),
        }
    }

    #[test]
    fn globs_match_whole_names() {
        let g = |p: &str| Glob(p.into());
        assert!(g("ORDERS*").matches("ORDERS"));
        assert!(g("ORDERS*").matches("ORDERS_EU"));
        assert!(!g("ORDERS*").matches("MY_ORDERS"));
        assert!(g("*_EU").matches("ORDERS_EU"));
        assert!(g("O?DERS").matches("ORDERS"));
        assert!(!g("O?DERS").matches("ODERS"));
        assert!(g("*").matches(""));
        assert!(g("a*b*c").matches("axxbyyc"));
        assert!(!g("a*b*c").matches("axxbyy"));
        assert!(g("billing").matches("billing"));
        assert!(!g("billing").matches("billing2"));
    }

    #[test]
    fn matchers_follow_alertmanager() {
        let l = labels(&[("severity", "critical"), ("stream", "ORDERS")]);
        assert!(m("severity", MatchOp::Equal, "critical").matches(&l));
        assert!(!m("severity", MatchOp::NotEqual, "critical").matches(&l));
        assert!(m("stream", MatchOp::Regex, "ORD.*").matches(&l));
        assert!(!m("stream", MatchOp::Regex, "ORD").matches(&l), "anchored at both ends");
        assert!(m("stream", MatchOp::NotRegex, "X.*").matches(&l));
        assert!(m("team", MatchOp::Equal, "").matches(&l), "a missing label is empty");
        assert!(!m("team", MatchOp::NotEqual, "").matches(&l));
    }

    #[test]
    fn bad_matchers_name_the_field() {
        let e = m("1x", MatchOp::Equal, "a").check("matchers[0]").unwrap_err();
        assert!(e.to_string().starts_with("matchers[0].name:"), "{e}");
        let e = m("x", MatchOp::Regex, "(").check("matchers[2]").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("matchers[2].value: not a valid regular expression"),
            "{e}"
        );
    }
}
