//! Messages: pages of what a stream holds, one message, and the subjects it holds them on.
//! Each resolver translates its arguments into one use case of `jsc_app::messages`.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use jsc_app::Error as ApiError;
use jsc_app::messages::{self as uc, MessageAt, MessageQuery, MessageStart, StoredMessage};

use crate::connection::{Parts, Total, connection, paging};
use crate::context::{caller, console};
use crate::mutation::{Outcome, input, payload};
use jsc_domain::masking::{MaskAction, MaskTarget, MaskingRule};

/// Most bytes of payload text one message may show.
const MAX_PAYLOAD_BYTES: i32 = 8 * 1024 * 1024;

/// Which way a page of messages reads.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_app::messages::Direction")]
pub enum MessageDirection {
    /// Oldest first: from the start on, towards the newest message.
    Forward,
    /// Newest first: from the start back, towards the oldest message.
    Backward,
}

/// An end of a stream.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum StreamEnd {
    /// The oldest message the stream holds.
    First,
    /// The newest message the stream holds.
    Last,
}

/// How a payload is shown.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_app::messages::Encoding")]
pub enum PayloadEncoding {
    /// UTF-8 text as it is.
    Text,
    /// JSON, pretty-printed.
    Json,
    /// Standard base64 of the bytes.
    #[graphql(name = "BASE64")]
    Base64,
    /// Lower-case hex of the bytes, two digits a byte.
    Hex,
    /// MessagePack, shown as pretty JSON.
    #[graphql(name = "MSGPACK")]
    MsgPack,
    /// CBOR, shown as pretty JSON.
    Cbor,
}

/// How the console read a page of messages (never by consuming them).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_app::messages::ReadPath")]
pub enum MessageReadPath {
    /// Batch direct get: the page in one request (nats-server 2.11+ and `allowDirect` on the
    /// stream).
    DirectBatch,
    /// One message get a request: older servers, and streams without `allowDirect`.
    MessageGet,
}

/// Where a page of messages starts: exactly one of the fields.
#[derive(InputObject, Default)]
pub struct MessageStartInput {
    /// At this stream sequence, itself included (forward: it and after; backward: it and
    /// before). 1 to the stream's last sequence + 1 (`VALIDATION` otherwise).
    pub sequence: Option<u64>,
    /// At the first message stored at or after this time (backward: the messages before
    /// it). Not in the future (`VALIDATION`).
    pub time: Option<DateTime<Utc>>,
    /// At an end of the stream.
    pub end: Option<StreamEnd>,
}

impl MessageStartInput {
    fn start(self) -> Result<Option<MessageStart>, ApiError> {
        Ok(match (self.sequence, self.time, self.end) {
            (None, None, None) => None,
            (Some(s), None, None) => Some(MessageStart::Sequence(s)),
            (None, Some(t), None) => Some(MessageStart::Time(t)),
            (None, None, Some(StreamEnd::First)) => Some(MessageStart::First),
            (None, None, Some(StreamEnd::Last)) => Some(MessageStart::Last),
            _ => {
                return Err(ApiError::validation(
                    "from: give one of `sequence`, `time` or `end`, not several",
                ));
            }
        })
    }
}

/// A header of a message.
#[derive(SimpleObject)]
pub struct MessageHeader {
    /// The header's name, as published.
    pub name: String,
    /// Its value (a name that repeats has a header for each value).
    pub value: String,
}

/// A message's payload as text.
#[derive(SimpleObject)]
pub struct MessagePayload {
    /// How the text shows the payload: the encoding asked for, or the one detected.
    pub encoding: PayloadEncoding,
    /// The payload shown in `encoding`, at most `maxBytes` bytes of it.
    pub text: String,
    /// The text was cut at `maxBytes`: ask again with a larger one to see the rest.
    pub truncated: bool,
    /// Size of the payload itself, in bytes (before any encoding).
    pub size: u64,
    /// The Protobuf message type the payload was decoded from, through a schema registered
    /// for its subject (the text is then that message's JSON); null for a payload as stored.
    pub protobuf_type: Option<String>,
}

/// A message a stream holds, read without consuming it.
pub struct MessageObj(pub(crate) StoredMessage);

/// A message a stream holds, as read without consuming it (no consumer saw it, nothing was
/// acknowledged).
#[Object(name = "StreamMessage")]
impl MessageObj {
    /// Its stream sequence.
    async fn sequence(&self) -> u64 {
        self.0.sequence
    }
    /// The subject it was published on.
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    /// When the stream stored it.
    async fn time(&self) -> DateTime<Utc> {
        self.0.time
    }
    /// Its headers, by name (none: an empty list).
    async fn headers(&self) -> Vec<MessageHeader> {
        self.0
            .headers
            .iter()
            .map(|(name, value)| MessageHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    }
    /// Bytes the message takes as JetStream counts them: subject, headers and payload.
    async fn size(&self) -> u64 {
        self.0.size() as u64
    }
    /// The payload, decoded only when asked for. `VALIDATION` when it is not in the encoding
    /// asked for (the message says which to ask for instead).
    async fn payload(
        &self,
        #[graphql(
            desc = "How to show the payload; left out, as what it looks like (JSON, text, MessagePack, CBOR, else base64)."
        )]
        encoding: Option<PayloadEncoding>,
        #[graphql(
            default = 65536,
            desc = "Most bytes of text to return: 1 to 8,388,608, 65,536 by default. Longer text is cut and says so (`truncated`)."
        )]
        max_bytes: i32,
    ) -> Result<MessagePayload> {
        if !(1..=MAX_PAYLOAD_BYTES).contains(&max_bytes) {
            return Err(
                ApiError::validation(format!("maxBytes: give 1 to {MAX_PAYLOAD_BYTES}, not {max_bytes}")).into(),
            );
        }
        let d = uc::decode(&self.0.payload, encoding.map(Into::into), max_bytes as usize)
            .map_err(|e| ApiError::validation(format!("encoding: {e}")))?;
        Ok(MessagePayload {
            encoding: d.encoding.into(),
            text: d.text,
            truncated: d.truncated,
            size: self.0.payload.len() as u64,
            protobuf_type: self.0.decoded_as.clone(),
        })
    }
}

/// What a page of messages tells besides its messages.
pub struct MessagePageExtra {
    purged_through: Option<u64>,
    path: uc::ReadPath,
}

connection!(MessageConnection, MessageEdge, MessageObj, "messages", MessagePageExtra {
    /// The cursor (`after`) pointed at messages that are gone: every message up to this
    /// sequence was purged, expired or deleted since the cursor was made, and the page goes
    /// on from the oldest one left. Null when nothing the cursor pointed at is gone.
    async fn purged_through(&self) -> Option<u64> {
        self.1.purged_through
    }
    /// How the console read the page.
    async fn read_path(&self) -> MessageReadPath {
        self.1.path.into()
    }
});

/// A subject a stream holds messages on.
#[derive(SimpleObject)]
pub struct SubjectCount {
    /// The subject.
    pub subject: String,
    /// How many messages the stream holds on it.
    pub messages: u64,
}

connection!(SubjectConnection, SubjectEdge, SubjectCount, "subjects");

#[derive(Default)]
pub struct MessageQueryRoot;

#[Object]
impl MessageQueryRoot {
    /// A page of a stream's messages, read without consuming them: browsing a work-queue or
    /// interest stream leaves it and its consumers exactly as they were. Cursors are the
    /// messages' sequences, valid for this stream, subject and direction while it grows; after
    /// a purge the page says what went (`purgedThrough`). Needs the viewer role on the
    /// cluster. Errors: `VALIDATION` (a bad subject filter, a sequence past the end, a time in
    /// the future, a bad cursor), `NOT_FOUND`, `UNAVAILABLE`.
    #[graphql(complexity = "crate::connection::per_item(first, None, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The stream's name.")] stream: String,
        #[graphql(
            desc = "Where to start; left out, at the oldest message (forward) or the newest (backward). Not with `after`."
        )]
        from: Option<MessageStartInput>,
        #[graphql(
            default_with = "MessageDirection::Forward",
            desc = "Which way to read; FORWARD by default."
        )]
        direction: MessageDirection,
        #[graphql(
            desc = "Only messages on subjects matching this filter (`*` and `>` wildcards); left out, every subject."
        )]
        subject: Option<String>,
        #[graphql(desc = "The first `first` messages in `direction` (after `after`): 0 to 1,000; 50 when left out.")]
        first: Option<i32>,
        #[graphql(
            desc = "Only messages after this cursor in `direction` (an `endCursor` or edge `cursor` of the same stream, subject and direction; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(
            default,
            desc = "Show the messages as they are, not as the organization's masking rules show them: needs the admin role on the cluster (`FORBIDDEN` otherwise), and is recorded in the stream's history and the audit trail (`MessagesReadUnmasked`) before anything is read."
        )]
        unmasked: bool,
    ) -> Result<MessageConnection> {
        let query = MessageQuery {
            start: from.unwrap_or_default().start()?,
            direction: direction.into(),
            subject,
            paging: paging(first, after, None, None),
            unmasked,
        };
        let page = console(ctx)
            .messages(&caller(ctx)?, &cluster_id, &stream, query)
            .await?;
        let extra = MessagePageExtra {
            purged_through: page.purged_through,
            path: page.path,
        };
        let later = page.count.map(|count| {
            Total::Later(std::sync::Arc::new(move || {
                let count = count.clone();
                Box::pin(async move { count.count().await })
            }))
        });
        Ok(MessageConnection(Parts::of(page.page, MessageObj, later), extra))
    }

    /// One message of a stream, by sequence or as the last on a subject (exactly one of
    /// them). Needs the viewer role on the cluster. Errors: `NOT_FOUND` (no such message),
    /// `VALIDATION`, `UNAVAILABLE`.
    async fn message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The stream's name.")] stream: String,
        #[graphql(desc = "The message's stream sequence.")] sequence: Option<u64>,
        #[graphql(desc = "The last message on this subject (no wildcards).")] last_by_subject: Option<String>,
        #[graphql(
            default,
            desc = "Show the messages as they are, not as the organization's masking rules show them: needs the admin role on the cluster (`FORBIDDEN` otherwise), and is recorded in the stream's history and the audit trail (`MessagesReadUnmasked`) before anything is read."
        )]
        unmasked: bool,
    ) -> Result<MessageObj> {
        let at = match (sequence, last_by_subject) {
            (Some(s), None) => MessageAt::Sequence(s),
            (None, Some(subject)) => MessageAt::LastBySubject(subject),
            _ => return Err(ApiError::validation("give `sequence` or `lastBySubject`, one of them").into()),
        };
        Ok(MessageObj(
            console(ctx)
                .message(&caller(ctx)?, &cluster_id, &stream, at, unmasked)
                .await?,
        ))
    }

    /// The subjects a stream holds messages on, with how many each, by subject. Needs the
    /// viewer role on the cluster. Errors: `VALIDATION` (a bad filter or cursor),
    /// `NOT_FOUND`, `UNAVAILABLE`.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn subjects(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The stream's name.")] stream: String,
        #[graphql(desc = "Only subjects matching this filter (`*` and `>` wildcards); left out, every subject.")]
        filter: Option<String>,
        #[graphql(
            desc = "The first `first` subjects (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(desc = "Only subjects after this cursor (`VALIDATION` for a cursor of another list).")] after: Option<
            String,
        >,
        #[graphql(desc = "The last `last` subjects (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(desc = "Only subjects before this cursor (`VALIDATION` for a cursor of another list).")]
        before: Option<String>,
    ) -> Result<SubjectConnection> {
        let page = console(ctx)
            .subjects(
                &caller(ctx)?,
                &cluster_id,
                &stream,
                filter,
                &paging(first, after, last, before),
            )
            .await?;
        Ok(SubjectConnection::new(page, |(subject, messages)| SubjectCount {
            subject,
            messages,
        }))
    }
}

/// What a tail sent.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TailEventKind {
    /// The next message (`message`).
    Message,
    /// The tail fell more than `maxBehind` behind the newest message and went on from there:
    /// `skippedFrom` to `skippedTo` were passed over (read them with `messages`).
    Skipped,
}

/// One event of a tail: a message, or the sequences it skipped.
#[derive(SimpleObject)]
pub struct MessageTailEvent {
    /// What happened.
    pub kind: TailEventKind,
    /// The message, for `MESSAGE`.
    pub message: Option<MessageObj>,
    /// The first sequence passed over, for `SKIPPED`.
    pub skipped_from: Option<u64>,
    /// The last sequence passed over, for `SKIPPED`.
    pub skipped_to: Option<u64>,
}

/// What a header must be: `name` and exactly one of the tests.
#[derive(InputObject)]
pub struct HeaderPredicateInput {
    /// The header's name (compared ignoring case).
    pub name: String,
    /// `true`: the message has the header, with any value.
    pub present: Option<bool>,
    /// One of the header's values is exactly this.
    pub equals: Option<String>,
    /// One of the header's values contains this text.
    pub contains: Option<String>,
    /// One of the header's values matches this regular expression (Rust `regex` syntax,
    /// linear time; a pattern too large to build is `VALIDATION`).
    pub regex: Option<String>,
}

/// A search of a stream: the range to read, what a message must meet to match (every
/// predicate given), and when to stop.
#[derive(InputObject, Default)]
pub struct MessageSearchInput {
    /// Only messages on subjects matching this filter (`*` and `>` wildcards).
    pub subject: Option<String>,
    /// Start at this sequence; left out, at the oldest message (or `fromTime`).
    pub from_sequence: Option<u64>,
    /// Stop after this sequence; left out, at the newest message when the search began (or
    /// `toTime`).
    pub to_sequence: Option<u64>,
    /// Start at the first message stored at or after this time.
    pub from_time: Option<DateTime<Utc>>,
    /// Stop before the first message stored at or after this time.
    pub to_time: Option<DateTime<Utc>>,
    /// Tests on headers, all of which must hold.
    #[graphql(default)]
    pub headers: Vec<HeaderPredicateInput>,
    /// The payload contains these bytes (as UTF-8).
    pub payload_contains: Option<String>,
    /// The payload matches this regular expression (Rust `regex` syntax, linear time).
    pub payload_regex: Option<String>,
    /// An expression the message must meet, a safe subset of CEL over `subject`, `headers`
    /// (each name's first value), `payload` (parsed JSON), `text`, `time` (epoch ms),
    /// `sequence` and `size`: say `payload.total > 100 && headers["X-Region"] == "eu"`. It
    /// has no loops and reaches nothing outside the message; one larger than 512 parts is
    /// `VALIDATION`, as is one that does not compile (with where).
    pub expression: Option<String>,
    /// Most messages to read: for a search 1 to 100,000,000, 1,000,000 by default; an
    /// export reads the whole range by default.
    pub max_scanned: Option<u64>,
    /// Most matches to send: for a search 1 to 10,000, 100 by default; an export writes
    /// every match by default.
    pub max_results: Option<u64>,
    /// Most seconds to run: for a search 1 to 600, 60 by default; for an export 1 to 86,400,
    /// 3,600 by default.
    pub time_budget_seconds: Option<u64>,
    /// Search the messages as they are, not as masking shows them: needs the admin role on
    /// the cluster, and is recorded in the stream's history before anything is read.
    #[graphql(default)]
    pub unmasked: bool,
}

impl MessageSearchInput {
    /// The use case's request, once each header names exactly one test.
    fn into_request(self) -> Result<uc::SearchRequest, ApiError> {
        let s = self;
        let mut headers = Vec::new();
        for h in s.headers {
            let test = match (h.present, h.equals, h.contains, h.regex) {
                (Some(true), None, None, None) => uc::HeaderPredicate::Present,
                (None, Some(v), None, None) => uc::HeaderPredicate::Equals(v),
                (None, None, Some(v), None) => uc::HeaderPredicate::Contains(v),
                (None, None, None, Some(r)) => uc::HeaderPredicate::Regex(r),
                _ => {
                    return Err(ApiError::validation(format!(
                        "headers: give header '{}' one test: `present: true`, `equals`, `contains` or `regex`",
                        h.name
                    )));
                }
            };
            headers.push((h.name, test));
        }
        Ok(uc::SearchRequest {
            subject: s.subject,
            from_sequence: s.from_sequence,
            to_sequence: s.to_sequence,
            from_time: s.from_time,
            to_time: s.to_time,
            headers,
            payload_contains: s.payload_contains,
            payload_regex: s.payload_regex,
            expression: s.expression,
            max_scanned: s.max_scanned,
            max_results: s.max_results,
            time_budget_seconds: s.time_budget_seconds,
            unmasked: s.unmasked,
        })
    }
}

/// What a search event is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SearchEventKind {
    /// A message that matched (`message`).
    Match,
    /// How far the search has come (`progress`), at most every 250 ms.
    Progress,
    /// The search ended (`progress` and `stop`); nothing follows.
    Done,
}

/// Why a search ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_app::messages::SearchStop")]
pub enum SearchStop {
    /// It read the whole range.
    End,
    /// It read `maxScanned` messages.
    MaxScanned,
    /// It found `maxResults` matches.
    MaxResults,
    /// It ran `timeBudgetSeconds`.
    TimeBudget,
}

/// How far a search has come.
#[derive(SimpleObject)]
pub struct SearchProgress {
    /// Messages read (on the subject filter).
    pub scanned: u64,
    /// Messages that matched.
    pub matched: u64,
    /// Bytes read: subjects, headers and payloads.
    pub bytes: u64,
    /// The last sequence read.
    pub position: u64,
    /// Milliseconds since the search began.
    pub elapsed_ms: u64,
    /// Milliseconds left at the pace so far, until the end of the range or `maxScanned`;
    /// null until the search has read something.
    pub estimated_remaining_ms: Option<u64>,
}

impl From<uc::SearchProgress> for SearchProgress {
    fn from(p: uc::SearchProgress) -> Self {
        Self {
            scanned: p.scanned,
            matched: p.matched,
            bytes: p.bytes,
            position: p.position,
            elapsed_ms: p.elapsed.as_millis() as u64,
            estimated_remaining_ms: p.remaining.map(|r| r.as_millis() as u64),
        }
    }
}

/// One event of a search.
#[derive(SimpleObject)]
pub struct MessageSearchEvent {
    /// What happened.
    pub kind: SearchEventKind,
    /// The message, for `MATCH`.
    pub message: Option<MessageObj>,
    /// How far the search has come, for `PROGRESS` and `DONE`.
    pub progress: Option<SearchProgress>,
    /// Why it ended, for `DONE`.
    pub stop: Option<SearchStop>,
}

/// Which messages to export, and how.
#[derive(InputObject)]
pub struct MessageExportInput {
    /// The id of the cluster the stream is on.
    pub cluster_id: ID,
    /// The stream's name.
    pub stream: String,
    /// Which messages: a range, filters, limits (as a search takes them); left out, every
    /// message the stream holds now.
    pub search: Option<MessageSearchInput>,
    /// The file format.
    pub format: crate::history::ExportFileFormat,
}

/// What a message export event is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ExportEventKind {
    /// How far the export has come (`progress`), at most every 250 ms.
    Progress,
    /// The export is written (`progress`, `stop`, `export`); nothing follows.
    Done,
}

/// One event of a message export.
#[derive(SimpleObject)]
pub struct MessageExportEvent {
    /// What happened.
    pub kind: ExportEventKind,
    /// How far the export has come: `matched` messages are written.
    pub progress: SearchProgress,
    /// Why the read ended, for `DONE` (`END`: the whole range).
    pub stop: Option<SearchStop>,
    /// The file and its download link, for `DONE`.
    pub export: Option<crate::history::ExportFile>,
}

#[derive(Default)]
pub struct MessageSubscription;

#[async_graphql::Subscription]
impl MessageSubscription {
    /// The messages arriving in a stream, as it stores them, read without consuming them
    /// (no consumer is created, so this works on work-queue streams too). Starts after the
    /// newest message, or at `fromSequence` (say, after the last one a reconnecting client
    /// saw). A client that falls more than `maxBehind` behind (or starts further back) gets
    /// a `SKIPPED` event and goes on with the newest messages; the server holds at most one
    /// read of 100 messages for it. Needs the viewer role on the cluster. Errors:
    /// `VALIDATION`, `NOT_FOUND`, `UNAVAILABLE` (which ends the tail), `UNAUTHENTICATED` when
    /// the credential ends.
    async fn message_tail(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The stream's name.")] stream: String,
        #[graphql(
            desc = "Only messages on subjects matching this filter (`*` and `>` wildcards); left out, every subject."
        )]
        subject: Option<String>,
        #[graphql(desc = "Start at this sequence (1 to the last + 1) instead of after the newest message.")]
        from_sequence: Option<u64>,
        #[graphql(
            default = 1000,
            desc = "How many messages behind the newest the tail may fall before it skips ahead: 1 to 100,000; 1,000 by default."
        )]
        max_behind: u64,
        #[graphql(
            default,
            desc = "Show the messages as they are, not as the organization's masking rules show them: needs the admin role on the cluster (`FORBIDDEN` otherwise), and is recorded in the stream's history and the audit trail (`MessagesReadUnmasked`) before anything is read."
        )]
        unmasked: bool,
    ) -> Result<impl futures::Stream<Item = Result<MessageTailEvent>> + use<>> {
        use futures::StreamExt;
        let start = uc::TailStart {
            sequence: from_sequence,
            max_behind,
            unmasked,
        };
        let tail = console(ctx)
            .message_tail(&caller(ctx)?, &cluster_id, &stream, subject, start)
            .await?;
        let events = tail.map(|item| {
            item.map(|i| match i {
                uc::TailItem::Message(m) => MessageTailEvent {
                    kind: TailEventKind::Message,
                    message: Some(MessageObj(m)),
                    skipped_from: None,
                    skipped_to: None,
                },
                uc::TailItem::Skipped { from, to } => MessageTailEvent {
                    kind: TailEventKind::Skipped,
                    message: None,
                    skipped_from: Some(from),
                    skipped_to: Some(to),
                },
            })
        });
        Ok(crate::context::guarded_results(ctx, events)?)
    }
    /// Searches a stream's messages: each match as it is found, progress at most every
    /// 250 ms, and `DONE` with why it ended. It reads the stream without consuming it (no
    /// consumer), and stops at once when the client completes the subscription. Needs the
    /// viewer role on the cluster. Errors: `VALIDATION` (a bad filter, regex, bound or
    /// limit), `NOT_FOUND`, `UNAVAILABLE`.
    async fn message_search(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The stream's name.")] stream: String,
        #[graphql(
            desc = "What to look for, where, and when to stop; left out, every message, within the default limits."
        )]
        search: Option<MessageSearchInput>,
        #[graphql(desc = "Run your saved search of this name (instead of `search`).")] saved: Option<String>,
    ) -> Result<impl futures::Stream<Item = Result<MessageSearchEvent>> + use<>> {
        use futures::StreamExt;
        let request = match (search, saved) {
            (Some(_), Some(_)) => {
                return Err(ApiError::validation("give `search` or `saved`, not both").into());
            }
            (None, Some(name)) => console(ctx).saved_search(&caller(ctx)?, &cluster_id, &stream, &name)?,
            (search, None) => search.unwrap_or_default().into_request()?,
        };
        let scan = console(ctx)
            .search_messages(&caller(ctx)?, &cluster_id, &stream, request)
            .await?;
        let events = scan.map(|e| {
            e.map(|e| match e {
                uc::ScanEvent::Match(m) => MessageSearchEvent {
                    kind: SearchEventKind::Match,
                    message: Some(MessageObj(m)),
                    progress: None,
                    stop: None,
                },
                uc::ScanEvent::Progress(p) => MessageSearchEvent {
                    kind: SearchEventKind::Progress,
                    message: None,
                    progress: Some(p.into()),
                    stop: None,
                },
                uc::ScanEvent::Done(p, stop) => MessageSearchEvent {
                    kind: SearchEventKind::Done,
                    message: None,
                    progress: Some(p.into()),
                    stop: Some(stop.into()),
                },
            })
        });
        Ok(crate::context::guarded_results(ctx, events)?)
    }

    /// Exports a stream's messages as mutation exportMessages does, reporting as it goes:
    /// `PROGRESS` at most every 250 ms, then `DONE` with the download link (or the error
    /// that ended it). Completing the subscription stops the export at once. `jsconsole
    /// messages export` uses it. Needs the viewer role on the cluster.
    async fn message_export(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which messages to export, and in which format.")] input: MessageExportInput,
    ) -> Result<impl futures::Stream<Item = Result<MessageExportEvent>> + use<>> {
        use futures::StreamExt;
        let request = input.search.unwrap_or_default().into_request()?;
        let live = console(ctx).export_messages_live(
            caller(ctx)?,
            input.cluster_id.to_string(),
            input.stream,
            request,
            input.format.into(),
        );
        let events = live.map(|e| {
            e.map(|e| match e {
                uc::ExportEvent::Progress(p) => MessageExportEvent {
                    kind: ExportEventKind::Progress,
                    progress: p.into(),
                    stop: None,
                    export: None,
                },
                uc::ExportEvent::Done(done) => MessageExportEvent {
                    kind: ExportEventKind::Done,
                    progress: done.progress.into(),
                    stop: Some(done.stop.into()),
                    export: Some(done.export.into()),
                },
            })
        });
        Ok(crate::context::guarded_results(ctx, events)?)
    }
}

/// What a masking rule finds.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MaskTargetKind {
    /// A header, by name (ignoring case).
    Header,
    /// A field of a JSON payload: keys separated by `.`, `*` for any key or array item.
    JsonPath,
    /// Payload text matching a regular expression.
    Regex,
}

/// What a masking rule does with what it finds.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MaskActionKind {
    /// Takes it out: the header or field is gone, matched text removed.
    Remove,
    /// Shows `***` in its place.
    Mask,
    /// Shows `replaceWith` in its place.
    Replace,
}

/// A masking rule of an organization.
pub struct MaskingRuleObj(pub(crate) MaskingRule);

/// What readers of an organization's streams do not see: on which streams, what, and how
/// it is hidden.
#[Object(name = "MaskingRule")]
impl MaskingRuleObj {
    /// The rule's label.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The only stream it applies to (on any of the organization's clusters); null for every
    /// stream.
    async fn stream(&self) -> Option<&str> {
        self.0.stream.as_deref()
    }
    /// What it finds.
    async fn target(&self) -> MaskTargetKind {
        match self.0.target {
            MaskTarget::Header { .. } => MaskTargetKind::Header,
            MaskTarget::JsonPath { .. } => MaskTargetKind::JsonPath,
            MaskTarget::Regex { .. } => MaskTargetKind::Regex,
        }
    }
    /// The header's name, the JSON path or the pattern.
    async fn pattern(&self) -> &str {
        match &self.0.target {
            MaskTarget::Header { name } => name,
            MaskTarget::JsonPath { path } => path,
            MaskTarget::Regex { pattern } => pattern,
        }
    }
    /// What it does with what it finds.
    async fn action(&self) -> MaskActionKind {
        match self.0.action {
            MaskAction::Remove => MaskActionKind::Remove,
            MaskAction::Mask => MaskActionKind::Mask,
            MaskAction::Replace { .. } => MaskActionKind::Replace,
        }
    }
    /// The text shown instead, for `REPLACE`.
    async fn replace_with(&self) -> Option<&str> {
        match &self.0.action {
            MaskAction::Replace { with } => Some(with),
            _ => None,
        }
    }
}

/// A masking rule to set: a name, at most one stream, exactly one of `header`, `jsonPath`
/// and `regex`, and an action.
#[derive(InputObject)]
pub struct MaskingRuleInput {
    /// A label, 1 to 64 characters.
    pub name: String,
    /// Only this stream (by name, on any cluster of the organization); left out, every
    /// stream.
    pub stream: Option<String>,
    /// Hide this header (by name, ignoring case).
    pub header: Option<String>,
    /// Hide this field of JSON payloads: keys separated by `.`, `*` for any key or array
    /// item (`card.number`, `items.*.price`).
    pub json_path: Option<String>,
    /// Hide payload text matching this regular expression (Rust `regex` syntax).
    pub regex: Option<String>,
    /// What to do with what the rule finds.
    pub action: MaskActionKind,
    /// The text to show instead, for `REPLACE`.
    pub replace_with: Option<String>,
}

impl MaskingRuleInput {
    fn into_rule(self, i: usize) -> Result<MaskingRule, ApiError> {
        let target = match (self.header, self.json_path, self.regex) {
            (Some(name), None, None) => MaskTarget::Header { name },
            (None, Some(path), None) => MaskTarget::JsonPath { path },
            (None, None, Some(pattern)) => MaskTarget::Regex { pattern },
            _ => {
                return Err(ApiError::validation(format!(
                    "rules[{i}]: give exactly one of `header`, `jsonPath` and `regex`"
                )));
            }
        };
        let action = match (self.action, self.replace_with) {
            (MaskActionKind::Remove, None) => MaskAction::Remove,
            (MaskActionKind::Mask, None) => MaskAction::Mask,
            (MaskActionKind::Replace, Some(with)) => MaskAction::Replace { with },
            (MaskActionKind::Replace, None) => {
                return Err(ApiError::validation(format!(
                    "rules[{i}].replaceWith: give the text to show instead"
                )));
            }
            (_, Some(_)) => {
                return Err(ApiError::validation(format!(
                    "rules[{i}].replaceWith: only for action REPLACE"
                )));
            }
        };
        Ok(MaskingRule {
            name: self.name,
            stream: self.stream,
            target,
            action,
        })
    }
}

input! {
    /// Replaces an organization's masking rules (mutation setMaskingRules).
    SetMaskingRulesInput {
        /// The ID of the organization.
        organization_id: ID,
        /// The rules, applied in this order; an empty list removes them all. At most 100.
        rules: Vec<MaskingRuleInput>,
    }
}

payload! {
    /// What mutation setMaskingRules answers.
    SetMaskingRulesPayload {
        /// The organization with its new rules.
        organization: crate::identity::OrganizationObj,
    }
}

#[derive(Default)]
pub struct MessageMutation;

input! {
    /// Exports a stream's messages (mutation exportMessages).
    ExportMessagesInput {
        /// Which messages, and the file format.
        #[graphql(flatten)]
        export: MessageExportInput,
    }
}

payload! {
    /// What mutation exportMessages answers: the file, how far the read came and why it ended.
    ExportMessagesPayload {
        #[graphql(flatten)]
        file: crate::history::ExportFile,
        /// How far the read came: `matched` messages are in the file.
        progress: SearchProgress,
        /// Why the read ended (`END`: the whole range; otherwise a limit cut it short).
        stop: SearchStop,
    }
}

#[Object]
impl MessageMutation {
    /// Writes a stream's messages — a range, or what a search finds in it — to a file
    /// (Parquet, CSV or JSON lines), oldest first, and returns a signed download link valid
    /// for an hour. Masking applies; `search.unmasked` needs admin and is recorded first.
    /// The read never consumes (no consumer). Needs the viewer role on the cluster. Errors:
    /// `VALIDATION` (as messageSearch), `NOT_FOUND`, `UNAVAILABLE`.
    async fn export_messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which messages to export, and in which format.")] input: ExportMessagesInput,
    ) -> Result<ExportMessagesPayload> {
        let caller = caller(ctx)?;
        let e = input.export;
        let request = e.search.unwrap_or_default().into_request()?;
        let done = console(ctx)
            .export_messages(&caller, &e.cluster_id, &e.stream, request, e.format.into(), &mut |_| {})
            .await?;
        Ok(ExportMessagesPayload {
            file: done.export.into(),
            progress: done.progress.into(),
            stop: done.stop.into(),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Replaces an organization's masking rules: from the next read on, every page, message,
    /// tail and search of its streams shows messages through them (admin). Errors:
    /// `VALIDATION` (a rule without a name or target, a pattern that does not compile),
    /// `FORBIDDEN`, `NOT_FOUND`.
    async fn set_masking_rules(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization and its rules.")] input: SetMaskingRulesInput,
    ) -> Result<SetMaskingRulesPayload> {
        let caller = caller(ctx)?;
        let rules = input
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.into_rule(i))
            .collect::<Result<Vec<_>, _>>()?;
        let org = console(ctx)
            .set_masking_rules(&caller, &input.organization_id, rules)
            .await?;
        Ok(SetMaskingRulesPayload {
            organization: crate::identity::OrganizationObj(org),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }
}

input! {
    /// Removes one message from a stream (mutation deleteMessage).
    DeleteMessageInput {
        /// The id of the cluster the stream is on.
        cluster_id: ID,
        /// The stream's name.
        stream: String,
        /// The message's stream sequence.
        message_sequence: u64,
        /// Also overwrite its bytes in the store (slower); by default it is only removed.
        #[graphql(default)]
        erase: bool,
    }
}

payload! {
    /// What mutation deleteMessage answers.
    DeleteMessagePayload {
        /// The sequence of the message removed.
        message_sequence: u64,
    }
}

/// Where republished messages go.
#[derive(InputObject, Default)]
pub struct RepublishTargetInput {
    /// Another cluster to publish on; left out, the source's own.
    pub cluster_id: Option<ID>,
    /// One subject for every message; left out, each message's own subject.
    pub subject: Option<String>,
    /// Only this stream may store them (`Nats-Expected-Stream`); left out, whichever stream
    /// captures the subject.
    pub stream: Option<String>,
}

impl From<RepublishTargetInput> for uc_republish::Target {
    fn from(t: RepublishTargetInput) -> Self {
        Self {
            cluster_id: t.cluster_id.map(|c| c.to_string()),
            subject: t.subject,
            stream: t.stream,
        }
    }
}

input! {
    /// Republishes a stream's messages (mutation republishMessages).
    RepublishMessagesInput {
        /// The id of the cluster the source stream is on.
        cluster_id: ID,
        /// The source stream's name.
        stream: String,
        /// Which messages: a range, filters and limits, as a search takes them (its
        /// `unmasked` is not used: messages go as they are, and none is shown); left out,
        /// every message the stream holds now.
        search: Option<MessageSearchInput>,
        /// Only these sequences (at most 10,000), say a consumer's dead letters.
        #[graphql(default)]
        sequences: Vec<u64>,
        /// Where they go; left out, back to their own subjects on the same cluster.
        target: Option<RepublishTargetInput>,
        /// Most messages a second: 1 to 100,000; 1,000 by default.
        rate_per_second: Option<u32>,
        /// Only say what would be sent (a count and the first 20), send nothing and record
        /// nothing.
        #[graphql(default)]
        dry_run: bool,
    }
}

/// One message a dry run would send.
#[derive(SimpleObject)]
pub struct PlannedMessage {
    /// Its sequence in the source stream.
    pub sequence: u64,
    /// Its subject in the source stream.
    pub subject: String,
    /// The subject it would be published to.
    pub target_subject: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a dry run of a republish found.
#[derive(SimpleObject)]
pub struct RepublishDryRun {
    /// Messages read.
    pub scanned: u64,
    /// Messages it would send.
    pub matched: u64,
    /// Why the read ended.
    pub stop: SearchStop,
    /// The first (up to 20) messages it would send.
    pub sample: Vec<PlannedMessage>,
}

payload! {
    /// What mutation republishMessages answers: the job that runs on (follow it with
    /// republishProgress), or for a dry run what it would send.
    RepublishMessagesPayload {
        /// The job's id; null for a dry run.
        job_id: Option<ID>,
        /// What would be sent, for a dry run.
        dry_run: Option<RepublishDryRun>,
    }
}

input! {
    /// Stops a republish (mutation cancelRepublish).
    CancelRepublishInput {
        /// The job's id, from republishMessages.
        job_id: ID,
    }
}

payload! {
    /// What mutation cancelRepublish answers.
    CancelRepublishPayload {
        /// The job asked to stop; its end (`CANCELLED`) follows on republishProgress.
        job_id: ID,
    }
}

/// Why a republish ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RepublishStop {
    /// It sent every message of its range.
    End,
    /// It read `maxScanned` messages.
    MaxScanned,
    /// It sent `maxResults` messages.
    MaxResults,
    /// It ran `timeBudgetSeconds`.
    TimeBudget,
    /// Someone cancelled it.
    Cancelled,
    /// The source or the target failed (`error` says how).
    Failed,
}

impl RepublishStop {
    fn of(stop: &str) -> Self {
        match stop {
            "end" => Self::End,
            "max_scanned" => Self::MaxScanned,
            "max_results" => Self::MaxResults,
            "time_budget" => Self::TimeBudget,
            "cancelled" => Self::Cancelled,
            _ => Self::Failed,
        }
    }
}

/// How far a republish has come.
#[derive(SimpleObject)]
pub struct RepublishProgress {
    /// The job's id.
    pub job_id: ID,
    /// The source cluster's id.
    pub cluster_id: ID,
    /// The source stream.
    pub stream: String,
    /// When it began.
    pub started_at: Option<DateTime<Utc>>,
    /// Messages read from the source.
    pub scanned: u64,
    /// Messages the target stored.
    pub published: u64,
    /// Messages the target already held (the same message id): a retry that doubled nothing.
    pub duplicates: u64,
    /// The last source sequence acknowledged.
    pub last_sequence: Option<u64>,
    /// Whether it has ended (this is then the last event).
    pub done: bool,
    /// Why it ended, once it has.
    pub stop: Option<RepublishStop>,
    /// What went wrong, when it failed.
    pub error: Option<String>,
}

impl From<uc_republish::JobProgress> for RepublishProgress {
    fn from(p: uc_republish::JobProgress) -> Self {
        let scanned = p.outcome.as_ref().map_or(p.scanned, |o| o.scanned.max(p.scanned));
        Self {
            job_id: ID(p.job),
            cluster_id: ID(p.cluster_id),
            stream: p.stream,
            started_at: p.started_at,
            scanned,
            published: p.published,
            duplicates: p.duplicates,
            last_sequence: p.last_sequence,
            done: p.outcome.is_some(),
            stop: p.outcome.as_ref().map(|o| RepublishStop::of(&o.stop)),
            error: p.outcome.and_then(|o| o.error),
        }
    }
}

use jsc_app::republish as uc_republish;

#[derive(Default)]
pub struct RepublishMutation;

#[Object]
impl RepublishMutation {
    /// Removes one message from a stream, as a command with an event (`MessageDeleted`: which
    /// message, never its content). Needs the operator role on the cluster. Errors:
    /// `NOT_FOUND` (no such stream or message), `VALIDATION` (a stream that denies deletes or
    /// is sealed), `UNAVAILABLE`.
    async fn delete_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The message to remove.")] input: DeleteMessageInput,
    ) -> Result<DeleteMessagePayload> {
        let caller = caller(ctx)?;
        console(ctx)
            .delete_message(
                &caller,
                &input.cluster_id,
                &input.stream,
                input.message_sequence,
                input.erase,
            )
            .await?;
        Ok(DeleteMessagePayload {
            message_sequence: input.message_sequence,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Republishes a stream's messages — a range, what a search finds, or chosen sequences —
    /// to a subject, a stream on another cluster, or back to their own subjects, at most
    /// `ratePerSecond`. A dry run says what it would send. A real run records
    /// `RepublishStarted` (who, which messages, where) and answers at once with the job's id;
    /// `RepublishFinished` records how it ended. Each message carries `Nats-Msg-Id:
    /// jsc:<cluster>:<stream>:<sequence>`, so a retry within the target's duplicate window
    /// doubles nothing. Needs the operator role on both clusters. Errors: `VALIDATION`,
    /// `FORBIDDEN`, `NOT_FOUND`, `UNAVAILABLE`.
    async fn republish_messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which messages, where to, how fast.")] input: RepublishMessagesInput,
    ) -> Result<RepublishMessagesPayload> {
        let caller = caller(ctx)?;
        let target = input.target.unwrap_or_default();
        let req = uc_republish::RepublishRequest {
            search: input.search.unwrap_or_default().into_request()?,
            sequences: input.sequences,
            target: target.into(),
            rate_per_second: input.rate_per_second,
            dry_run: input.dry_run,
            purpose: "republish".into(),
        };
        let started = console(ctx)
            .republish(&caller, &input.cluster_id, &input.stream, req)
            .await?;
        Ok(RepublishMessagesPayload::of(
            started,
            Outcome::of(&caller.meta, input.client_mutation_id),
        ))
    }

    /// Stops a republish after the messages in flight; its end (`CANCELLED`) is recorded
    /// and sent on republishProgress. Needs the operator role on its cluster. Errors:
    /// `NOT_FOUND` (no such job on this console), `FORBIDDEN`.
    async fn cancel_republish(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job to stop.")] input: CancelRepublishInput,
    ) -> Result<CancelRepublishPayload> {
        let caller = caller(ctx)?;
        console(ctx).cancel_republish(&caller, &input.job_id)?;
        Ok(CancelRepublishPayload {
            job_id: input.job_id,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }
}

#[derive(Default)]
pub struct RepublishSubscription;

#[async_graphql::Subscription]
impl RepublishSubscription {
    /// How far a republish has come, as it goes (at most every 250 ms), until its last event
    /// (`done: true`). Needs the viewer role on its cluster. Errors: `NOT_FOUND` for a job
    /// this console does not run or no longer remembers (its end is in the stream's history).
    async fn republish_progress(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's id, from republishMessages.")] job_id: ID,
    ) -> Result<impl futures::Stream<Item = Result<RepublishProgress>> + use<>> {
        use futures::StreamExt;
        let progress = console(ctx).republish_progress(&caller(ctx)?, &job_id)?;
        Ok(crate::context::guarded(ctx, progress.map(RepublishProgress::from))?)
    }
}

/// Why a consumer gave up on a message.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_app::deadletters::DeadLetterReason")]
pub enum DeadLetterReason {
    /// It was delivered `maxDeliver` times without an ack (`MAX_DELIVERIES` advisory).
    MaxDeliveries,
    /// A client terminated it (`+TERM`, `MSG_TERMINATED` advisory).
    Terminated,
}

/// A message a consumer gave up on, as JetStream's advisory reported it while the console
/// watched the cluster. The message itself is read on demand (`message`).
pub struct DeadLetterObj(pub(crate) jsc_app::deadletters::DeadLetter);

connection!(DeadLetterConnection, DeadLetterEdge, DeadLetterObj, "dead letters");

/// A message a consumer gave up on (after `maxDeliver` deliveries, or terminated by a
/// client), as JetStream's advisory reported it while the console watched the cluster.
#[Object(name = "DeadLetter")]
impl DeadLetterObj {
    /// The message's sequence in its stream.
    async fn stream_sequence(&self) -> u64 {
        self.0.stream_sequence
    }
    /// How many times it was delivered.
    async fn deliveries(&self) -> u64 {
        self.0.deliveries
    }
    /// Why the consumer gave up on it.
    async fn reason(&self) -> DeadLetterReason {
        self.0.reason.into()
    }
    /// The reason the client gave when it terminated the message, if any.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    /// When the server gave up on it.
    async fn time(&self) -> DateTime<Utc> {
        self.0.time
    }
    /// The consumer that gave up on it.
    async fn consumer(&self) -> &str {
        &self.0.consumer
    }
    /// The message, read now from its stream under the masking rules; null when the stream
    /// no longer holds it.
    async fn message(&self, ctx: &Context<'_>) -> Result<Option<MessageObj>> {
        let d = &self.0;
        let found = console(ctx)
            .message(
                &caller(ctx)?,
                &d.cluster_id,
                &d.stream,
                MessageAt::Sequence(d.stream_sequence),
                false,
            )
            .await;
        match found {
            Ok(m) => Ok(Some(MessageObj(m))),
            Err(e) if e.code == jsc_app::Code::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

input! {
    /// Redrives a consumer's dead letters (mutation redriveDeadLetters).
    RedriveDeadLettersInput {
        /// The id of the cluster the consumer is on.
        cluster_id: ID,
        /// The consumer's stream.
        stream: String,
        /// The consumer's name.
        consumer: String,
        /// Only these dead letters (their stream sequences); left out, all of them.
        sequences: Option<Vec<u64>>,
        /// Where they go; left out, back to their own subjects on the same cluster.
        target: Option<RepublishTargetInput>,
        /// Most messages a second: 1 to 100,000; 1,000 by default.
        rate_per_second: Option<u32>,
        /// Only say what would be sent, send nothing and record nothing.
        #[graphql(default)]
        dry_run: bool,
    }
}

#[derive(Default)]
pub struct DeadLetterMutation;

#[Object]
impl DeadLetterMutation {
    /// Redrives a consumer's dead letters — chosen ones or all — through republishMessages
    /// (recorded as `RepublishStarted` with purpose `redrive <consumer>`, then
    /// `RepublishFinished`; message ids from source and sequence, so a retry doubles
    /// nothing). Follow the job with republishProgress. Needs the operator role. Errors:
    /// `VALIDATION` (a sequence that is not a dead letter, none to redrive), `FORBIDDEN`,
    /// `NOT_FOUND`, `UNAVAILABLE`.
    async fn redrive_dead_letters(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which dead letters, where to, how fast.")] input: RedriveDeadLettersInput,
    ) -> Result<RedriveDeadLettersPayload> {
        let caller = caller(ctx)?;
        let target = input.target.unwrap_or_default();
        let how = uc_republish::RepublishRequest {
            target: target.into(),
            rate_per_second: input.rate_per_second,
            dry_run: input.dry_run,
            ..Default::default()
        };
        let started = console(ctx)
            .redrive_dead_letters(
                &caller,
                &input.cluster_id,
                &input.stream,
                &input.consumer,
                input.sequences,
                how,
            )
            .await?;
        Ok(RedriveDeadLettersPayload::of(
            started,
            Outcome::of(&caller.meta, input.client_mutation_id),
        ))
    }
}

payload! {
    /// What mutation redriveDeadLetters answers: the republish job that runs on (follow it
    /// with republishProgress), or for a dry run what it would send.
    RedriveDeadLettersPayload {
        /// The job's id; null for a dry run.
        job_id: Option<ID>,
        /// What would be sent, for a dry run.
        dry_run: Option<RepublishDryRun>,
    }
}

impl RedriveDeadLettersPayload {
    fn of(started: uc_republish::Started, outcome: Outcome) -> Self {
        let RepublishMessagesPayload {
            job_id,
            dry_run,
            outcome,
        } = RepublishMessagesPayload::of(started, outcome);
        Self {
            job_id,
            dry_run,
            outcome,
        }
    }
}

impl RepublishMessagesPayload {
    fn of(started: uc_republish::Started, outcome: Outcome) -> Self {
        let (job_id, dry_run) = match started {
            uc_republish::Started::Job { job, .. } => (Some(ID(job)), None),
            uc_republish::Started::DryRun(d) => (
                None,
                Some(RepublishDryRun {
                    scanned: d.scanned,
                    matched: d.matched,
                    stop: d.stop.into(),
                    sample: d
                        .sample
                        .into_iter()
                        .map(|p| PlannedMessage {
                            sequence: p.sequence,
                            subject: p.subject,
                            target_subject: p.target_subject,
                            size: p.size as u64,
                        })
                        .collect(),
                }),
            ),
        };
        Self {
            job_id,
            dry_run,
            outcome,
        }
    }
}

/// A time window of a stream: from `from` up to (not including) `to`; either end left out
/// is the stream's.
#[derive(InputObject, Default, Clone, Copy)]
pub struct TimeWindowInput {
    /// The window's start.
    pub from: Option<DateTime<Utc>>,
    /// The window's end (not included).
    pub to: Option<DateTime<Utc>>,
}

impl From<TimeWindowInput> for uc::Window {
    fn from(w: TimeWindowInput) -> Self {
        Self { from: w.from, to: w.to }
    }
}

/// One field path of an inferred message shape.
#[derive(SimpleObject)]
pub struct SchemaField {
    /// `a.b`, with `[]` for the items of an array (`items[].sku`).
    pub path: String,
    /// The JSON types seen at it: `string`, `integer`, `number`, `boolean`, `null`,
    /// `object`, `array`.
    pub types: Vec<String>,
    /// JSON messages of the sample in which it is present.
    pub count: u64,
    /// `count` as a percentage of the sample's JSON messages.
    pub presence: f64,
    /// A value seen there (scalars only, as masking shows it), cut to 100 characters.
    pub example: Option<String>,
}

impl From<uc::ShapeField> for SchemaField {
    fn from(f: uc::ShapeField) -> Self {
        Self {
            path: f.path,
            types: f.types.into_iter().map(str::to_string).collect(),
            count: f.count,
            presence: f.presence,
            example: f.example,
        }
    }
}

/// The JSON shape of a sample of messages.
#[derive(SimpleObject)]
pub struct MessageSchema {
    /// Messages read.
    pub sampled: u64,
    /// Of those, messages whose payload is not a JSON object or array.
    pub not_json: u64,
    /// Every field path seen, by path (at most 1,000).
    pub fields: Vec<SchemaField>,
    /// Paths left out past 1,000.
    pub truncated: u64,
}

impl From<uc::Shape> for MessageSchema {
    fn from(s: uc::Shape) -> Self {
        Self {
            sampled: s.sampled,
            not_json: s.not_json,
            fields: s.fields.into_iter().map(Into::into).collect(),
            truncated: s.truncated,
        }
    }
}

/// A field whose types or presence changed between two windows.
#[derive(SimpleObject)]
pub struct SchemaFieldChange {
    /// The field's path.
    pub path: String,
    /// The field in the earlier window.
    pub before: SchemaField,
    /// The field in the later window.
    pub after: SchemaField,
}

/// How the shape of a stream's messages changed from one window to another.
#[derive(SimpleObject)]
pub struct MessageSchemaChanges {
    /// The shape in the earlier window.
    pub before: MessageSchema,
    /// The shape in the later window.
    pub after: MessageSchema,
    /// Paths only in the later window.
    pub added: Vec<String>,
    /// Paths only in the earlier window.
    pub removed: Vec<String>,
    /// Paths in both whose types differ, or whose presence moved by 10 points or more.
    pub changed: Vec<SchemaFieldChange>,
}

#[derive(Default)]
pub struct SchemaQuery;

#[Object]
impl SchemaQuery {
    /// The JSON shape of a sample of a stream's messages (the newest in the window, on the
    /// subject): every field path with its types, presence and an example, as masking shows
    /// it. Needs the viewer role on the cluster. Errors: `VALIDATION` (a bad subject, window or
    /// sample size), `NOT_FOUND`, `UNAVAILABLE`.
    async fn message_schema(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The stream's name.")] stream: String,
        #[graphql(desc = "Only messages on subjects matching this filter; left out, every subject.")] subject: Option<
            String,
        >,
        #[graphql(desc = "The window to sample; left out, the whole stream.")] window: Option<TimeWindowInput>,
        #[graphql(desc = "Messages to sample: 1 to 10,000; 500 by default.")] sample: Option<u64>,
    ) -> Result<MessageSchema> {
        let shape = console(ctx)
            .message_schema(
                &caller(ctx)?,
                &cluster_id,
                &stream,
                subject,
                window.unwrap_or_default().into(),
                sample,
            )
            .await?;
        Ok(shape.into())
    }

    /// How the shape of a stream's messages changed between two windows: both shapes and the
    /// fields added, removed or changed. Needs the viewer role on the cluster. Errors as
    /// messageSchema.
    #[allow(clippy::too_many_arguments)]
    async fn message_schema_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The stream's name.")] stream: String,
        #[graphql(desc = "Only messages on subjects matching this filter; left out, every subject.")] subject: Option<
            String,
        >,
        #[graphql(desc = "The earlier window.")] before: TimeWindowInput,
        #[graphql(desc = "The later window.")] after: TimeWindowInput,
        #[graphql(desc = "Messages to sample in each window: 1 to 10,000; 500 by default.")] sample: Option<u64>,
    ) -> Result<MessageSchemaChanges> {
        let (b, a, c) = console(ctx)
            .message_schema_changes(
                &caller(ctx)?,
                &cluster_id,
                &stream,
                subject,
                before.into(),
                after.into(),
                sample,
            )
            .await?;
        Ok(MessageSchemaChanges {
            before: b.into(),
            after: a.into(),
            added: c.added,
            removed: c.removed,
            changed: c
                .changed
                .into_iter()
                .map(|c| SchemaFieldChange {
                    path: c.path,
                    before: c.before.into(),
                    after: c.after.into(),
                })
                .collect(),
        })
    }
}

/// A search of a stream's messages you saved, to run again with `messageSearch(saved:)`.
#[derive(SimpleObject)]
pub struct SavedSearchObj {
    /// Its name, unique among your saved searches.
    pub name: String,
    /// The id of the cluster the stream is on.
    pub cluster_id: ID,
    /// The stream it searches.
    pub stream: String,
    /// The search as saved: its range, filters and limits.
    pub search: async_graphql::Json<serde_json::Value>,
    /// When it was saved.
    pub saved_at: DateTime<Utc>,
}

impl From<uc::SavedSearch> for SavedSearchObj {
    fn from(s: uc::SavedSearch) -> Self {
        Self {
            name: s.name,
            cluster_id: ID(s.cluster_id),
            stream: s.stream,
            search: async_graphql::Json(s.search),
            saved_at: s.saved_at,
        }
    }
}

input! {
    /// Saves a search of a stream's messages (mutation saveSearch).
    SaveSearchInput {
        /// Its name (1 to 64 characters); a search of yours with this name is replaced.
        name: String,
        /// The id of the cluster the stream is on.
        cluster_id: ID,
        /// The stream it searches.
        stream: String,
        /// The search, checked as messageSearch checks it.
        search: MessageSearchInput,
    }
}

payload! {
    /// What mutation saveSearch answers.
    SaveSearchPayload {
        /// The search as saved.
        saved_search: SavedSearchObj,
    }
}

input! {
    /// Deletes one of your saved searches (mutation deleteSavedSearch).
    DeleteSavedSearchInput {
        /// Its name.
        name: String,
    }
}

payload! {
    /// What mutation deleteSavedSearch answers.
    DeleteSavedSearchPayload {
        /// The name of the search deleted.
        name: String,
    }
}

#[derive(Default)]
pub struct SavedSearchMutation;

#[Object]
impl SavedSearchMutation {
    /// Saves a search of a stream's messages for you (signed in as a user), to run again
    /// with `messageSearch(saved: name)`; recorded as `SearchSaved`. Needs the viewer role on
    /// the cluster. Errors: `VALIDATION` (as messageSearch; a bad name; 100 saved already),
    /// `FORBIDDEN` (an API key), `NOT_FOUND`.
    async fn save_search(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The search and its name.")] input: SaveSearchInput,
    ) -> Result<SaveSearchPayload> {
        let caller = caller(ctx)?;
        let req = input.search.into_request()?;
        let saved = console(ctx)
            .save_search(&caller, &input.name, &input.cluster_id, &input.stream, req)
            .await?;
        Ok(SaveSearchPayload {
            saved_search: saved.into(),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Deletes one of your saved searches; recorded as `SavedSearchDeleted`. Errors:
    /// `NOT_FOUND`, `FORBIDDEN` (an API key).
    async fn delete_saved_search(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The search to delete.")] input: DeleteSavedSearchInput,
    ) -> Result<DeleteSavedSearchPayload> {
        let caller = caller(ctx)?;
        console(ctx).delete_saved_search(&caller, &input.name).await?;
        Ok(DeleteSavedSearchPayload {
            name: input.name,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }
}

/// A Protobuf schema: how the payloads on some subjects are read.
#[derive(SimpleObject)]
pub struct ProtobufSchemaObj {
    /// Its name, unique in the organization.
    pub name: String,
    /// The subjects whose payloads are this message type (wildcards allowed).
    pub subjects: String,
    /// The message type's full name.
    pub message_type: String,
    /// SHA-256 of the descriptor set, hex (the set itself is in the history's event).
    pub sha256: String,
}

impl From<jsc_domain::identity::ProtobufSchema> for ProtobufSchemaObj {
    fn from(s: jsc_domain::identity::ProtobufSchema) -> Self {
        Self {
            name: s.name,
            subjects: s.subjects,
            message_type: s.message_type,
            sha256: s.sha256,
        }
    }
}

input! {
    /// Registers a Protobuf schema (mutation registerProtobufSchema).
    RegisterProtobufSchemaInput {
        /// The organization whose streams it is for.
        organization_id: ID,
        /// Its name (a schema of the same name is replaced).
        name: String,
        /// The subjects whose payloads are this message type (wildcards allowed).
        subjects: String,
        /// The message type's full name, such as `shop.v1.Order`.
        message_type: String,
        /// The compiled descriptor set, base64 (`protoc --include_imports
        /// --descriptor_set_out=set.pb`): at most 256 KiB, and 512 KiB of base64 across the
        /// organization's schemas.
        descriptor_set: String,
    }
}

payload! {
    /// What mutation registerProtobufSchema answers.
    RegisterProtobufSchemaPayload {
        /// The schema as registered.
        schema: ProtobufSchemaObj,
    }
}

input! {
    /// Removes a Protobuf schema (mutation removeProtobufSchema).
    RemoveProtobufSchemaInput {
        /// The organization.
        organization_id: ID,
        /// The schema's name.
        name: String,
    }
}

payload! {
    /// What mutation removeProtobufSchema answers.
    RemoveProtobufSchemaPayload {
        /// The name of the schema removed.
        name: String,
    }
}

#[derive(Default)]
pub struct ProtobufMutation;

#[Object]
impl ProtobufMutation {
    /// Registers (or replaces) a Protobuf schema for the payloads on some subjects of the
    /// organization's streams (admin): from the next read on they are shown as that
    /// message's JSON, and masked, searched, inferred and exported as such (republish sends
    /// them as stored). Recorded as `ProtobufSchemaRegistered` with the descriptor set and its
    /// digest. Errors: `VALIDATION` (not base64, not a descriptor set, no such message type, a
    /// bad subject), `FORBIDDEN`, `NOT_FOUND`.
    async fn register_protobuf_schema(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The schema.")] input: RegisterProtobufSchemaInput,
    ) -> Result<RegisterProtobufSchemaPayload> {
        let caller = caller(ctx)?;
        let schema = console(ctx)
            .register_protobuf_schema(
                &caller,
                &input.organization_id,
                &input.name,
                &input.subjects,
                &input.message_type,
                &input.descriptor_set,
            )
            .await?;
        Ok(RegisterProtobufSchemaPayload {
            schema: schema.into(),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Removes a Protobuf schema (admin); recorded as `ProtobufSchemaRemoved`. Errors:
    /// `NOT_FOUND`, `FORBIDDEN`.
    async fn remove_protobuf_schema(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The schema to remove.")] input: RemoveProtobufSchemaInput,
    ) -> Result<RemoveProtobufSchemaPayload> {
        let caller = caller(ctx)?;
        console(ctx)
            .remove_protobuf_schema(&caller, &input.organization_id, &input.name)
            .await?;
        Ok(RemoveProtobufSchemaPayload {
            name: input.name,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }
}
