//! JetStream administration on a managed cluster, through the JSON API (`$JS.API.>`).
//!
//! The raw API rather than async-nats' typed builders: configurations round-trip exactly
//! as the server stores them (fields this version does not model included), and every
//! server error keeps its code and words.

use std::time::Duration;

use async_nats::HeaderMap;
use jsc_domain::cluster::AccountUsage;
use jsc_domain::consumer::ConsumerConfig;
use jsc_domain::stream::{PurgeRequest, ServiceError, StreamConfig};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// JetStream error codes the console tells apart.
pub mod codes {
    pub const STREAM_NOT_FOUND: u64 = 10059;
    pub const CONSUMER_NOT_FOUND: u64 = 10014;
    pub const STREAM_NAME_IN_USE: u64 = 10058;
    pub const CONSUMER_ALREADY_EXISTS: u64 = 10148;
    pub const SUBJECTS_OVERLAP: u64 = 10065;
    /// `STREAM.MSG.DELETE` of a message that is not there: "sequence not found", or (with
    /// erase) "no message found".
    pub const MESSAGE_NOT_THERE: [u64; 2] = [10043, 10057];
    /// The cluster cannot serve the request right now (no leader, no peers, no resources).
    pub const TEMPORARY: [u64; 6] = [10008, 10005, 10023, 10047, 10028, 10076];
}

/// `major.minor` of the server `client` reached.
pub fn server_version(client: &async_nats::Client) -> (u64, u64) {
    let v = client.server_info().version;
    let mut parts = v
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// How long an admin request may take (deleting a large stream or placing an R3 one can
/// take seconds).
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

/// The live state of a stream.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct StreamState {
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub first_seq: u64,
    #[serde(default)]
    pub first_ts: Option<String>,
    #[serde(default)]
    pub last_seq: u64,
    #[serde(default)]
    pub last_ts: Option<String>,
    #[serde(default)]
    pub consumer_count: u64,
    #[serde(default)]
    pub num_subjects: u64,
    #[serde(default)]
    pub num_deleted: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamInfo {
    pub config: StreamConfig,
    #[serde(default)]
    pub state: StreamState,
    #[serde(default)]
    pub created: Option<String>,
    /// Where the stream's replicas stand (clustered servers only).
    #[serde(default)]
    pub cluster: Option<PlacementInfo>,
    /// How far the stream trails the stream it mirrors.
    #[serde(default)]
    pub mirror: Option<SourceInfo>,
    /// How far it trails each stream it sources from.
    #[serde(default)]
    pub sources: Option<Vec<SourceInfo>>,
}

/// The replica group of a stream or consumer: its leader and each replica's state.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct PlacementInfo {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub leader: Option<String>,
    #[serde(default)]
    pub replicas: Option<Vec<PeerInfo>>,
}

/// One replica that is not the leader.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct PeerInfo {
    pub name: String,
    #[serde(default)]
    pub current: bool,
    #[serde(default)]
    pub offline: bool,
    /// Operations behind the leader.
    #[serde(default)]
    pub lag: u64,
}

/// The state of a mirror or source: messages behind its origin, and nanoseconds since it
/// was last active (-1: never).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct SourceInfo {
    pub name: String,
    #[serde(default)]
    pub lag: u64,
    #[serde(default)]
    pub active: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct SequenceInfo {
    #[serde(default)]
    pub consumer_seq: u64,
    #[serde(default)]
    pub stream_seq: u64,
    #[serde(default)]
    pub last_active: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsumerInfo {
    pub stream_name: String,
    pub name: String,
    pub config: ConsumerConfig,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub delivered: SequenceInfo,
    #[serde(default)]
    pub ack_floor: SequenceInfo,
    /// Messages not yet delivered: the consumer's lag.
    #[serde(default)]
    pub num_pending: u64,
    #[serde(default)]
    pub num_ack_pending: u64,
    #[serde(default)]
    pub num_redelivered: u64,
    #[serde(default)]
    pub num_waiting: u64,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub cluster: Option<PlacementInfo>,
}

/// An answer of the JetStream API, decoded straight into `T`. An answer that is an error
/// (it has an `"error"` key) is turned into the [`ServiceError`] it stands for; every other
/// answer is read once, without an intermediate JSON tree (a page of 256 streams is parsed
/// on every sample).
pub fn decode_answer<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ServiceError> {
    #[derive(Deserialize)]
    struct Failed {
        #[serde(default)]
        error: Option<jsc_domain::stream::ApiError>,
    }
    let unreadable =
        |e: serde_json::Error| ServiceError::Unavailable(format!("unreadable answer from the cluster: {e}"));
    // Only an answer that holds the key can be an error; looking is cheaper than a parse.
    if memchr::memmem::find(payload, b"\"error\"").is_some()
        && let Some(err) = serde_json::from_slice::<Failed>(payload).map_err(unreadable)?.error
    {
        let description = match err.description {
            d if d.is_empty() => "unknown error".to_string(),
            d => d,
        };
        return Err(match err.err_code {
            codes::STREAM_NOT_FOUND | codes::CONSUMER_NOT_FOUND => ServiceError::NotFound(description),
            codes::STREAM_NAME_IN_USE | codes::CONSUMER_ALREADY_EXISTS => {
                ServiceError::Conflict(format!("{description}; update it instead"))
            }
            c if codes::TEMPORARY.contains(&c) => {
                ServiceError::Unavailable(format!("the cluster cannot do this right now: {description}"))
            }
            code => ServiceError::Rejected { code, description },
        });
    }
    serde_json::from_slice(payload).map_err(|e| {
        if e.is_data() {
            ServiceError::Unavailable(format!("unexpected answer from the cluster: {e}"))
        } else {
            unreadable(e)
        }
    })
}

/// Admin calls on one managed cluster.
#[derive(Clone)]
pub struct Admin {
    client: async_nats::Client,
}

impl Admin {
    pub fn new(client: async_nats::Client) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// `major.minor` of the server this connection reached.
    pub fn server_version(&self) -> (u64, u64) {
        server_version(&self.client)
    }

    /// One JetStream API request; the server's error, if any, becomes a [`ServiceError`].
    pub async fn api<T: DeserializeOwned>(&self, subject: &str, body: &Value) -> Result<T, ServiceError> {
        let full = format!("$JS.API.{subject}");
        let payload = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).expect("JSON")
        };
        let reply = tokio::time::timeout(API_TIMEOUT, self.client.request(full, payload.into()))
            .await
            .map_err(|_| {
                ServiceError::Unavailable(format!(
                    "the cluster did not answer within {API_TIMEOUT:?}; it may be overloaded or unreachable, \
                     and the request may still complete"
                ))
            })?
            .map_err(|e| match e.kind() {
                async_nats::RequestErrorKind::NoResponders => {
                    ServiceError::Unavailable("JetStream is not enabled on this cluster (no responders)".into())
                }
                async_nats::RequestErrorKind::TimedOut => {
                    ServiceError::Unavailable("the cluster did not answer in time; retry later".into())
                }
                _ => ServiceError::Unavailable(format!("the cluster is unreachable: {e}")),
            })?;
        decode_answer(&reply.payload)
    }

    pub async fn create_stream(&self, config: &StreamConfig) -> Result<StreamConfig, ServiceError> {
        let info: StreamInfo = self
            .api(&format!("STREAM.CREATE.{}", config.name), &json!(config))
            .await?;
        Ok(info.config)
    }

    pub async fn update_stream(&self, config: &StreamConfig) -> Result<StreamConfig, ServiceError> {
        let info: StreamInfo = self
            .api(&format!("STREAM.UPDATE.{}", config.name), &json!(config))
            .await?;
        Ok(info.config)
    }

    pub async fn delete_stream(&self, name: &str) -> Result<(), ServiceError> {
        let _: Value = self.api(&format!("STREAM.DELETE.{name}"), &Value::Null).await?;
        Ok(())
    }

    pub async fn purge_stream(&self, name: &str, request: &PurgeRequest) -> Result<u64, ServiceError> {
        #[derive(Deserialize)]
        struct Purged {
            #[serde(default)]
            purged: u64,
        }
        let r: Purged = self.api(&format!("STREAM.PURGE.{name}"), &json!(request)).await?;
        Ok(r.purged)
    }

    pub async fn stream_info(&self, name: &str) -> Result<StreamInfo, ServiceError> {
        self.api(&format!("STREAM.INFO.{name}"), &Value::Null).await
    }

    /// Every stream with its state, a page (up to 256) per request.
    pub async fn list_streams(&self) -> Result<Vec<StreamInfo>, ServiceError> {
        self.map_streams(|info| info).await
    }

    /// Every stream, each made `f(info)` as its page arrives: what a caller keeps of a big
    /// cluster, without every stream's configuration held at once.
    pub async fn map_streams<T>(&self, mut f: impl FnMut(StreamInfo) -> T) -> Result<Vec<T>, ServiceError> {
        let mut out = Vec::new();
        loop {
            let (got, total) = self.list_streams_page(out.len()).await?;
            let n = got.len();
            out.extend(got.into_iter().map(&mut f));
            if n == 0 || out.len() >= total {
                return Ok(out);
            }
        }
    }

    /// One page of streams with their state (as many as the server gives at once, 256),
    /// from `offset` on, and how many streams there are.
    pub async fn list_streams_page(&self, offset: usize) -> Result<(Vec<StreamInfo>, usize), ServiceError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            total: usize,
            #[serde(default)]
            streams: Option<Vec<StreamInfo>>,
        }
        let page: Page = self.api("STREAM.LIST", &json!({"offset": offset})).await?;
        Ok((page.streams.unwrap_or_default(), page.total))
    }

    /// Every consumer of `stream` with its state.
    pub async fn list_consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>, ServiceError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            total: usize,
            #[serde(default)]
            consumers: Option<Vec<ConsumerInfo>>,
        }
        let mut out = Vec::new();
        loop {
            let page: Page = self
                .api(&format!("CONSUMER.LIST.{stream}"), &json!({"offset": out.len()}))
                .await?;
            let got = page.consumers.unwrap_or_default();
            let n = got.len();
            out.extend(got);
            if n == 0 || out.len() >= page.total {
                return Ok(out);
            }
        }
    }

    async fn put_consumer(
        &self,
        stream: &str,
        config: &ConsumerConfig,
        action: &str,
    ) -> Result<ConsumerConfig, ServiceError> {
        let name = config.consumer_name();
        let info: ConsumerInfo = self
            .api(
                &format!("CONSUMER.CREATE.{stream}.{name}"),
                &json!({"stream_name": stream, "config": config, "action": action}),
            )
            .await?;
        Ok(info.config)
    }

    pub async fn create_consumer(&self, stream: &str, config: &ConsumerConfig) -> Result<ConsumerConfig, ServiceError> {
        self.put_consumer(stream, config, "create").await
    }

    pub async fn update_consumer(&self, stream: &str, config: &ConsumerConfig) -> Result<ConsumerConfig, ServiceError> {
        self.put_consumer(stream, config, "update").await
    }

    pub async fn delete_consumer(&self, stream: &str, name: &str) -> Result<(), ServiceError> {
        let _: Value = self
            .api(&format!("CONSUMER.DELETE.{stream}.{name}"), &Value::Null)
            .await?;
        Ok(())
    }

    pub async fn consumer_info(&self, stream: &str, name: &str) -> Result<ConsumerInfo, ServiceError> {
        self.api(&format!("CONSUMER.INFO.{stream}.{name}"), &Value::Null).await
    }

    /// Pauses until `until` (RFC 3339) or resumes (`None`). Needs nats-server 2.11+.
    pub async fn pause_consumer(
        &self,
        stream: &str,
        name: &str,
        until: Option<&str>,
    ) -> Result<ConsumerConfig, ServiceError> {
        let (major, minor) = self.server_version();
        if (major, minor) < (2, 11) {
            return Err(ServiceError::Unsupported(format!(
                "pausing and resuming consumers needs nats-server 2.11 or later; this cluster runs {}",
                self.client.server_info().version
            )));
        }
        let body = match until {
            Some(t) => json!({"pause_until": t}),
            None => json!({}),
        };
        let _: Value = self.api(&format!("CONSUMER.PAUSE.{stream}.{name}"), &body).await?;
        Ok(self.consumer_info(stream, name).await?.config)
    }

    /// Publishes into `stream` (the server refuses a subject the stream does not hold) and
    /// returns the stream sequence and whether it was a duplicate.
    pub async fn publish(
        &self,
        stream: &str,
        subject: &str,
        headers: &[(String, String)],
        payload: &[u8],
    ) -> Result<(u64, bool), ServiceError> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            let bad = |what: &str| ServiceError::Rejected {
                code: 0,
                description: format!("header {what} '{k}' is not valid in NATS"),
            };
            let name: async_nats::header::HeaderName = k.parse().map_err(|_| bad("name"))?;
            let value: async_nats::HeaderValue = v.parse().map_err(|_| bad("value of"))?;
            h.append(name, value);
        }
        self.publish_message(Some(stream), subject, h, payload.to_vec().into())
            .await
    }

    /// Publishes one message with `headers` to `subject` and waits for the stream's
    /// acknowledgement: `(sequence, duplicate)`. With `expected_stream`, only that stream may
    /// store it. Many may be in flight on the one connection at once.
    pub async fn publish_message(
        &self,
        expected_stream: Option<&str>,
        subject: &str,
        mut headers: HeaderMap,
        payload: bytes::Bytes,
    ) -> Result<(u64, bool), ServiceError> {
        if let Some(stream) = expected_stream {
            headers.insert("Nats-Expected-Stream", stream);
        }
        let reply = tokio::time::timeout(
            API_TIMEOUT,
            self.client.request_with_headers(subject.to_string(), headers, payload),
        )
        .await
        .map_err(|_| {
            ServiceError::Unavailable(format!(
                "the cluster did not acknowledge the message within {API_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::NoResponders => ServiceError::Rejected {
                code: 503,
                description: format!("no stream stores subject '{subject}'"),
            },
            _ => ServiceError::Unavailable(format!("the cluster is unreachable: {e}")),
        })?;
        #[derive(Deserialize)]
        struct Ack {
            #[serde(default)]
            seq: u64,
            #[serde(default)]
            duplicate: bool,
            #[serde(default)]
            error: Option<Value>,
        }
        let ack: Ack = serde_json::from_slice(&reply.payload).map_err(|_| ServiceError::Rejected {
            code: 0,
            description: "the answer was not a JetStream acknowledgement".into(),
        })?;
        if let Some(err) = ack.error {
            return Err(ServiceError::Rejected {
                code: err.get("err_code").and_then(Value::as_u64).unwrap_or(0),
                description: err
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("refused")
                    .to_string(),
            });
        }
        Ok((ack.seq, ack.duplicate))
    }

    /// Removes message `seq` of `stream` (`erase`: overwriting its bytes); `NotFound` when
    /// the stream does not hold it.
    pub async fn delete_message(&self, stream: &str, seq: u64, erase: bool) -> Result<(), ServiceError> {
        match self
            .api::<Value>(
                &format!("STREAM.MSG.DELETE.{stream}"),
                &json!({"seq": seq, "no_erase": !erase}),
            )
            .await
        {
            Err(ServiceError::Rejected { code, .. }) if codes::MESSAGE_NOT_THERE.contains(&code) => Err(
                ServiceError::NotFound(format!("stream '{stream}' holds no message at sequence {seq}")),
            ),
            other => other.map(|_| ()),
        }
    }

    /// JetStream account usage and limits, as `$JS.API.INFO` returns them.
    pub async fn account(&self) -> Result<Value, ServiceError> {
        self.api("INFO", &Value::Null).await
    }

    /// JetStream account usage and limits.
    pub async fn account_usage(&self) -> Result<AccountUsage, ServiceError> {
        Ok(account_usage(&self.account().await?))
    }
}

/// Account usage from a `$JS.API.INFO` answer; a limit that is missing reads as unlimited (-1).
pub fn account_usage(v: &Value) -> AccountUsage {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let limit = |key: &str| v["limits"][key].as_i64().unwrap_or(-1);
    AccountUsage {
        memory: n(&v["memory"]),
        storage: n(&v["storage"]),
        streams: n(&v["streams"]),
        consumers: n(&v["consumers"]),
        max_memory: limit("max_memory"),
        max_storage: limit("max_storage"),
        max_streams: limit("max_streams"),
        max_consumers: limit("max_consumers"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Page {
        total: usize,
        streams: Vec<Value>,
    }

    #[test]
    fn an_answer_is_read_into_its_type() {
        // The word in a value is not an error: only the key is.
        let ok = br#"{"total":1,"streams":[{"config":{"name":"S","description":"\"error\" log"}}]}"#;
        let page: Page = decode_answer(ok).unwrap();
        assert_eq!((page.total, page.streams.len()), (1, 1));
    }

    #[test]
    fn an_error_answer_is_the_error_it_stands_for() {
        let missing = br#"{"type":"x","error":{"code":404,"err_code":10059,"description":"stream not found"}}"#;
        match decode_answer::<Page>(missing) {
            Err(ServiceError::NotFound(d)) => assert_eq!(d, "stream not found"),
            other => panic!("expected NotFound, got {other:?}"),
        }
        let refused = br#"{"error":{"code":400,"err_code":10999}}"#;
        match decode_answer::<Page>(refused) {
            Err(ServiceError::Rejected { code, description }) => {
                assert_eq!((code, description.as_str()), (10999, "unknown error"))
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
    }

    #[test]
    fn an_unreadable_or_unexpected_answer_says_which() {
        let unreadable = decode_answer::<Page>(b"{\"total\":").unwrap_err();
        assert!(unreadable.to_string().contains("unreadable answer"), "{unreadable}");
        let unexpected = decode_answer::<Page>(br#"{"total":"many","streams":[]}"#).unwrap_err();
        assert!(unexpected.to_string().contains("unexpected answer"), "{unexpected}");
    }
}
