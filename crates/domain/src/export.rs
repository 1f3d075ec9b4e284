//! Export files, as the audit trail and the messages write them: the formats and the one
//! CSV quoting rule both follow.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Parquet,
    Csv,
    Jsonl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "parquet" => Some(Self::Parquet),
            "csv" => Some(Self::Csv),
            "jsonl" => Some(Self::Jsonl),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Jsonl => "application/x-ndjson",
        }
    }
}

/// Appends one CSV line of `fields` to `out` (RFC 4180: a field holding a comma, quote or
/// line break is quoted, its quotes doubled).
pub fn csv_line<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let v = f.as_ref();
        if v.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&v.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(v);
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_quotes_what_needs_it() {
        let mut s = String::new();
        super::csv_line(&mut s, &["a", "b,c", "say \"hi\"", "two\nlines"]);
        assert_eq!(s, "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\"\n");
    }
}
