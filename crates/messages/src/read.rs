//! Reading a stream's messages without consuming them: batch direct get where the server
//! and the stream allow it, one message get at a time everywhere else.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{Batch, StoredMessage};

/// How long one request may take before the read fails.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Most messages one scan (backward on the message-get path) reads for one page.
pub const MAX_SCAN: usize = 10_000;

/// What a read needs to know about its stream, from a fresh `STREAM.INFO`.
#[derive(Debug, Clone)]
pub struct StreamFacts {
    pub name: String,
    /// The lowest sequence still stored (everything below was purged, expired or deleted).
    pub first_seq: u64,
    /// The last sequence assigned; 0 for a stream that never stored anything.
    pub last_seq: u64,
    pub messages: u64,
    /// `allow_direct` in the stream's configuration.
    pub allow_direct: bool,
    /// `major.minor` of the server the connection reached.
    pub server: (u64, u64),
}

/// How a stream's messages are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPath {
    /// Batch direct get: a page in one request (nats-server 2.11+, `allow_direct`).
    DirectBatch,
    /// `STREAM.MSG.GET`, one message a request: every server, every stream.
    MessageGet,
}

/// Why a read failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// The server refused the request (a bad filter, say): its description.
    #[error("the server refused the read: {0}")]
    Rejected(String),
    /// The cluster did not answer, or not in time, or cannot right now.
    #[error("{0}")]
    Unavailable(String),
    /// The stream is gone.
    #[error("{0}")]
    NotFound(String),
}

/// JetStream's error code for "no message found" (other 404s, such as a missing stream,
/// are errors).
const NO_MESSAGE: u64 = 10037;

/// Most bytes one read holds: a batch stops there, and says more follow.
pub const MAX_READ_BYTES: usize = 16 * 1024 * 1024;

/// Reads one stream's messages.
#[derive(Debug, Clone)]
pub struct Reader {
    client: async_nats::Client,
    facts: StreamFacts,
    path: ReadPath,
}

/// The headers JetStream adds to a direct get's answer (not the message's own).
const SERVER_HEADERS: [&str; 7] = [
    "Nats-Stream",
    "Nats-Subject",
    "Nats-Sequence",
    "Nats-Time-Stamp",
    "Nats-Num-Pending",
    "Nats-Last-Sequence",
    "Nats-UpTo-Sequence",
];

impl Reader {
    /// A reader of the stream `facts` describe, on the path its server and configuration
    /// allow.
    pub fn new(client: async_nats::Client, facts: StreamFacts) -> Self {
        let path = if facts.allow_direct && facts.server >= (2, 11) {
            ReadPath::DirectBatch
        } else {
            ReadPath::MessageGet
        };
        Self { client, facts, path }
    }

    /// The same reader on the message-get path (to compare the two, or when batch direct get
    /// misbehaves).
    pub fn on_message_get(mut self) -> Self {
        self.path = ReadPath::MessageGet;
        self
    }

    pub fn path(&self) -> ReadPath {
        self.path
    }

    pub fn facts(&self) -> &StreamFacts {
        &self.facts
    }

    /// Up to `limit` messages matching `filter` from sequence `from` on, and no further than
    /// `up_to`, in stream order.
    pub async fn forward(&self, from: u64, filter: &str, limit: usize, up_to: Option<u64>) -> Result<Batch, ReadError> {
        let from = from.max(1);
        if limit == 0 || up_to.is_some_and(|u| u < from) {
            return Ok(Batch {
                messages: Vec::new(),
                more: limit == 0 && from <= self.facts.last_seq && up_to.is_none_or(|u| u >= from),
            });
        }
        match self.path {
            ReadPath::DirectBatch => {
                // `up_to_seq` bounds only `multi_last` reads: a batch stops where asked by
                // its size, and anything past `up_to` is dropped here.
                let batch = up_to.map_or(limit as u64, |u| (u - from + 1).min(limit as u64));
                let body = json!({"seq": from, "batch": batch, "next_by_subj": filter, "max_bytes": MAX_READ_BYTES});
                let (mut messages, pending) = self.direct_batch(&body).await?;
                let mut more = match pending {
                    Some(p) => p > 0,
                    // An old answer (one message, no count): more may follow.
                    None => !messages.is_empty(),
                };
                if let Some(u) = up_to {
                    if messages.iter().any(|m| m.sequence > u) {
                        messages.retain(|m| m.sequence <= u);
                        more = false;
                    } else if messages.last().is_none_or(|m| m.sequence >= u) {
                        more = false;
                    }
                    messages.truncate(limit);
                }
                Ok(Batch { messages, more })
            }
            ReadPath::MessageGet => {
                let mut messages = Vec::new();
                let mut next = from;
                let mut bytes = 0;
                // One more than asked, to know whether more follow.
                while messages.len() <= limit {
                    if bytes >= MAX_READ_BYTES {
                        return Ok(Batch { messages, more: true });
                    }
                    let Some(m) = self.get_next(next, filter).await? else {
                        break;
                    };
                    if up_to.is_some_and(|u| m.sequence > u) {
                        break;
                    }
                    next = m.sequence + 1;
                    bytes += m.size();
                    messages.push(m);
                }
                let more = messages.len() > limit;
                messages.truncate(limit);
                Ok(Batch { messages, more })
            }
        }
    }

    /// Up to `limit` messages matching `filter` at or before sequence `end`, newest first.
    pub async fn backward(&self, end: u64, filter: &str, limit: usize) -> Result<Batch, ReadError> {
        let end = end.min(self.facts.last_seq);
        let first = self.facts.first_seq.max(1);
        if end < first || limit == 0 {
            return Ok(Batch {
                messages: Vec::new(),
                more: limit == 0 && end >= first,
            });
        }
        // Most pages: the `limit` sequences before `end` all hold a matching message.
        let guess = end.saturating_sub(limit as u64 - 1).max(first);
        let near = self.forward(guess, filter, limit, Some(end)).await?;
        if near.messages.len() == limit || guess == first {
            return Ok(reversed(near.messages, guess > first));
        }
        match self.path {
            ReadPath::DirectBatch => self.backward_by_count(first, end, filter, limit).await,
            ReadPath::MessageGet => self.backward_by_scan(first, end, filter, limit).await,
        }
    }

    /// The start found by counting: how many messages match from a sequence on is one
    /// request (a batch of one tells what is pending), so a binary search finds the sequence
    /// of the `limit`-th match before `end`.
    async fn backward_by_count(&self, first: u64, end: u64, filter: &str, limit: usize) -> Result<Batch, ReadError> {
        // Counts from a server that does not count (an older replica answering) fall back
        // to scanning.
        let (Some(beyond), Some(all)) = (
            self.count_from(end + 1, filter).await?,
            self.count_from(first, filter).await?,
        ) else {
            return self.backward_by_scan(first, end, filter, limit).await;
        };
        let within = |n: u64| n.saturating_sub(beyond);
        let total = within(all);
        let lo = if total <= limit as u64 {
            first
        } else {
            let (mut lo, mut hi) = (first, end);
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                let Some(n) = self.count_from(mid, filter).await? else {
                    return self.backward_by_scan(first, end, filter, limit).await;
                };
                if within(n) >= limit as u64 {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            lo
        };
        // Messages may come and go between the counts: read on to `end`, keeping the last.
        let found = self.read_to(lo, end, filter, limit).await?;
        Ok(reversed(found.0, found.1 || lo > first))
    }

    /// Every message matching `filter` from `from` to `end`, keeping the last `limit`, and
    /// whether any were dropped.
    async fn read_to(
        &self,
        from: u64,
        end: u64,
        filter: &str,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), ReadError> {
        let mut found: Vec<StoredMessage> = Vec::new();
        let mut dropped = false;
        let mut next = from;
        let mut read = 0;
        while next <= end && read < MAX_SCAN {
            let batch = self.forward(next, filter, limit.max(1), Some(end)).await?;
            read += batch.messages.len();
            let Some(last) = batch.messages.last() else { break };
            next = last.sequence + 1;
            found.extend(batch.messages);
            if found.len() > limit {
                found.drain(..found.len() - limit);
                dropped = true;
            }
            if !batch.more {
                break;
            }
        }
        Ok((found, dropped))
    }

    /// The start found by reading windows that double, back from `end`, at most
    /// [`MAX_SCAN`] messages.
    async fn backward_by_scan(&self, first: u64, end: u64, filter: &str, limit: usize) -> Result<Batch, ReadError> {
        let mut window = (limit as u64).max(16) * 4;
        let mut read_end = end;
        let mut found: Vec<StoredMessage> = Vec::new();
        let mut read = 0;
        loop {
            // Only what the last window did not read: from `start` to below it.
            let start = end.saturating_sub(window - 1).max(first);
            let (older, dropped) = self.read_to(start, read_end, filter, limit).await?;
            read += older.len();
            let mut older = older;
            older.extend(found);
            if older.len() > limit {
                older.drain(..older.len() - limit);
            }
            found = older;
            if found.len() == limit || start == first || read >= MAX_SCAN {
                return Ok(reversed(found, dropped || start > first));
            }
            read_end = start - 1;
            window *= 2;
        }
    }

    /// How many messages match `filter` from `from` on; `None` on the message-get path.
    pub async fn count_from(&self, from: u64, filter: &str) -> Result<Option<u64>, ReadError> {
        if self.path != ReadPath::DirectBatch {
            return Ok(None);
        }
        let body = json!({"seq": from.max(1), "batch": 1, "next_by_subj": filter});
        let (messages, pending) = self.direct_batch(&body).await?;
        Ok(match (messages.is_empty(), pending) {
            (true, _) => Some(0),
            (false, Some(p)) => Some(p + 1),
            (false, None) => None,
        })
    }

    /// The sequence of the first message stored at or after `time` (matching `filter`), if
    /// any.
    pub async fn sequence_at(&self, time: DateTime<Utc>, filter: &str) -> Result<Option<u64>, ReadError> {
        if self.facts.last_seq == 0 {
            return Ok(None);
        }
        if self.path == ReadPath::DirectBatch {
            let stamp = time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let body = json!({"start_time": stamp, "batch": 1, "next_by_subj": filter});
            let (messages, _) = self.direct_batch(&body).await?;
            return Ok(messages.first().map(|m| m.sequence));
        }
        // Binary search on stored times (a stream stores in time order).
        let (mut lo, mut hi) = (self.facts.first_seq.max(1), self.facts.last_seq + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get_next(mid, ">").await? {
                Some(m) if m.time < time => lo = m.sequence + 1,
                _ => hi = mid,
            }
        }
        match self.get_next(lo, filter).await? {
            Some(m) => Ok(Some(m.sequence)),
            None => Ok(None),
        }
    }

    /// The message at `sequence`, if the stream holds it.
    pub async fn get(&self, sequence: u64) -> Result<Option<StoredMessage>, ReadError> {
        self.message_get(&json!({"seq": sequence})).await
    }

    /// The last message on `subject`, if any.
    pub async fn last_by_subject(&self, subject: &str) -> Result<Option<StoredMessage>, ReadError> {
        self.message_get(&json!({"last_by_subj": subject})).await
    }

    /// The first message matching `filter` at or after `from`.
    async fn get_next(&self, from: u64, filter: &str) -> Result<Option<StoredMessage>, ReadError> {
        self.message_get(&json!({"seq": from.max(1), "next_by_subj": filter}))
            .await
    }

    /// One `STREAM.MSG.GET`: the message, or `None` when there is none.
    async fn message_get(&self, body: &Value) -> Result<Option<StoredMessage>, ReadError> {
        let subject = format!("$JS.API.STREAM.MSG.GET.{}", self.facts.name);
        let reply = tokio::time::timeout(TIMEOUT, self.client.request(subject, body.to_string().into()))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| ReadError::Unavailable(format!("the cluster is unreachable: {e}")))?;
        let value: Value = serde_json::from_slice(&reply.payload)
            .map_err(|e| ReadError::Unavailable(format!("unreadable answer from the cluster: {e}")))?;
        if let Some(err) = value.get("error") {
            let code = err.get("code").and_then(Value::as_u64).unwrap_or(0);
            let err_code = err.get("err_code").and_then(Value::as_u64).unwrap_or(0);
            let description = err
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return match code {
                404 if err_code == NO_MESSAGE || err_code == 0 => Ok(None),
                404 => Err(ReadError::NotFound(format!(
                    "stream '{}': {description}",
                    self.facts.name
                ))),
                400 => Err(ReadError::Rejected(description.to_string())),
                _ => Err(ReadError::Unavailable(format!(
                    "stream '{}' cannot be read right now ({code} {description}); retry shortly",
                    self.facts.name
                ))),
            };
        }
        let m = &value["message"];
        let b64 = |v: &Value| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .map_err(|e| ReadError::Unavailable(format!("unreadable message from the cluster: {e}")))
        };
        let time = m["time"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| ReadError::Unavailable("a message without a time from the cluster".into()))?;
        let (Some(sequence), Some(subject)) = (m["seq"].as_u64().filter(|s| *s > 0), m["subject"].as_str()) else {
            return Err(ReadError::Unavailable(
                "a message without its sequence or subject from the cluster".into(),
            ));
        };
        Ok(Some(StoredMessage {
            sequence,
            subject: subject.to_string(),
            time,
            headers: parse_header_block(&b64(&m["hdrs"])?),
            payload: b64(&m["data"])?.into(),
            decoded_as: None,
        }))
    }

    /// One batch direct get: its messages, and how many more the server had (`None` from a
    /// server that answers a batch with one message and no count).
    async fn direct_batch(&self, body: &Value) -> Result<(Vec<StoredMessage>, Option<u64>), ReadError> {
        let subject = format!("$JS.API.DIRECT.GET.{}", self.facts.name);
        let inbox = self.client.new_inbox();
        let unreachable =
            |e: &dyn std::fmt::Display| ReadError::Unavailable(format!("the cluster is unreachable: {e}"));
        let mut replies = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| unreachable(&e))?;
        self.client
            .publish_with_reply(subject, inbox, body.to_string().into())
            .await
            .map_err(|e| unreachable(&e))?;
        let mut messages = Vec::new();
        loop {
            let reply = tokio::time::timeout(TIMEOUT, replies.next())
                .await
                .map_err(|_| timed_out())?
                .ok_or_else(|| ReadError::Unavailable("the connection to the cluster closed".into()))?;
            if let Some(status) = reply.status {
                let pending = header(&reply, "Nats-Num-Pending").and_then(|p| p.parse().ok());
                return match status.as_u16() {
                    204 => Ok((messages, pending.or(Some(0)))),
                    404 => Ok((messages, Some(0))),
                    503 => Err(ReadError::Unavailable(format!(
                        "stream '{}' does not answer direct gets (no responders): it may be gone, or `allowDirect` was \
                         turned off; retry",
                        self.facts.name
                    ))),
                    400 => Err(ReadError::Rejected(reply.description.unwrap_or_default())),
                    code => Err(ReadError::Unavailable(format!(
                        "stream '{}' cannot be read right now ({code} {}); retry shortly",
                        self.facts.name,
                        reply.description.unwrap_or_default()
                    ))),
                };
            }
            let Some(m) = direct_message(&reply) else {
                return Err(ReadError::Unavailable(
                    "a direct get answer without its sequence".into(),
                ));
            };
            let counted = header(&reply, "Nats-Num-Pending").is_some();
            messages.push(m);
            if !counted {
                // A server before 2.11 answers the first message only.
                return Ok((messages, None));
            }
        }
    }
}

fn timed_out() -> ReadError {
    ReadError::Unavailable(format!(
        "the cluster did not answer within {TIMEOUT:?}; it may be overloaded or unreachable"
    ))
}

fn reversed(mut messages: Vec<StoredMessage>, more: bool) -> Batch {
    messages.reverse();
    Batch { messages, more }
}

/// The last value of header `name` (JetStream appends its own after the message's).
fn header(m: &async_nats::Message, name: &str) -> Option<String> {
    m.headers.as_ref()?.get_last(name).map(|v| v.as_str().to_string())
}

/// A message of a direct get's answer.
fn direct_message(m: &async_nats::Message) -> Option<StoredMessage> {
    let sequence = header(m, "Nats-Sequence")?.parse().ok()?;
    let subject = header(m, "Nats-Subject")?;
    let time = header(m, "Nats-Time-Stamp")
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))?;
    let mut headers = Vec::new();
    if let Some(map) = &m.headers {
        for (name, values) in map.iter() {
            let name = name.to_string();
            let server = SERVER_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(&name));
            // The message's own value of a name the server also sets comes first.
            let own = if server {
                values.len().saturating_sub(1)
            } else {
                values.len()
            };
            headers.extend(values.iter().take(own).map(|v| (name.clone(), v.as_str().to_string())));
        }
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    Some(StoredMessage {
        sequence,
        subject,
        time,
        headers,
        payload: m.payload.clone(),
        decoded_as: None,
    })
}

/// A NATS header block (`NATS/1.0\r\nName: value\r\n…\r\n\r\n`) as name-value pairs.
fn parse_header_block(block: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(block);
    let mut headers: Vec<(String, String)> = text
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_blocks_parse_into_pairs() {
        let block = b"NATS/1.0\r\nNats-Msg-Id: a1\r\nX-Trace: t: 1\r\n\r\n";
        assert_eq!(
            parse_header_block(block),
            vec![
                ("Nats-Msg-Id".to_string(), "a1".to_string()),
                ("X-Trace".to_string(), "t: 1".to_string())
            ]
        );
        assert!(parse_header_block(b"").is_empty());
    }
}
