//! NATS naming rules shared by streams and consumers: names and subjects checked before
//! anything is sent to a server, with messages that say what to change.

/// A stream or consumer name: 1–255 printable characters without white space, `.`, `*`,
/// `>`, `/` or `\` (the server uses names as file and subject tokens).
pub fn check_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("a {kind} name must not be empty"));
    }
    if name.chars().count() > 255 {
        return Err(format!("a {kind} name must be at most 255 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        let shown = if c.is_control() {
            format!("a control character (U+{:04X})", c as u32)
        } else if c.is_whitespace() {
            "white space".to_string()
        } else {
            format!("'{c}'")
        };
        return Err(format!(
            "the {kind} name '{name}' contains {shown}; use letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// Text kept and shown as given (a tag, a metadata key or value): no control characters,
/// which would not survive being shown, logged or typed again.
pub fn check_text(what: &str, text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "{what} {text:?} contains a control character (U+{:04X}); remove it",
            c as u32
        )),
        None => Ok(()),
    }
}

/// Metadata of a stream or consumer: keys not empty, keys and values without control
/// characters.
pub fn check_metadata(metadata: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    for (key, value) in metadata {
        if key.trim().is_empty() {
            return Err("a metadata key must not be empty; give each entry a key".into());
        }
        check_text("the metadata key", key)?;
        check_text(&format!("the value of metadata key '{key}'"), value)?;
    }
    Ok(())
}

/// A subject or subject filter: dot-separated non-empty tokens without white space, `*`
/// only as a whole token and `>` only as the whole last token.
pub fn check_subject(subject: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("'{subject}' is not a valid subject: {why}"));
    if subject.is_empty() {
        return bad("it is empty");
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains white space");
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return bad("it has an empty token (two dots, or a dot at either end)");
        }
        if t.contains('*') && *t != "*" {
            return bad("'*' must be a whole token");
        }
        if t.contains('>') && (*t != ">" || i + 1 != tokens.len()) {
            return bad("'>' must be the whole last token");
        }
    }
    Ok(())
}

/// For `skip_serializing_if` on JetStream configuration fields.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Whether two subject filters can match a common subject.
pub fn subjects_overlap(a: &str, b: &str) -> bool {
    let (ta, tb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    let mut i = 0;
    loop {
        match (ta.get(i), tb.get(i)) {
            (Some(&">"), Some(_)) | (Some(_), Some(&">")) => return true,
            (Some(x), Some(y)) => {
                if x != y && *x != "*" && *y != "*" {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("stream", "ORDERS_v2-x").is_ok());
        assert!(check_name("stream", "").is_err());
        assert!(check_name("stream", "a.b").unwrap_err().contains("'.'"));
        assert!(check_name("stream", "a b").unwrap_err().contains("white space"));
        assert!(check_name("stream", "a/b").is_err());
    }

    #[test]
    fn subjects() {
        for ok in ["a", "a.b", "a.*", "a.>", "*", ">", "a.*.c"] {
            assert!(check_subject(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", ".a", "a.", "a.b*", "a.>.c", "a >", "a.>x"] {
            assert!(check_subject(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlaps() {
        assert!(subjects_overlap("orders.>", "orders.eu.new"));
        assert!(subjects_overlap("orders.*", "orders.new"));
        assert!(subjects_overlap("*.new", "orders.*"));
        assert!(subjects_overlap("a.b", "a.b"));
        assert!(!subjects_overlap("orders.*", "orders.eu.new"));
        assert!(!subjects_overlap("orders.eu", "orders.us"));
        assert!(!subjects_overlap("a", "a.b"));
        assert!(subjects_overlap(">", "anything.at.all"));
    }
}
