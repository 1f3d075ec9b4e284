//! Messages: what streams hold, for a viewer of their cluster. Reading is an observation,
//! not a change: nothing is recorded and nothing is consumed (see `jsc_messages`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use jsc_domain::names::check_subject;
use jsc_messages::{Batch, ReadError, Reader, StreamFacts};
use serde_json::json;

pub use jsc_messages::decode::{Decoded, Encoding, decode};
pub use jsc_messages::{ReadPath, StoredMessage};

pub use jsc_messages::mask::Masker;

use crate::paging::{Edge, List, MAX_PAGE, Page, Paging};
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, Result};

/// Most messages one page holds.
pub const MAX_MESSAGE_PAGE: usize = 1_000;

/// Where a page of messages starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MessageStart {
    /// At this stream sequence (forward: it and after; backward: it and before).
    Sequence(u64),
    /// At the first message stored at or after this time (backward: before it).
    Time(DateTime<Utc>),
    /// The oldest message.
    First,
    /// The newest message.
    Last,
}

/// Which way a page reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    #[default]
    Forward,
    /// Newest first.
    Backward,
}

/// A page of messages to read.
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// Where to start; left out, at the oldest message forward and the newest backward.
    pub start: Option<MessageStart>,
    pub direction: Direction,
    /// Only messages on subjects matching this filter (wildcards allowed).
    pub subject: Option<String>,
    /// `first` and `after` (`last`/`before` are not used: `direction` says which way).
    pub paging: Paging,
    /// Without masking (admin; recorded).
    pub unmasked: bool,
}

/// A page of messages and how it was read.
#[derive(Clone)]
pub struct MessagePage {
    pub page: Page<StoredMessage>,
    pub path: ReadPath,
    /// The cursor pointed at messages that are gone: everything up to this sequence was
    /// purged, expired or deleted since the cursor was made.
    pub purged_through: Option<u64>,
    /// What a count of the matching messages needs, when the page does not know it.
    pub count: Option<MessageCount>,
}

/// Counts the messages matching a filter, when asked (`totalCount`).
#[derive(Clone)]
pub struct MessageCount {
    reader: Reader,
    admin: jsc_fleet::Admin,
    filter: String,
}

impl MessageCount {
    pub async fn count(&self) -> Result<usize> {
        let first = self.reader.facts().first_seq;
        if let Some(n) = self.reader.count_from(first, &self.filter).await.map_err(read_error)? {
            return Ok(n as usize);
        }
        let counts = subject_counts(&self.admin, &self.reader.facts().name, &self.filter).await?;
        Ok(counts.values().sum::<u64>() as usize)
    }
}

/// One message by where it is.
#[derive(Debug, Clone)]
pub enum MessageAt {
    Sequence(u64),
    /// The last message on this subject.
    LastBySubject(String),
}

/// A failed look at a stream on its cluster: gone is `NOT_FOUND` (the view has not seen it
/// go yet), a refusal `VALIDATION`, the rest `UNAVAILABLE`.
fn service_error(e: jsc_domain::stream::ServiceError) -> Error {
    use jsc_domain::stream::ServiceError as S;
    match e {
        S::NotFound(why) => Error::not_found(why),
        S::Rejected { description, .. } => Error::validation(description),
        other => Error::unavailable(other.to_string()),
    }
}

fn read_error(e: ReadError) -> Error {
    match e {
        ReadError::Rejected(why) => Error::validation(why),
        ReadError::Unavailable(why) => Error::unavailable(why),
        ReadError::NotFound(why) => Error::not_found(why),
    }
}

fn filter_of(subject: &Option<String>) -> Result<String> {
    match subject {
        Some(s) => {
            check_subject(s).map_err(|e| Error::validation(format!("subject: {e}")))?;
            Ok(s.clone())
        }
        None => Ok(">".to_string()),
    }
}

impl Console {
    /// How `caller` sees the messages of `stream`: under the organization's masking rules, or
    /// as they are (`unmasked`) — which needs the admin role on the cluster and is recorded in
    /// the stream's history (`MessagesReadUnmasked`: who, which read, from where) before
    /// anything is read.
    pub async fn masker(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        unmasked: Option<(&str, &str)>,
    ) -> Result<Masker> {
        let Some((read, subject)) = unmasked else {
            return Ok(self.masker_now(cluster_id, stream, true));
        };
        self.run::<jsc_domain::stream::Stream>(
            Actor::Caller(caller),
            Access::Cluster(cluster_id, jsc_domain::identity::Role::Admin),
            &jsc_domain::stream::stream_id(cluster_id, stream),
            jsc_domain::stream::StreamCommand::RecordUnmaskedRead {
                read: read.to_string(),
                subject: subject.to_string(),
            },
        )
        .await?;
        Ok(self.masker_now(cluster_id, stream, false))
    }

    /// What decides how a cluster's messages are shown now: the organization's masking rules
    /// (when `masked`) and its Protobuf schemas.
    pub(crate) fn showing(
        &self,
        cluster_id: &str,
        masked: bool,
    ) -> (
        Vec<jsc_domain::masking::MaskingRule>,
        Vec<jsc_domain::identity::ProtobufSchema>,
    ) {
        let rules = if masked {
            self.masking_rules_of_cluster(cluster_id)
        } else {
            Vec::new()
        };
        (rules, self.protobuf_schemas_of_cluster(cluster_id))
    }

    /// The masker of `stream` as things are now: the rules (when `masked`) and a decoder for
    /// each Protobuf schema (each compiled once, then kept by its digest).
    pub(crate) fn masker_now(&self, cluster_id: &str, stream: &str, masked: bool) -> Masker {
        let (rules, schemas) = self.showing(cluster_id, masked);
        self.masker_of(&rules, &schemas, stream)
    }

    fn masker_of(
        &self,
        rules: &[jsc_domain::masking::MaskingRule],
        schemas: &[jsc_domain::identity::ProtobufSchema],
        stream: &str,
    ) -> Masker {
        let decoders = schemas
            .iter()
            .filter_map(|s| Some((s.subjects.clone(), self.decoders.get(s)?)))
            .collect();
        Masker::new(rules, stream).with_decoders(decoders)
    }

    /// A reader of `stream` on `cluster`, from a fresh look at the stream's state.
    async fn reader(&self, cluster_id: &str, stream: &str) -> Result<(Reader, jsc_fleet::Admin)> {
        let admin = self.admin(cluster_id).await?;
        let info = admin.stream_info(stream).await.map_err(service_error)?;
        let facts = StreamFacts {
            name: stream.to_string(),
            first_seq: info.state.first_seq,
            last_seq: info.state.last_seq,
            messages: info.state.messages,
            allow_direct: info.config.allow_direct,
            server: admin.server_version(),
        };
        Ok((Reader::new(admin.client().clone(), facts), admin))
    }

    /// A page of a stream's messages, for a viewer of its cluster. The cursors are stream
    /// sequences, signed for this stream, filter and direction; they stay valid while the
    /// stream grows, and a page after a purge says what went (`purged_through`).
    pub async fn messages(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        q: MessageQuery,
    ) -> Result<MessagePage> {
        self.stream(caller, cluster_id, stream)?;
        let filter = filter_of(&q.subject)?;
        if q.paging.last.is_some() || q.paging.before.is_some() {
            return Err(Error::validation(
                "messages page with `first` and `after`; give `direction: BACKWARD` to read newest first",
            ));
        }
        let crate::paging::Take::First(n) = q.paging.take(MAX_MESSAGE_PAGE)? else {
            unreachable!("no `last` was given")
        };
        let scope = format!("{cluster_id}\n{stream}\n{filter}\n{:?}", q.direction);
        let list = List::new("messages", &scope);
        let (after, _) = self.bounds::<u64>(list, &q.paging)?;
        if after.is_some() && q.start.is_some() {
            return Err(Error::validation(
                "give `from` to start a read or `after` to go on from a cursor, not both",
            ));
        }
        if let Some(MessageStart::Time(t)) = q.start
            && t > Utc::now()
        {
            return Err(Error::validation(format!(
                "from.time: {} is in the future; give a time before now",
                t.to_rfc3339()
            )));
        }
        let (reader, admin) = self.reader(cluster_id, stream).await?;
        let facts = reader.facts().clone();
        let first = facts.first_seq.max(1);
        if let Some(MessageStart::Sequence(s)) = q.start
            && (s == 0 || s > facts.last_seq + 1)
        {
            return Err(Error::validation(if facts.last_seq == 0 {
                "from.sequence: the stream has never stored a message; give 1 to wait at its start".to_string()
            } else {
                format!(
                    "from.sequence: the stream's sequences run from {first} to {}; give one of them (or {} for what comes next)",
                    facts.last_seq,
                    facts.last_seq + 1
                )
            }));
        }
        // Recorded only once the read is known to go ahead.
        let masker = self
            .masker(
                caller,
                cluster_id,
                stream,
                q.unmasked.then_some(("messages", filter.as_str())),
            )
            .await?;
        let at_time = |t| reader.sequence_at(t, &filter);
        let mut purged_through = None;
        let (batch, has_previous) = match q.direction {
            Direction::Forward => {
                let from = match (after, q.start) {
                    (Some(c), _) => c + 1,
                    (None, Some(MessageStart::Sequence(s))) => s,
                    (None, Some(MessageStart::Time(t))) => {
                        at_time(t).await.map_err(read_error)?.unwrap_or(facts.last_seq + 1)
                    }
                    (None, Some(MessageStart::Last)) => {
                        let newest = reader.backward(facts.last_seq, &filter, 1).await.map_err(read_error)?;
                        newest.messages.first().map_or(facts.last_seq + 1, |m| m.sequence)
                    }
                    (None, Some(MessageStart::First) | None) => first,
                };
                if after.is_some() && from < first {
                    purged_through = Some(first - 1);
                }
                let batch = reader.forward(from, &filter, n, None).await.map_err(read_error)?;
                (batch, from > first)
            }
            Direction::Backward => {
                let end = match (after, q.start) {
                    (Some(c), _) => c.checked_sub(1),
                    (None, Some(MessageStart::Sequence(s))) => Some(s),
                    (None, Some(MessageStart::Time(t))) => match at_time(t).await.map_err(read_error)? {
                        Some(s) => s.checked_sub(1),
                        None => Some(facts.last_seq),
                    },
                    (None, Some(MessageStart::First)) => {
                        let oldest = reader.forward(first, &filter, 1, None).await.map_err(read_error)?;
                        oldest.messages.first().map(|m| m.sequence)
                    }
                    (None, Some(MessageStart::Last) | None) => Some(facts.last_seq),
                };
                if let Some(c) = after
                    && c > 1
                    && c - 1 < first
                {
                    purged_through = Some((first - 1).min(c - 1));
                }
                let batch = match end {
                    Some(e) => reader.backward(e, &filter, n).await.map_err(read_error)?,
                    None => Batch::default(),
                };
                (batch, end.is_some_and(|e| e < facts.last_seq))
            }
        };
        let has_previous = has_previous || after.is_some();
        let keys = batch.messages.iter().map(|m| m.sequence);
        let edges = Self::positions(list, keys)
            .into_iter()
            .zip(batch.messages)
            .map(|(position, node)| Edge {
                position,
                node: masker.apply(node),
            })
            .collect();
        let unfiltered = filter == ">";
        Ok(MessagePage {
            page: Page {
                edges,
                has_previous_page: has_previous,
                has_next_page: batch.more,
                total_count: unfiltered.then_some(facts.messages as usize),
            },
            path: reader.path(),
            purged_through,
            count: (!unfiltered).then(|| MessageCount { reader, admin, filter }),
        })
    }

    /// One message of a stream, for a viewer of its cluster; `NOT_FOUND` when the stream
    /// does not hold it.
    pub async fn message(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        at: MessageAt,
        unmasked: bool,
    ) -> Result<StoredMessage> {
        self.stream(caller, cluster_id, stream)?;
        if let MessageAt::LastBySubject(subject) = &at {
            check_subject(subject).map_err(|e| Error::validation(format!("lastBySubject: {e}")))?;
            if subject.contains('*') || subject.contains('>') {
                return Err(Error::validation(
                    "lastBySubject: give a subject without wildcards (use messages(subject:) to filter)",
                ));
            }
        }
        let what = match &at {
            MessageAt::Sequence(s) => format!("sequence {s}"),
            MessageAt::LastBySubject(subject) => subject.clone(),
        };
        let (reader, _) = self.reader(cluster_id, stream).await?;
        let masker = self
            .masker(
                caller,
                cluster_id,
                stream,
                unmasked.then_some(("message", what.as_str())),
            )
            .await?;
        let found = match &at {
            MessageAt::Sequence(s) => reader.get(*s).await,
            MessageAt::LastBySubject(subject) => reader.last_by_subject(subject).await,
        }
        .map_err(read_error)?;
        found.map(|m| masker.apply(m)).ok_or_else(|| {
            Error::not_found(match at {
                MessageAt::Sequence(s) => format!(
                    "stream '{stream}' holds no message at sequence {s} (it holds {} to {})",
                    reader.facts().first_seq,
                    reader.facts().last_seq
                ),
                MessageAt::LastBySubject(subject) => format!("stream '{stream}' holds no message on '{subject}'"),
            })
        })
    }

    /// The subjects a stream holds messages on, matching `filter`, with how many each, by
    /// subject; one page (at most [`MAX_PAGE`]).
    pub async fn subjects(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        filter: Option<String>,
        paging: &Paging,
    ) -> Result<Page<(String, u64)>> {
        self.stream(caller, cluster_id, stream)?;
        let filter = filter_of(&filter)?;
        let admin = self.admin(cluster_id).await?;
        let counts = subject_counts(&admin, stream, &filter).await?;
        let scope = format!("{cluster_id}\n{stream}\n{filter}");
        self.page(
            List::new("subjects", &scope),
            counts.into_iter().collect(),
            |(s, _)| s.clone(),
            paging,
            MAX_PAGE,
        )
    }
}

/// Most subjects a count or a list of subjects reads.
pub const MAX_SUBJECTS: usize = 100_000;

/// Messages per subject matching `filter`, from `STREAM.INFO` (the server pages them); a
/// filter that matches more than [`MAX_SUBJECTS`] is `VALIDATION`.
async fn subject_counts(admin: &jsc_fleet::Admin, stream: &str, filter: &str) -> Result<BTreeMap<String, u64>> {
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(default)]
        total: usize,
        #[serde(default)]
        limit: usize,
        state: State,
    }
    #[derive(serde::Deserialize)]
    struct State {
        #[serde(default)]
        subjects: BTreeMap<String, u64>,
    }
    let mut all = BTreeMap::new();
    loop {
        let info: Info = admin
            .api(
                &format!("STREAM.INFO.{stream}"),
                &json!({"subjects_filter": filter, "offset": all.len()}),
            )
            .await
            .map_err(service_error)?;
        if info.total > MAX_SUBJECTS {
            return Err(Error::validation(format!(
                "the stream holds messages on {} subjects matching '{filter}'; narrow the filter to at most {MAX_SUBJECTS}",
                info.total
            )));
        }
        let before = all.len();
        all.extend(info.state.subjects);
        if all.len() == before || info.limit == 0 || all.len() >= info.total {
            return Ok(all);
        }
    }
}

/// What a tail delivers.
#[derive(Debug, Clone)]
pub enum TailItem {
    /// The next message matching the tail's filter.
    Message(StoredMessage),
    /// The tail fell more than its `max_behind` behind the newest message (a slow client,
    /// or a start far back) and went on from there: these sequences were passed over.
    Skipped { from: u64, to: u64 },
}

/// Messages one read of a tail takes.
const TAIL_BATCH: usize = 100;

/// How often an idle tail looks for new messages: at first soon, then less often, up to
/// once a second (reset by each message).
const TAIL_POLL: (std::time::Duration, std::time::Duration) =
    (std::time::Duration::from_millis(20), std::time::Duration::from_secs(1));

/// Where a tail starts and how far behind it may fall.
#[derive(Debug, Clone, Copy)]
pub struct TailStart {
    /// After the newest message (`None`), or at this sequence (say, the one after the last a
    /// reconnecting client saw).
    pub sequence: Option<u64>,
    /// How far behind the newest message the tail may fall before it skips ahead.
    pub max_behind: u64,
    /// Without masking (admin; recorded).
    pub unmasked: bool,
}

impl Console {
    /// A live tail of a stream's messages matching `subject`, for a viewer of its cluster.
    /// It reads the stream (never a consumer, never a subscription that copies what is
    /// published): each read asks for what follows the last message sent, at once after a
    /// message and then less and less often, up to once a second, while nothing arrives. It
    /// holds one read of at most [`TAIL_BATCH`] messages for its client, never more: a client
    /// that falls more than `max_behind` sequences behind gets [`TailItem::Skipped`] and the
    /// newest messages. Each read applies the organization's masking rules as they are then,
    /// and ends the tail with `NOT_FOUND` once the caller may no longer see the cluster.
    pub async fn message_tail(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        subject: Option<String>,
        start: TailStart,
    ) -> Result<impl futures::Stream<Item = Result<TailItem>> + Send + 'static + use<>> {
        use futures::StreamExt;
        self.stream(caller, cluster_id, stream)?;
        let filter = filter_of(&subject)?;
        if !(1..=100_000).contains(&start.max_behind) {
            return Err(Error::validation(format!(
                "maxBehind: give 1 to 100000, not {}",
                start.max_behind
            )));
        }
        let (reader, admin) = self.reader(cluster_id, stream).await?;
        let last = reader.facts().last_seq;
        let next = match start.sequence {
            None => last + 1,
            Some(0) => return Err(Error::validation("fromSequence: sequences start at 1")),
            Some(s) if s > last + 1 => {
                return Err(Error::validation(format!(
                    "fromSequence: the stream's last sequence is {last}; give at most {}",
                    last + 1
                )));
            }
            Some(s) => s,
        };
        // Unmasked reads are recorded once, when the tail starts.
        self.masker(
            caller,
            cluster_id,
            stream,
            start.unmasked.then_some(("tail", filter.as_str())),
        )
        .await?;
        struct Tail {
            console: Console,
            principal: crate::Principal,
            cluster: String,
            unmasked: bool,
            showing: Option<(
                Vec<jsc_domain::masking::MaskingRule>,
                Vec<jsc_domain::identity::ProtobufSchema>,
            )>,
            masker: Masker,
            reader: Reader,
            admin: jsc_fleet::Admin,
            filter: String,
            next: u64,
            max_behind: u64,
            idle: std::time::Duration,
            ready: std::collections::VecDeque<TailItem>,
            done: bool,
        }
        let tail = Tail {
            console: self.clone(),
            principal: caller.principal.clone(),
            cluster: cluster_id.to_string(),
            unmasked: start.unmasked,
            showing: None,
            masker: Masker::default(),
            reader,
            admin,
            filter,
            next,
            max_behind: start.max_behind,
            idle: TAIL_POLL.0,
            ready: Default::default(),
            done: false,
        };
        Ok(futures::stream::unfold(tail, |mut t| async move {
            loop {
                if t.done {
                    return None;
                }
                if let Some(item) = t.ready.pop_front() {
                    return Some((Ok(item), t));
                }
                if t.console.cluster_role(&t.principal, &t.cluster).is_none() {
                    t.done = true;
                    let gone = Error::not_found(format!("no cluster with id '{}' for you any more", t.cluster));
                    return Some((Err(gone), t));
                }
                let batch = match t.reader.forward(t.next, &t.filter, TAIL_BATCH, None).await {
                    Ok(b) => b,
                    Err(e) => {
                        t.done = true;
                        return Some((Err(read_error(e)), t));
                    }
                };
                if batch.messages.is_empty() {
                    tokio::time::sleep(t.idle).await;
                    t.idle = (t.idle * 2).min(TAIL_POLL.1);
                    continue;
                }
                t.idle = TAIL_POLL.0;
                // The rules and schemas as they are now; compiled again only when they changed.
                let showing = t.console.showing(&t.cluster, !t.unmasked);
                if t.showing.as_ref() != Some(&showing) {
                    t.masker = t.console.masker_of(&showing.0, &showing.1, &t.reader.facts().name);
                    t.showing = Some(showing);
                }
                let masker = &t.masker;
                // The newest sequence the tail knows of: the batch's last, or the stream's
                // when more are waiting.
                let newest = if batch.more {
                    match t.admin.stream_info(&t.reader.facts().name).await {
                        Ok(info) => info.state.last_seq,
                        Err(e) => {
                            t.done = true;
                            return Some((Err(service_error(e)), t));
                        }
                    }
                } else {
                    batch.messages.last().map_or(t.next, |m| m.sequence)
                };
                let mut messages = batch.messages;
                if newest + 1 > t.next + t.max_behind {
                    let resume = newest + 1 - t.max_behind;
                    t.ready.push_back(TailItem::Skipped {
                        from: t.next,
                        to: resume - 1,
                    });
                    t.next = resume;
                    if batch.more {
                        continue;
                    }
                    // The batch holds the rest: keep what is not skipped.
                    messages.retain(|m| m.sequence >= resume);
                }
                if let Some(m) = messages.last() {
                    t.next = m.sequence + 1;
                }
                t.ready
                    .extend(messages.into_iter().map(|m| TailItem::Message(masker.apply(m))));
            }
        })
        .boxed())
    }
}

use jsc_messages::search::{Bounds, HeaderTest, Predicates};
pub use jsc_messages::search::{Progress as SearchProgress, ScanEvent, Stop as SearchStop};

/// What a header must be, as a search asks it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum HeaderPredicate {
    Present,
    Equals(String),
    Contains(String),
    Regex(String),
}

/// A search of a stream's messages.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SearchRequest {
    pub subject: Option<String>,
    pub from_sequence: Option<u64>,
    pub to_sequence: Option<u64>,
    pub from_time: Option<DateTime<Utc>>,
    pub to_time: Option<DateTime<Utc>>,
    pub headers: Vec<(String, HeaderPredicate)>,
    pub payload_contains: Option<String>,
    pub payload_regex: Option<String>,
    /// An expression over the message (see `jsc_messages::expr`).
    pub expression: Option<String>,
    pub max_scanned: Option<u64>,
    pub max_results: Option<u64>,
    pub time_budget_seconds: Option<u64>,
    /// Without masking (admin; recorded).
    pub unmasked: bool,
}

/// How far a scan may go when it names no limit, and the most it may: messages read,
/// matches, seconds.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits {
    pub scanned: (u64, u64),
    pub results: (u64, u64),
    pub seconds: (u64, u64),
}

/// The limits of a search: it sends its matches to a client.
pub const SEARCH_LIMITS: ScanLimits = ScanLimits {
    scanned: (1_000_000, 100_000_000),
    results: (100, 10_000),
    seconds: (60, 600),
};

/// The limits of an export: it writes its matches to a file, as many as there are.
pub const EXPORT_LIMITS: ScanLimits = ScanLimits {
    scanned: (u64::MAX, u64::MAX),
    results: (u64::MAX, u64::MAX),
    seconds: (3_600, 86_400),
};

fn within(arg: &str, given: Option<u64>, (default, max): (u64, u64)) -> Result<u64> {
    match given {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(Error::validation(format!("{arg}: give 1 to {max}, not {n}"))),
    }
}

impl Console {
    /// Searches a stream's messages, for a viewer of its cluster: matches as they are found,
    /// progress as it goes, and how it ended. It reads the stream (never a consumer), from the
    /// range's start to what was its end when the search began; dropping the stream stops it.
    pub async fn search_messages(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        req: SearchRequest,
    ) -> Result<impl futures::Stream<Item = Result<ScanEvent>> + Send + 'static + use<>> {
        self.scan_messages(caller, cluster_id, stream, req, SEARCH_LIMITS, "search")
            .await
    }

    /// A scan of a stream for a search or an export (`what`), once its request is checked
    /// (and an unmasked scan recorded).
    async fn scan_messages(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        req: SearchRequest,
        limits: ScanLimits,
        what: &str,
    ) -> Result<impl futures::Stream<Item = Result<ScanEvent>> + Send + 'static + use<>> {
        let (reader, bounds, predicates) = self.scan_request(caller, cluster_id, stream, &req, limits).await?;
        // Recorded only once the scan is known to go ahead.
        let masker = self
            .masker(
                caller,
                cluster_id,
                stream,
                req.unmasked.then_some((what, bounds.subject.as_str())),
            )
            .await?;
        Ok(scanning(reader, bounds, predicates, masker))
    }

    /// A scan of a stream's messages as they are, for a use case that moves them and shows
    /// none (a republish).
    pub(crate) async fn raw_scan(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        req: &SearchRequest,
        limits: ScanLimits,
    ) -> Result<(
        Bounds,
        impl futures::Stream<Item = Result<ScanEvent>> + Send + 'static + use<>,
    )> {
        let (reader, bounds, predicates) = self.scan_request(caller, cluster_id, stream, req, limits).await?;
        let scan = scanning(reader, bounds.clone(), predicates, Masker::default());
        Ok((bounds, scan))
    }

    /// What a scan request reads (a reader, its bounds) and looks for, once checked.
    async fn scan_request(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        req: &SearchRequest,
        limits: ScanLimits,
    ) -> Result<(Reader, Bounds, Predicates)> {
        self.stream(caller, cluster_id, stream)?;
        let Checked {
            subject,
            max_scanned,
            max_results,
            seconds,
            predicates,
        } = check_search(req, limits)?;
        let (reader, _) = self.reader(cluster_id, stream).await?;
        let facts = reader.facts().clone();
        let from = match (req.from_sequence, req.from_time) {
            (Some(s), _) => s,
            (None, Some(t)) => reader
                .sequence_at(t, ">")
                .await
                .map_err(read_error)?
                .unwrap_or(facts.last_seq + 1),
            (None, None) => facts.first_seq.max(1),
        };
        let to = match (req.to_sequence, req.to_time) {
            (Some(s), _) => s.min(facts.last_seq),
            (None, Some(t)) => match reader.sequence_at(t, ">").await.map_err(read_error)? {
                Some(s) => s.saturating_sub(1),
                None => facts.last_seq,
            },
            (None, None) => facts.last_seq,
        };
        let bounds = Bounds {
            from: from.max(1),
            to,
            subject,
            max_scanned,
            max_results,
            time_budget: std::time::Duration::from_secs(seconds),
        };
        Ok((reader, bounds, predicates))
    }
}

/// A search request once checked on its own (before anything is read).
struct Checked {
    subject: String,
    max_scanned: u64,
    max_results: u64,
    seconds: u64,
    predicates: Predicates,
}

/// Checks a search request on its own: its filter, limits, range and predicates (regexes and
/// expression compiled).
fn check_search(req: &SearchRequest, limits: ScanLimits) -> Result<Checked> {
    let req = req.clone();
    let subject = filter_of(&req.subject)?;
    let max_scanned = within("maxScanned", req.max_scanned, limits.scanned)?;
    let max_results = within("maxResults", req.max_results, limits.results)?;
    let seconds = within("timeBudgetSeconds", req.time_budget_seconds, limits.seconds)?;
    for (arg, t) in [("fromTime", req.from_time), ("toTime", req.to_time)] {
        if t.is_some_and(|t| t > Utc::now()) {
            return Err(Error::validation(format!("{arg}: give a time before now")));
        }
    }
    if req.from_sequence.is_some() && req.from_time.is_some() {
        return Err(Error::validation("give fromSequence or fromTime, not both"));
    }
    if req.to_sequence.is_some() && req.to_time.is_some() {
        return Err(Error::validation("give toSequence or toTime, not both"));
    }
    if let (Some(a), Some(b)) = (req.from_sequence, req.to_sequence)
        && a > b
    {
        return Err(Error::validation(format!(
            "fromSequence: {a} is after toSequence {b}; give a range that runs forward"
        )));
    }
    if let (Some(a), Some(b)) = (req.from_time, req.to_time)
        && a >= b
    {
        return Err(Error::validation("fromTime: give a time before toTime"));
    }
    if req
        .payload_contains
        .as_ref()
        .is_some_and(|n| n.len() > jsc_messages::search::MAX_NEEDLE)
    {
        return Err(Error::validation(format!(
            "payloadContains: at most {} bytes; use payloadRegex for patterns",
            jsc_messages::search::MAX_NEEDLE
        )));
    }
    let mut headers = Vec::new();
    for (name, test) in req.headers {
        if name.trim().is_empty() {
            return Err(Error::validation("headers.name: name the header"));
        }
        let test = match test {
            HeaderPredicate::Present => HeaderTest::Present,
            HeaderPredicate::Equals(v) => HeaderTest::Equals(v),
            HeaderPredicate::Contains(v) => HeaderTest::Contains(v),
            HeaderPredicate::Regex(r) => HeaderTest::Matches(
                jsc_messages::search::regex(&format!("headers.{name}.regex"), &r).map_err(Error::validation)?,
            ),
        };
        headers.push((name, test));
    }
    let predicates = Predicates {
        headers,
        payload_contains: req.payload_contains.map(String::into_bytes),
        payload_matches: req
            .payload_regex
            .map(|r| jsc_messages::search::regex("payloadRegex", &r))
            .transpose()
            .map_err(Error::validation)?,
        expression: req
            .expression
            .map(|e| {
                jsc_messages::expr::Expr::compile(&e).map_err(|why| Error::validation(format!("expression: {why}")))
            })
            .transpose()?,
    };
    Ok(Checked {
        subject,
        max_scanned,
        max_results,
        seconds,
        predicates,
    })
}

/// A scan as the use cases send it: its errors theirs.
fn scanning(
    reader: Reader,
    bounds: Bounds,
    predicates: Predicates,
    masker: Masker,
) -> futures::stream::BoxStream<'static, Result<ScanEvent>> {
    use futures::StreamExt;
    jsc_messages::search::scan(reader, bounds, predicates, masker)
        .map(|r| r.map_err(read_error))
        .boxed()
}

/// A finished export of messages: its download link, how far the scan came and why it ended.
pub struct MessageExport {
    pub export: crate::history::Export,
    pub progress: SearchProgress,
    pub stop: SearchStop,
}

/// Messages an export holds in memory before it writes them.
const EXPORT_BATCH: usize = 1_000;

impl Console {
    /// Writes a stream's messages — a range, or what a search finds in it — to a file on the
    /// object store, oldest first, under the organization's masking rules (or unmasked, for an
    /// admin, recorded first), and returns a signed download link valid for an hour. It holds
    /// one read of the stream and one batch of rows at a time, however many it writes, and
    /// reports progress to `progress` as it goes. For a viewer of the cluster.
    pub async fn export_messages(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        req: SearchRequest,
        format: jsc_domain::export::ExportFormat,
        progress: &mut (dyn FnMut(SearchProgress) + Send),
    ) -> Result<MessageExport> {
        use futures::StreamExt;
        let scan = self
            .scan_messages(caller, cluster_id, stream, req, EXPORT_LIMITS, "export")
            .await?;
        let correlation = caller.correlation_id();
        let (file, path, sink) = self.new_export(format);
        let written = async {
            let internal = |e: jsc_messages::export::ExportError| Error::internal(&e, correlation);
            let mut writer = jsc_messages::export::ExportWriter::new(format, sink)
                .await
                .map_err(internal)?;
            let mut pending = Vec::with_capacity(EXPORT_BATCH);
            let mut end = None;
            let mut scan = std::pin::pin!(scan);
            while let Some(event) = scan.next().await {
                match event? {
                    ScanEvent::Match(m) => {
                        pending.push(m);
                        if pending.len() >= EXPORT_BATCH {
                            writer.write(&pending).await.map_err(internal)?;
                            pending.clear();
                        }
                    }
                    ScanEvent::Progress(p) => progress(p),
                    ScanEvent::Done(p, stop) => end = Some((p, stop)),
                }
            }
            writer.write(&pending).await.map_err(internal)?;
            let rows = writer.finish().await.map_err(internal)?;
            let (p, stop) =
                end.ok_or_else(|| Error::unavailable("the read of the stream ended early; export again"))?;
            Ok::<_, Error>((rows, p, stop))
        }
        .await;
        let (rows, p, stop) = match written {
            Ok(w) => w,
            Err(e) => {
                self.discard_export(&path).await;
                return Err(e);
            }
        };
        let export = self.signed_export(&file, rows, correlation).await?;
        Ok(MessageExport {
            export,
            progress: p,
            stop,
        })
    }
}

/// What a live export sends: progress, then the finished export.
pub enum ExportEvent {
    Progress(SearchProgress),
    Done(MessageExport),
}

/// Progress reports a live export holds for a client that is slow to read them (the newest
/// are dropped, not queued: each report says all there is to know).
const EXPORT_PROGRESS_QUEUE: usize = 16;

impl Console {
    /// [`Console::export_messages`], reporting as it goes: progress, then the finished export
    /// (or the error that ended it). Dropping the stream stops the export at once.
    pub fn export_messages_live(
        &self,
        caller: Caller,
        cluster_id: String,
        stream: String,
        req: SearchRequest,
        format: jsc_domain::export::ExportFormat,
    ) -> impl futures::Stream<Item = Result<ExportEvent>> + Send + 'static + use<> {
        struct AbortOnDrop(tokio::task::JoinHandle<()>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel(EXPORT_PROGRESS_QUEUE);
        let console = self.clone();
        let task = tokio::spawn(async move {
            let reports = tx.clone();
            let mut progress = move |p| {
                let _ = reports.try_send(Ok(ExportEvent::Progress(p)));
            };
            let out = console
                .export_messages(&caller, &cluster_id, &stream, req, format, &mut progress)
                .await;
            let _ = tx.send(out.map(ExportEvent::Done)).await;
        });
        futures::stream::unfold((rx, AbortOnDrop(task)), |(mut rx, task)| async move {
            rx.recv().await.map(|item| (item, (rx, task)))
        })
    }
}

/// Messages a schema sample reads when it names no size, and the most it may.
pub const SCHEMA_SAMPLE: (u64, u64) = (500, 10_000);

/// A time window of a stream, for a sample: its newest messages from `from` up to (not
/// including) `to`; either end left out is the stream's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

pub use jsc_messages::schema::{Field as ShapeField, Shape, ShapeChanges};

impl Console {
    /// The JSON shape of a sample of a stream's messages on `subject` (the newest within
    /// `window`), as masking shows them: every field path with its types, presence and a
    /// (masked) example. For a viewer of the cluster.
    pub async fn message_schema(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        subject: Option<String>,
        window: Window,
        sample: Option<u64>,
    ) -> Result<Shape> {
        self.stream(caller, cluster_id, stream)?;
        check_window(&window, "window")?;
        let filter = filter_of(&subject)?;
        let n = within("sample", sample, SCHEMA_SAMPLE)?;
        let (reader, _) = self.reader(cluster_id, stream).await?;
        let masker = self.masker_now(cluster_id, stream, true);
        let messages = sample_window(&reader, &filter, window, n).await?;
        let masked: Vec<StoredMessage> = messages.into_iter().map(|m| masker.apply(m)).collect();
        Ok(jsc_messages::schema::infer(&masked))
    }

    /// How the shape of a stream's messages on `subject` changed from one window to another:
    /// both shapes, and the fields added, removed or changed (types, or presence by 10
    /// points or more).
    #[allow(clippy::too_many_arguments)]
    pub async fn message_schema_changes(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        subject: Option<String>,
        before: Window,
        after: Window,
        sample: Option<u64>,
    ) -> Result<(Shape, Shape, ShapeChanges)> {
        check_window(&before, "before")?;
        check_window(&after, "after")?;
        let a = self
            .message_schema(caller, cluster_id, stream, subject.clone(), before, sample)
            .await?;
        let b = self
            .message_schema(caller, cluster_id, stream, subject, after, sample)
            .await?;
        let changes = jsc_messages::schema::compare(&a, &b);
        Ok((a, b, changes))
    }
}

/// The newest `n` messages on `filter` within `window`, oldest first.
/// Refuses a window in the future or ending before it starts; `name` is the argument
/// (`window`, `before`, `after`) the error names.
fn check_window(window: &Window, name: &str) -> Result<()> {
    for (arg, t) in [("from", window.from), ("to", window.to)] {
        if t.is_some_and(|t| t > Utc::now()) {
            return Err(Error::validation(format!("{name}.{arg}: give a time before now")));
        }
    }
    if let (Some(a), Some(b)) = (window.from, window.to)
        && a >= b
    {
        return Err(Error::validation(format!("{name}.from: give a time before {name}.to")));
    }
    Ok(())
}

async fn sample_window(reader: &Reader, filter: &str, window: Window, n: u64) -> Result<Vec<StoredMessage>> {
    let facts = reader.facts();
    let start = match window.from {
        Some(t) => match reader.sequence_at(t, filter).await.map_err(read_error)? {
            Some(s) => s,
            None => return Ok(Vec::new()),
        },
        None => facts.first_seq.max(1),
    };
    let end = match window.to {
        Some(t) => match reader.sequence_at(t, filter).await.map_err(read_error)? {
            Some(s) => s.saturating_sub(1),
            None => facts.last_seq,
        },
        None => facts.last_seq,
    };
    let mut out: Vec<StoredMessage> = Vec::new();
    let mut at = end;
    while at >= start && at > 0 && (out.len() as u64) < n {
        let want = (n - out.len() as u64).min(1_000) as usize;
        let batch = reader.backward(at, filter, want).await.map_err(read_error)?;
        let Some(oldest) = batch.messages.last().map(|m| m.sequence) else {
            break;
        };
        out.extend(batch.messages.into_iter().filter(|m| m.sequence >= start));
        if !batch.more || oldest <= start {
            break;
        }
        at = oldest - 1;
    }
    out.reverse();
    Ok(out)
}

pub use jsc_domain::identity::SavedSearch;

impl Console {
    /// Saves a search of a stream under `name` for the signed-in caller (replacing one of
    /// the same name), once it checks out as a search would; recorded as `SearchSaved`.
    pub async fn save_search(
        &self,
        caller: &Caller,
        name: &str,
        cluster_id: &str,
        stream: &str,
        req: SearchRequest,
    ) -> Result<SavedSearch> {
        let uid = caller.require_user("save searches")?.to_string();
        self.stream(caller, cluster_id, stream)?;
        check_search(&req, SEARCH_LIMITS)?;
        let saved = SavedSearch {
            name: name.to_string(),
            cluster_id: cluster_id.to_string(),
            stream: stream.to_string(),
            search: serde_json::to_value(&req).expect("a search serializes"),
            saved_at: Utc::now(),
        };
        let cmd = jsc_domain::identity::UserCommand::SaveSearch(saved);
        let done = self
            .run::<jsc_domain::identity::User>(Actor::Caller(caller), Access::Checked(None), &uid, cmd)
            .await?;
        let name = name.trim();
        done.state
            .saved_searches
            .get(name)
            .cloned()
            .ok_or_else(|| Error::bug("a saved search is missing", caller.correlation_id()))
    }

    /// Deletes one of the caller's saved searches; recorded as `SavedSearchDeleted`.
    pub async fn delete_saved_search(&self, caller: &Caller, name: &str) -> Result<()> {
        let uid = caller.require_user("delete saved searches")?.to_string();
        let cmd = jsc_domain::identity::UserCommand::DeleteSavedSearch { name: name.to_string() };
        self.run::<jsc_domain::identity::User>(Actor::Caller(caller), Access::Checked(None), &uid, cmd)
            .await?;
        Ok(())
    }

    /// The caller's saved searches, by name (none for an API key), only those of clusters the
    /// caller may still see.
    pub fn saved_searches(&self, caller: &Caller) -> Vec<SavedSearch> {
        let Some(uid) = caller.user_id() else {
            return Vec::new();
        };
        self.user_view(uid)
            .map(|u| u.state.saved_searches.into_values().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|s| self.cluster_role(&caller.principal, &s.cluster_id).is_some())
            .collect()
    }

    /// The request of the caller's saved search `name`, for a search of `cluster_id`'s
    /// `stream` (`VALIDATION` when it was saved for another stream).
    pub fn saved_search(&self, caller: &Caller, cluster_id: &str, stream: &str, name: &str) -> Result<SearchRequest> {
        let saved = self
            .saved_searches(caller)
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::not_found(format!("you have no saved search named '{name}'")))?;
        if saved.cluster_id != cluster_id || saved.stream != stream {
            return Err(Error::validation(format!(
                "saved: '{name}' searches stream '{}' of cluster '{}'; run it there",
                saved.stream, saved.cluster_id
            )));
        }
        serde_json::from_value(saved.search)
            .map_err(|e| Error::validation(format!("saved: '{name}' cannot be read any more ({e}); save it again")))
    }
}

/// Protobuf decoders, compiled once per descriptor set and message type.
#[derive(Default)]
pub(crate) struct Decoders(
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<jsc_messages::protobuf::ProtoDecoder>>>,
);

impl Decoders {
    /// The decoder of `schema` (`None` for one that no longer compiles: it was checked when
    /// registered).
    fn get(
        &self,
        schema: &jsc_domain::identity::ProtobufSchema,
    ) -> Option<std::sync::Arc<jsc_messages::protobuf::ProtoDecoder>> {
        use base64::Engine;
        let key = format!("{}:{}", schema.sha256, schema.message_type);
        let mut cache = self.0.lock().expect("decoders lock");
        if let Some(d) = cache.get(&key) {
            return Some(d.clone());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&schema.descriptor_set)
            .ok()?;
        let d = std::sync::Arc::new(jsc_messages::protobuf::ProtoDecoder::new(&bytes, &schema.message_type).ok()?);
        cache.insert(key, d.clone());
        Some(d)
    }
}

impl Console {
    /// Registers (or replaces) a Protobuf schema for the messages on `subjects` of the
    /// organization's streams (admin): from the next read on, their payloads are shown as
    /// JSON (and masked, searched and exported as such). Recorded as
    /// `ProtobufSchemaRegistered` with the descriptor set itself and its digest.
    pub async fn register_protobuf_schema(
        &self,
        caller: &Caller,
        org: &str,
        name: &str,
        subjects: &str,
        message_type: &str,
        descriptor_set_base64: &str,
    ) -> Result<jsc_domain::identity::ProtobufSchema> {
        use base64::Engine;
        use jsc_domain::identity::MAX_DESCRIPTOR_SET;
        self.require_org(&caller.principal, org, jsc_domain::identity::Role::Admin)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(descriptor_set_base64.trim())
            .map_err(|e| Error::validation(format!("descriptorSet: not base64 ({e})")))?;
        if bytes.len() > MAX_DESCRIPTOR_SET {
            return Err(Error::validation(format!(
                "descriptorSet: {} bytes; at most {MAX_DESCRIPTOR_SET} (leave out what the type does not import)",
                bytes.len()
            )));
        }
        jsc_messages::protobuf::ProtoDecoder::new(&bytes, message_type)
            .map_err(|e| Error::validation(format!("descriptorSet: {e}")))?;
        let schema = jsc_domain::identity::ProtobufSchema {
            name: name.trim().to_string(),
            subjects: subjects.to_string(),
            message_type: message_type.to_string(),
            descriptor_set: base64::engine::general_purpose::STANDARD.encode(&bytes),
            sha256: jsc_domain::sha256_hex(&bytes),
        };
        let view = self
            .organization_command(
                caller,
                org,
                jsc_domain::identity::OrganizationCommand::RegisterProtobufSchema { schema: schema.clone() },
            )
            .await?;
        Ok(view.state.protobuf.get(&schema.name).cloned().unwrap_or(schema))
    }

    /// Removes a Protobuf schema (admin); recorded as `ProtobufSchemaRemoved`.
    pub async fn remove_protobuf_schema(&self, caller: &Caller, org: &str, name: &str) -> Result<()> {
        self.require_org(&caller.principal, org, jsc_domain::identity::Role::Admin)?;
        let cmd = jsc_domain::identity::OrganizationCommand::RemoveProtobufSchema { name: name.to_string() };
        self.organization_command(caller, org, cmd).await?;
        Ok(())
    }
}
