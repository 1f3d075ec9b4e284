//! Scalars shared by the schema.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// A length of time, written like `90s`, `1h30m`, `500ms`, `7d` or `0s` (units: d, h, m, s,
/// ms, us, ns). Stored by JetStream in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub i64);

const UNITS: [(&str, i64); 7] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

impl Duration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty duration; write e.g. 30s, 5m, 1h30m or 7d".into());
        }
        if t == "0" {
            return Ok(Self(0));
        }
        let mut total: i64 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("'{text}' is not a duration; write e.g. 30s, 5m, 1h30m or 7d"));
            }
            let n: i64 = rest[..digits].parse().map_err(|_| format!("'{text}' is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            let Some((_, factor)) = UNITS.iter().find(|(u, _)| *u == unit) else {
                return Err(format!(
                    "'{text}': unknown unit '{unit}' (use d, h, m, s, ms, us or ns)"
                ));
            };
            total = n
                .checked_mul(*factor)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("'{text}' is too large"))?;
            rest = &rest[unit_len..];
        }
        Ok(Self(total))
    }

    pub fn format(ns: i64) -> String {
        if ns == 0 {
            return "0s".into();
        }
        let mut left = ns.unsigned_abs() as i128;
        let mut out = String::new();
        if ns < 0 {
            out.push('-');
        }
        for (unit, factor) in UNITS {
            let f = factor as i128;
            if left >= f {
                out.push_str(&format!("{}{unit}", left / f));
                left %= f;
            }
        }
        out
    }
}

/// A length of time, written like `90s`, `1h30m`, `500ms`, `7d` or `0s` (units: d, h, m, s,
/// ms, us, ns; several may follow each other). JetStream stores it in
/// nanoseconds; the console shows it in the same notation, such as `1m30s`.
#[Scalar]
impl ScalarType for Duration {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Duration::parse(&s).map_err(InputValueError::custom),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(Duration::format(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(Duration::parse("90s").unwrap().0, 90_000_000_000);
        assert_eq!(Duration::parse("1h30m").unwrap().0, 5_400_000_000_000);
        assert_eq!(Duration::parse("500ms").unwrap().0, 500_000_000);
        assert_eq!(Duration::format(90_000_000_000), "1m30s");
        assert_eq!(Duration::format(7 * 86_400_000_000_000), "7d");
        assert_eq!(Duration::format(0), "0s");
        assert!(Duration::parse("5 minutes").is_err());
        assert!(Duration::parse("m").is_err());
    }

    #[test]
    fn times_are_written_as_the_date_time_scalar_writes_them() {
        let mut day = (0, String::new());
        let chrono = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339();
        // Whole seconds over three days (across midnights, the cached date changing), then
        // milliseconds, the epoch, before it, and the last second of year 9999 and after.
        let start = 1_765_000_000_000 - 1_765_000_000_000 % 86_400_000 - 7_000;
        let times = (0..3 * 86_400 / 7).map(|i| start + i * 7_000);
        let edges = [
            1_765_000_000_123,
            0,
            -1_000,
            -86_400_000,
            253_402_300_799_000,
            253_402_300_800_000,
        ];
        for ms in times.chain(edges) {
            assert_eq!(rfc3339(ms, &mut day), chrono(ms), "{ms}");
        }
        assert_eq!(rfc3339(1_765_000_800_000, &mut day), "2025-12-06T06:00:00+00:00");
    }

    #[test]
    fn whole_floats_are_written_without_a_fraction() {
        let json = |v: f64| serde_json::to_string(&float(v)).unwrap();
        assert_eq!(json(1_765_000_000_000.0), "1765000000000");
        assert_eq!(json(-3.0), "-3");
        assert_eq!(json(2.5), "2.5");
        assert_eq!(json(1e300), "1e+300");
        assert_eq!(json(f64::NAN), "null");
    }
}

/// A `[Float!]!` or `[Int!]!` answered as one value: a list of scalars needs no field
/// resolution per item, and answering it whole spares the per-item futures (and the
/// extensions' hooks) that `Vec<T>` goes through, which cost more than the numbers for
/// series of 100,000 points and more. The schema sees a plain list.
pub struct Numbers<T>(pub Vec<T>);

macro_rules! numbers {
    ($t:ty, $name:literal, $value:expr) => {
        impl async_graphql::OutputType for Numbers<$t> {
            fn type_name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(concat!("[", $name, "!]"))
            }

            fn qualified_type_name() -> String {
                concat!("[", $name, "!]!").to_string()
            }

            fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
                <$t as async_graphql::OutputType>::create_type_info(registry);
                Self::qualified_type_name()
            }

            async fn resolve(
                &self,
                _ctx: &async_graphql::ContextSelectionSet<'_>,
                _field: &async_graphql::Positioned<async_graphql::parser::types::Field>,
            ) -> async_graphql::ServerResult<Value> {
                let to_value: fn(&$t) -> Value = $value;
                Ok(Value::List(self.0.iter().map(to_value).collect()))
            }
        }
    };
}

numbers!(f64, "Float", |v| float(*v));
numbers!(i64, "Int", |v| Value::Number((*v).into()));

/// A `Float` answered as a value. A whole number (times in milliseconds, counts, most lags)
/// is written without a fraction: `1765000000000`, not `1765000000000.0`, the same number to
/// a JSON reader, shorter and written about twice as fast.
pub(crate) fn float(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        Value::Number((v as i64).into())
    } else {
        async_graphql::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

/// Milliseconds since the epoch as the `DateTime` scalar writes them (RFC 3339 in UTC, as
/// `to_rfc3339`), for answers of many times in a row: the date is formatted once per day
/// (`day` keeps it), the time of day by hand. Times with milliseconds, or outside years
/// 1970 to 9999, are formatted by chrono.
pub(crate) fn rfc3339(ms: i64, day: &mut (i64, String)) -> String {
    const MAX_MS: i64 = 253_402_300_799_999;
    let time = || {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339()
    };
    if !(0..=MAX_MS).contains(&ms) || ms % 1000 != 0 {
        return time();
    }
    let (days, secs) = ((ms / 1000).div_euclid(86_400), (ms / 1000).rem_euclid(86_400));
    if day.0 != days || day.1.is_empty() {
        let midnight = chrono::DateTime::from_timestamp(days * 86_400, 0).unwrap_or_default();
        *day = (days, midnight.format("%Y-%m-%d").to_string());
    }
    let two = |n: i64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
    let [h, m, s] = [two(secs / 3600), two(secs / 60 % 60), two(secs % 60)];
    let clock = [b'T', h[0], h[1], b':', m[0], m[1], b':', s[0], s[1]];
    let mut out = String::with_capacity(25);
    out.push_str(&day.1);
    out.push_str(std::str::from_utf8(&clock).unwrap_or_default());
    out.push_str("+00:00");
    out
}
