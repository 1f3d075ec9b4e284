//! Reading events back: one aggregate's history (batch direct get) and the whole stream in
//! order (ordered consumer).

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use serde_json::json;

use crate::{Error, EventRecord};

const DIRECT_BATCH: usize = 512;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads events from `CONSOLE_EVENTS`. Cheap to clone.
#[derive(Clone)]
pub struct EventReader {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) stream: String,
}

impl EventReader {
    pub fn new(client: async_nats::Client, stream: impl Into<String>) -> Self {
        let js = jetstream::new(client.clone());
        Self {
            client,
            js,
            stream: stream.into(),
        }
    }

    /// Events stored on `subject` with a stream sequence of at least `from_seq`, in order.
    ///
    /// Uses batched direct gets (`next_by_subj`), so a cold load costs one round trip per
    /// 512 events and creates no consumer.
    pub async fn read_subject(&self, subject: &str, from_seq: u64) -> Result<Vec<EventRecord>, Error> {
        self.ensure_connected()?;
        let mut out = Vec::new();
        let mut next = from_seq.max(1);
        loop {
            let (batch, more) = self.direct_batch(subject, next).await?;
            let got = batch.len();
            if let Some(last) = batch.last() {
                next = last.stream_sequence + 1;
            }
            out.extend(batch);
            if !more || got == 0 {
                return Ok(out);
            }
        }
    }

    /// Returns once the connection to NATS is down (checked every 50 ms).
    pub async fn disconnected(&self) {
        while self.client.connection_state() == async_nats::connection::State::Connected {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Fails at once, rather than after a timeout, while the connection to NATS is down:
    /// nothing is sent, so nothing can have been written.
    pub fn ensure_connected(&self) -> Result<(), Error> {
        if self.client.connection_state() == async_nats::connection::State::Connected {
            Ok(())
        } else {
            Err(Error::nats("not connected to the console's NATS server"))
        }
    }

    /// One batch direct get. Returns the events and whether more are pending.
    async fn direct_batch(&self, subject: &str, from_seq: u64) -> Result<(Vec<EventRecord>, bool), Error> {
        let api = format!("$JS.API.DIRECT.GET.{}", self.stream);
        let inbox = self.client.new_inbox();
        let mut sub = self.client.subscribe(inbox.clone()).await.map_err(Error::nats)?;
        let request = json!({"seq": from_seq, "next_by_subj": subject, "batch": DIRECT_BATCH});
        self.client
            .publish_with_reply(api, inbox, request.to_string().into())
            .await
            .map_err(Error::nats)?;
        let mut out = Vec::new();
        loop {
            let msg = tokio::time::timeout(READ_TIMEOUT, sub.next())
                .await
                .map_err(|_| Error::Timeout)?
                .ok_or_else(|| Error::nats("subscription closed during a direct get"))?;
            match msg.status.map(|s| s.as_u16()) {
                // End of batch: pending tells whether another batch is needed.
                Some(204) => {
                    let pending = header_u64(&msg, "Nats-Num-Pending").unwrap_or(0);
                    return Ok((out, pending > 0));
                }
                Some(404) => return Ok((out, false)),
                Some(503) => {
                    return Err(Error::nats(format!(
                        "stream {} is not available (no responders)",
                        self.stream
                    )));
                }
                Some(code) if code >= 300 => {
                    return Err(Error::nats(format!(
                        "direct get failed: {code} {}",
                        msg.description.unwrap_or_default()
                    )));
                }
                _ => out.push(direct_record(&msg)?),
            }
        }
    }

    /// The last event on `subject`, if it has one.
    pub async fn last_on_subject(&self, subject: &str) -> Result<Option<EventRecord>, Error> {
        self.ensure_connected()?;
        let api = format!("$JS.API.DIRECT.GET.{}", self.stream);
        let request = json!({ "last_by_subj": subject });
        let msg = tokio::time::timeout(READ_TIMEOUT, self.client.request(api, request.to_string().into()))
            .await
            .map_err(|_| Error::Timeout)?
            .map_err(|e| match e.kind() {
                async_nats::RequestErrorKind::TimedOut => Error::Timeout,
                _ => Error::nats(e),
            })?;
        match msg.status.map(|s| s.as_u16()) {
            Some(404) => Ok(None),
            Some(code) if code >= 300 => Err(Error::nats(format!(
                "direct get of {subject} failed: {code} {}",
                msg.description.unwrap_or_default()
            ))),
            _ => direct_record(&msg).map(Some),
        }
    }

    /// Every event whose subject matches `filter` (e.g. `es.>` or `es.cluster.>`) with a
    /// stream sequence in `from_seq..=to_seq`, in stream order. Stops at the stream's last
    /// sequence as of the call, so it terminates while writers keep appending.
    pub async fn read_range(
        &self,
        filter: &str,
        from_seq: u64,
        to_seq: Option<u64>,
    ) -> Result<Vec<EventRecord>, Error> {
        let mut out = Vec::new();
        self.for_each(filter, from_seq, to_seq, |rec| {
            out.push(rec);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Streams events in order into `f` without holding them all in memory.
    pub async fn for_each<F>(&self, filter: &str, from_seq: u64, to_seq: Option<u64>, mut f: F) -> Result<u64, Error>
    where
        F: FnMut(EventRecord) -> Result<(), Error>,
    {
        let mut stream = self.js.get_stream(&self.stream).await.map_err(Error::nats)?;
        let last = stream.info().await.map_err(Error::nats)?.state.last_sequence;
        let end = to_seq.map_or(last, |t| t.min(last));
        let from = from_seq.max(1);
        if end < from {
            return Ok(0);
        }
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: filter.to_string(),
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
                ..Default::default()
            })
            .await
            .map_err(Error::nats)?;
        if consumer.cached_info().num_pending == 0 {
            return Ok(0);
        }
        let mut messages = consumer.messages().await.map_err(Error::nats)?;
        let mut count = 0;
        loop {
            let msg = tokio::time::timeout(READ_TIMEOUT, messages.next())
                .await
                .map_err(|_| Error::Timeout)?;
            let Some(msg) = msg else { break };
            let msg = msg.map_err(Error::nats)?;
            let info = msg.info().map_err(Error::nats)?;
            let seq = info.stream_sequence;
            let pending = info.pending;
            if seq > end {
                break;
            }
            f(EventRecord::from_message(&msg.payload, msg.headers.as_ref(), seq)?)?;
            count += 1;
            if seq == end || pending == 0 {
                break;
            }
        }
        Ok(count)
    }
}

/// The event a direct get answered with, at the sequence its headers name.
fn direct_record(msg: &async_nats::Message) -> Result<EventRecord, Error> {
    let seq = header_u64(msg, "Nats-Sequence").ok_or_else(|| Error::Malformed {
        sequence: 0,
        reason: "direct get reply without Nats-Sequence".into(),
    })?;
    EventRecord::from_message(&msg.payload, msg.headers.as_ref(), seq)
}

fn header_u64(msg: &async_nats::Message, name: &str) -> Option<u64> {
    msg.headers.as_ref()?.get(name)?.as_str().parse().ok()
}
