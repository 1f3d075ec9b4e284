//! Searching a stream: a scan that reads it in batches (never consuming), keeps the messages
//! that match every predicate, and reports progress as it goes, within bounds (a sequence
//! or time range, most messages scanned, most results, a time budget). Dropping the scan's
//! stream stops it at once: it holds nothing on the server.

use std::time::{Duration, Instant};

use futures::Stream;
use regex::bytes::{Regex, RegexBuilder};

use crate::mask::Masker;
use crate::{ReadError, Reader, StoredMessage};

/// Messages one read of a scan takes.
const SCAN_BATCH: usize = 1_000;
/// Most often a scan reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Largest compiled regex accepted (the `regex` crate runs in linear time; this bounds its
/// memory and the cost of its slower engines per byte).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Longest text `payloadContains` may look for.
pub const MAX_NEEDLE: usize = 4096;

/// What a header must be.
#[derive(Debug, Clone)]
pub enum HeaderTest {
    Present,
    Equals(String),
    Contains(String),
    Matches(Regex),
}

/// Every predicate a message must meet to match.
#[derive(Debug, Clone, Default)]
pub struct Predicates {
    /// `(name, test)`: header names compare ignoring case.
    pub headers: Vec<(String, HeaderTest)>,
    pub payload_contains: Option<Vec<u8>>,
    pub payload_matches: Option<Regex>,
    /// An expression over the message (see [`crate::expr`]).
    pub expression: Option<crate::expr::Expr>,
}

/// A regex for a search, or what is wrong with it.
pub fn regex(what: &str, pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("{what}: not a regex this search can run ({e})"))
}

impl Predicates {
    pub fn matches(&self, m: &StoredMessage) -> bool {
        let header_ok = |(name, test): &(String, HeaderTest)| {
            let mut values = m
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v);
            match test {
                HeaderTest::Present => values.next().is_some(),
                HeaderTest::Equals(want) => values.any(|v| v == want),
                HeaderTest::Contains(part) => values.any(|v| v.contains(part.as_str())),
                HeaderTest::Matches(re) => values.any(|v| re.is_match(v.as_bytes())),
            }
        };
        self.headers.iter().all(header_ok)
            && self
                .payload_contains
                .as_ref()
                .is_none_or(|needle| contains(&m.payload, needle))
            && self.payload_matches.as_ref().is_none_or(|re| re.is_match(&m.payload))
            && self.expression.as_ref().is_none_or(|e| e.matches(m))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// Where a scan runs and when it stops.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// The first sequence to read.
    pub from: u64,
    /// The last sequence to read.
    pub to: u64,
    /// Only subjects matching this filter (`>` for all).
    pub subject: String,
    pub max_scanned: u64,
    pub max_results: u64,
    pub time_budget: Duration,
}

/// How far a scan has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Messages read (on the subject filter).
    pub scanned: u64,
    /// Messages that matched.
    pub matched: u64,
    /// Bytes read (subject, headers and payload).
    pub bytes: u64,
    /// The last sequence read.
    pub position: u64,
    pub elapsed: Duration,
    /// At the pace so far, until the end of the range (or the scan limit); `None` until it
    /// has read something.
    pub remaining: Option<Duration>,
}

/// Why a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It read the whole range.
    End,
    MaxScanned,
    MaxResults,
    TimeBudget,
}

/// What a scan sends.
#[derive(Debug, Clone)]
pub enum ScanEvent {
    Match(StoredMessage),
    Progress(Progress),
    Done(Progress, Stop),
}

/// The next read of a scan, under way while the current batch is matched (and stopped if
/// the scan is dropped first).
struct Ahead {
    from: u64,
    task: tokio::task::JoinHandle<Result<crate::Batch, ReadError>>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Scan {
    ahead: Option<Ahead>,
    reader: Reader,
    bounds: Bounds,
    predicates: Predicates,
    masker: Masker,
    started: Instant,
    last_report: Instant,
    next: u64,
    progress: Progress,
    ready: std::collections::VecDeque<ScanEvent>,
    finished: bool,
}

impl Scan {
    /// Messages the read from `from` asks for, `scanned` read so far.
    fn want(&self, from: u64, scanned: u64) -> usize {
        let room = self.bounds.max_scanned - scanned;
        (SCAN_BATCH as u64).min(room).min(self.bounds.to - from + 1) as usize
    }

    fn snapshot(&self) -> Progress {
        let elapsed = self.started.elapsed();
        let range = self.bounds.to.saturating_sub(self.bounds.from) + 1;
        let done = self.next.saturating_sub(self.bounds.from).min(range);
        let remaining = (done > 0).then(|| {
            let left = (range - done).min(self.bounds.max_scanned.saturating_sub(self.progress.scanned));
            elapsed
                .mul_f64(left as f64 / done as f64)
                .min(self.bounds.time_budget.saturating_sub(elapsed))
        });
        Progress {
            elapsed,
            remaining,
            ..self.progress
        }
    }

    fn finish(&mut self, stop: Stop) {
        let p = self.snapshot();
        self.ready.push_back(ScanEvent::Done(
            Progress {
                remaining: Some(Duration::ZERO),
                ..p
            },
            stop,
        ));
        self.finished = true;
    }
}

/// Scans the stream `reader` reads within `bounds` for messages meeting `predicates`, as
/// `masker` shows them (a reader cannot find what they may not see): matches as they are
/// found, progress at most every 250 ms, and one `Done` last.
pub fn scan(
    reader: Reader,
    bounds: Bounds,
    predicates: Predicates,
    masker: Masker,
) -> impl Stream<Item = Result<ScanEvent, ReadError>> + Send + 'static {
    let now = Instant::now();
    let next = bounds.from;
    let state = Scan {
        ahead: None,
        reader,
        bounds,
        predicates,
        masker,
        started: now,
        last_report: now,
        next,
        progress: Progress::default(),
        ready: Default::default(),
        finished: false,
    };
    futures::stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        loop {
            if let Some(e) = s.ready.pop_front() {
                return Some((Ok(e), Some(s)));
            }
            if s.finished {
                return None;
            }
            if s.next > s.bounds.to {
                s.finish(Stop::End);
                continue;
            }
            if s.started.elapsed() >= s.bounds.time_budget {
                s.finish(Stop::TimeBudget);
                continue;
            }
            let read = match s.ahead.take() {
                Some(mut a) if a.from == s.next => match (&mut a.task).await {
                    Ok(r) => r,
                    Err(e) => Err(ReadError::Unavailable(format!("the read was stopped: {e}"))),
                },
                _ => {
                    let want = s.want(s.next, s.progress.scanned);
                    s.reader
                        .forward(s.next, &s.bounds.subject, want, Some(s.bounds.to))
                        .await
                }
            };
            let batch = match read {
                Ok(b) => b,
                Err(e) => return Some((Err(e), None)),
            };
            if batch.messages.is_empty() {
                s.next = s.bounds.to + 1;
                continue;
            }
            // Read ahead while this batch is matched: the server works while we do.
            if batch.more
                && let Some(last) = batch.messages.last()
            {
                let (from, scanned) = (last.sequence + 1, s.progress.scanned + batch.messages.len() as u64);
                if from <= s.bounds.to && scanned < s.bounds.max_scanned {
                    let want = s.want(from, scanned);
                    let (reader, subject, to) = (s.reader.clone(), s.bounds.subject.clone(), s.bounds.to);
                    s.ahead = Some(Ahead {
                        from,
                        task: tokio::spawn(async move { reader.forward(from, &subject, want, Some(to)).await }),
                    });
                }
            }
            for m in batch.messages {
                if s.started.elapsed() >= s.bounds.time_budget {
                    s.finish(Stop::TimeBudget);
                    break;
                }
                let m = s.masker.apply(m);
                s.progress.scanned += 1;
                s.progress.bytes += m.size() as u64;
                s.progress.position = m.sequence;
                s.next = m.sequence + 1;
                if s.predicates.matches(&m) {
                    s.progress.matched += 1;
                    s.ready.push_back(ScanEvent::Match(m));
                    if s.progress.matched >= s.bounds.max_results {
                        s.finish(Stop::MaxResults);
                        break;
                    }
                }
                if s.progress.scanned >= s.bounds.max_scanned {
                    s.finish(Stop::MaxScanned);
                    break;
                }
            }
            if !batch.more && !s.finished {
                s.next = s.bounds.to + 1;
            }
            if !s.finished && s.last_report.elapsed() >= PROGRESS_EVERY {
                s.last_report = Instant::now();
                let p = s.snapshot();
                s.ready.push_back(ScanEvent::Progress(p));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(headers: &[(&str, &str)], payload: &str) -> StoredMessage {
        StoredMessage {
            sequence: 1,
            subject: "s".into(),
            time: chrono::Utc::now(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            payload: payload.as_bytes().to_vec().into(),
            decoded_as: None,
        }
    }

    #[test]
    fn every_predicate_must_hold() {
        let m = message(&[("X-Region", "eu-west"), ("X-Region", "eu-north")], r#"{"total": 42}"#);
        let p = |headers: Vec<(String, HeaderTest)>, contains: Option<&str>, re: Option<&str>| Predicates {
            headers,
            payload_contains: contains.map(|c| c.as_bytes().to_vec()),
            payload_matches: re.map(|r| regex("payloadRegex", r).unwrap()),
            expression: None,
        };
        let h = |n: &str, t: HeaderTest| vec![(n.to_string(), t)];
        assert!(p(vec![], None, None).matches(&m));
        assert!(p(h("x-region", HeaderTest::Present), None, None).matches(&m));
        assert!(!p(h("X-Other", HeaderTest::Present), None, None).matches(&m));
        assert!(p(h("X-Region", HeaderTest::Equals("eu-north".into())), None, None).matches(&m));
        assert!(!p(h("X-Region", HeaderTest::Equals("eu".into())), None, None).matches(&m));
        assert!(p(h("X-Region", HeaderTest::Contains("west".into())), None, None).matches(&m));
        let re = regex("r", "^eu-(west|south)$").unwrap();
        assert!(p(h("X-Region", HeaderTest::Matches(re)), None, None).matches(&m));
        assert!(p(vec![], Some("\"total\""), Some(r#""total": \d+"#)).matches(&m));
        assert!(!p(vec![], Some("\"total\""), Some(r#""total": 7"#)).matches(&m));
        assert!(!p(vec![], Some("missing"), None).matches(&m));
    }

    #[test]
    fn a_regex_that_does_not_compile_or_is_too_big_says_so() {
        assert!(
            regex("payloadRegex", "(unclosed")
                .unwrap_err()
                .starts_with("payloadRegex: ")
        );
        assert!(regex("payloadRegex", "\\w{1000}{1000}").is_err(), "too big to build");
    }
}
