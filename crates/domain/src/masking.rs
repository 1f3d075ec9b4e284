//! Masking rules: what of a message's headers and payload an organization hides from those
//! who read its streams' messages, before anything leaves the console.

use serde::{Deserialize, Serialize};

/// Most rules an organization may have.
pub const MAX_RULES: usize = 100;

/// One rule: on which streams, what to find, and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskingRule {
    /// A label for people (shown in the audit trail), 1 to 64 characters.
    pub name: String,
    /// Only this stream (by name, on any cluster of the organization); `None`: every stream.
    #[serde(default)]
    pub stream: Option<String>,
    pub target: MaskTarget,
    pub action: MaskAction,
}

/// What a rule finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MaskTarget {
    /// A header, by name (ignoring case).
    Header { name: String },
    /// A field of a JSON payload: keys separated by `.`, `*` for any key or array item
    /// (`card.number`, `items.*.price`).
    JsonPath { path: String },
    /// Text of the payload matching a regular expression.
    Regex { pattern: String },
}

/// What a rule does with what it finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MaskAction {
    /// Takes it out: the header or field is gone, the matched text removed.
    Remove,
    /// Shows `***` in its place.
    Mask,
    /// Shows this text in its place.
    Replace { with: String },
}

/// What a masked value becomes under [`MaskAction::Mask`].
pub const MASK: &str = "***";

impl MaskingRule {
    /// Checks the rule; the message names the field (`rules[i].…`) and what to change.
    /// `regex_ok` compiles a pattern (the domain has no regex engine of its own).
    pub fn check(&self, i: usize, regex_ok: impl Fn(&str) -> Result<(), String>) -> Result<(), String> {
        let at = |f: &str| format!("rules[{i}].{f}");
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(format!("{}: give the rule a name of 1 to 64 characters", at("name")));
        }
        if let Some(s) = &self.stream {
            crate::names::check_name("stream", s).map_err(|e| format!("{}: {e}", at("stream")))?;
        }
        match &self.target {
            MaskTarget::Header { name } if name.trim().is_empty() || name.contains([':', ' ']) => {
                Err(format!("{}: name a header (no spaces or ':')", at("header")))
            }
            MaskTarget::JsonPath { path } if path.is_empty() || path.split('.').any(str::is_empty) => Err(format!(
                "{}: give keys separated by '.', such as card.number or items.*.price",
                at("jsonPath")
            )),
            MaskTarget::Regex { pattern } => regex_ok(pattern).map_err(|e| format!("{}: {e}", at("regex"))),
            _ => Ok(()),
        }
    }

    /// Whether the rule applies to stream `stream`.
    pub fn covers(&self, stream: &str) -> bool {
        self.stream.as_deref().is_none_or(|s| s == stream)
    }
}
