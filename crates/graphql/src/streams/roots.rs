//! Queries and mutations on streams and consumers: each translates its arguments into one
//! use case of the application and its answer back.

use async_graphql::{Context, ID, Object, Result};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsc_app::{Error as ApiError, StreamFilter};
use jsc_domain::consumer::ConsumerConfig;
use jsc_domain::stream::{PurgeRequest, StreamConfig};

use super::inputs::{ConsumerConfigInput, HeaderInput, StreamConfigInput};
use super::types::{ConsumerObj, DeletedResource, PublishAck, PurgeResult, StreamConnection, StreamObj};
use crate::connection::paging;
use crate::context::{caller, console};

#[derive(Default)]
pub struct StreamQuery;

#[Object]
impl StreamQuery {
    /// Streams of a cluster, by name, one page. Filter by part of the name, or by a subject
    /// the stream stores. Needs the viewer role on the cluster; `NOT_FOUND` when the caller
    /// has none.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn streams(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster whose streams to list.")] cluster_id: ID,
        #[graphql(desc = "Only streams whose name has this text (case-insensitive).")] name_contains: Option<String>,
        #[graphql(desc = "Only streams that store this subject (wildcards allowed; overlapping subjects match).")]
        subject: Option<String>,
        #[graphql(
            desc = "The first `first` streams (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only streams after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` streams (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(
            desc = "Only streams before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<StreamConnection> {
        let filter = StreamFilter { name_contains, subject };
        let page = console(ctx).streams(&caller(ctx)?, &cluster_id, filter, &paging(first, after, last, before))?;
        Ok(StreamConnection::new(page, StreamObj))
    }

    /// One stream with its consumers, for a viewer of its cluster; `NOT_FOUND` when there is
    /// none or the caller has no role on the cluster.
    async fn stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The stream's name.")] name: String,
    ) -> Result<StreamObj> {
        Ok(StreamObj(console(ctx).stream(&caller(ctx)?, &cluster_id, &name)?))
    }

    /// One durable consumer, for a viewer of its cluster; `NOT_FOUND` when there is none or
    /// the caller has no role on the cluster.
    async fn consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the consumer is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream the consumer reads.")] stream: String,
        #[graphql(desc = "The consumer's durable name.")] name: String,
    ) -> Result<ConsumerObj> {
        Ok(ConsumerObj(console(ctx).consumer(
            &caller(ctx)?,
            &cluster_id,
            &stream,
            &name,
        )?))
    }
}

#[derive(Default)]
pub struct StreamMutation;

#[Object]
impl StreamMutation {
    /// Creates a stream on a managed cluster; needs the operator role on it. Errors:
    /// `VALIDATION` (a bad field, or the server refused it), `CONFLICT` (the stream exists),
    /// `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE` (the cluster cannot be reached).
    async fn create_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster to create the stream on.")] cluster_id: ID,
        #[graphql(desc = "The stream's configuration; `name` is required, the rest takes JetStream's defaults.")]
        config: StreamConfigInput,
    ) -> Result<StreamObj> {
        let Some(name) = config.name.clone() else {
            return Err(ApiError::validation("name: give the stream a name").into());
        };
        let mut full = StreamConfig::named(name);
        config.apply_to(&mut full);
        Ok(StreamObj(
            console(ctx).create_stream(&caller(ctx)?, &cluster_id, full).await?,
        ))
    }

    /// Changes a stream's configuration; fields left out keep their value. Fields the
    /// server cannot change (storage, retention to or from workqueue, mirror) are refused.
    /// Needs the operator role. Errors: `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `CONFLICT`
    /// (a concurrent change), `UNAVAILABLE`.
    async fn update_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream to change.")] name: String,
        #[graphql(desc = "The fields to change; `name`, if given, must be the stream's name.")]
        config: StreamConfigInput,
    ) -> Result<StreamObj> {
        let (c, caller) = (console(ctx), caller(ctx)?);
        let mut full = c.stream(&caller, &cluster_id, &name)?.view.config;
        if config.name.as_ref().is_some_and(|n| n != &name) {
            return Err(ApiError::validation("name: a stream cannot be renamed; create a new stream").into());
        }
        config.apply_to(&mut full);
        Ok(StreamObj(c.update_stream(&caller, &cluster_id, &name, full).await?))
    }

    /// Deletes a stream and all its messages, and with them its consumers; repeat its name
    /// in `confirmName`. Cannot be undone. Needs the operator role. Errors: `VALIDATION`
    /// (the names differ), `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn delete_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream to delete.")] name: String,
        #[graphql(desc = "The stream's name again, to confirm.")] confirm_name: String,
    ) -> Result<DeletedResource> {
        console(ctx)
            .delete_stream(&caller(ctx)?, &cluster_id, &name, confirm_name)
            .await?;
        Ok(DeletedResource { cluster_id, name })
    }

    /// Removes messages: all, only those on `subject`, all but the newest `keep`, or those
    /// below `upToSequence`; returns how many. Needs the operator role. Errors: `VALIDATION`
    /// (the stream denies purges, both `keep` and `upToSequence` given), `NOT_FOUND`,
    /// `FORBIDDEN`, `UNAVAILABLE`.
    async fn purge_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream to purge.")] name: String,
        #[graphql(desc = "Only messages on this subject (wildcards allowed); left out, every subject.")]
        subject: Option<String>,
        #[graphql(desc = "Keep this many of the newest messages; not with `upToSequence`.")] keep: Option<u64>,
        #[graphql(desc = "Remove messages with a stream sequence below this one (not itself); not with `keep`.")]
        up_to_sequence: Option<u64>,
    ) -> Result<PurgeResult> {
        let request = PurgeRequest {
            filter: subject,
            keep,
            seq: up_to_sequence,
        };
        let purged = console(ctx)
            .purge_stream(&caller(ctx)?, &cluster_id, &name, request)
            .await?;
        Ok(PurgeResult { purged })
    }

    /// Seals a stream: no more messages, deletes or purges; cannot be undone. Sealing a
    /// sealed stream changes nothing. Needs the operator role. Errors: `NOT_FOUND`,
    /// `FORBIDDEN`, `VALIDATION` (the server refused), `UNAVAILABLE`.
    async fn seal_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream to seal.")] name: String,
    ) -> Result<StreamObj> {
        Ok(StreamObj(
            console(ctx).seal_stream(&caller(ctx)?, &cluster_id, &name).await?,
        ))
    }

    /// Publishes a message into a stream and returns JetStream's acknowledgement. Give the
    /// payload as text or as base64, not both. The history records the subject, size,
    /// header names and a SHA-256 of the payload, never the payload. Needs the operator
    /// role. Errors: `VALIDATION` (a bad subject or header, a sealed stream, a refused
    /// message), `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    #[allow(clippy::too_many_arguments)]
    async fn publish_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream to publish into.")] stream: String,
        #[graphql(desc = "The subject to publish on: concrete (no wildcards) and one the stream stores.")]
        subject: String,
        #[graphql(
            default,
            desc = "NATS headers to send with the message, such as `Nats-Msg-Id`. Defaults to none."
        )]
        headers: Vec<HeaderInput>,
        #[graphql(desc = "The payload as UTF-8 text; not with `payloadBase64`.")] payload: Option<String>,
        #[graphql(desc = "The payload as standard base64, for binary data; not with `payload`.")]
        payload_base64: Option<String>,
    ) -> Result<PublishAck> {
        let (c, caller) = (console(ctx), caller(ctx)?);
        c.stream(&caller, &cluster_id, &stream)?;
        let payload = match (payload, payload_base64) {
            (Some(_), Some(_)) => return Err(ApiError::validation("give payload or payloadBase64, not both").into()),
            (Some(t), None) => t.into_bytes(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|_| ApiError::validation("payloadBase64: not valid base64"))?,
            (None, None) => Vec::new(),
        };
        let headers = headers.into_iter().map(|h| (h.name, h.value)).collect();
        let message = c
            .publish(&caller, &cluster_id, &stream, subject, headers, payload)
            .await?;
        Ok(PublishAck {
            stream,
            sequence: message.sequence,
            duplicate: message.duplicate,
        })
    }

    /// Creates a durable consumer (pull, or push with a deliver subject); needs the operator
    /// role. Errors: `VALIDATION` (a bad field, or the server refused it), `CONFLICT` (the
    /// consumer exists), `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn create_consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream to consume.")] stream: String,
        #[graphql(
            desc = "The consumer's configuration; `durableName` is required, the rest takes JetStream's defaults."
        )]
        config: ConsumerConfigInput,
    ) -> Result<ConsumerObj> {
        let (c, caller) = (console(ctx), caller(ctx)?);
        c.stream(&caller, &cluster_id, &stream)?;
        let Some(name) = config.durable_name.clone() else {
            return Err(ApiError::validation("durableName: give the consumer a durable name").into());
        };
        let mut full = ConsumerConfig::durable(name);
        config.apply_to(&mut full);
        Ok(ConsumerObj(
            c.create_consumer(&caller, &cluster_id, &stream, full).await?,
        ))
    }

    /// Changes a consumer; fields left out keep their value. Where it starts, how it acks
    /// and replays, and push or pull cannot change. Needs the operator role. Errors:
    /// `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `CONFLICT` (a concurrent change), `UNAVAILABLE`.
    async fn update_consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the consumer is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream the consumer reads.")] stream: String,
        #[graphql(desc = "The consumer's durable name.")] name: String,
        #[graphql(desc = "The fields to change; `durableName`, if given, must be the consumer's name.")]
        config: ConsumerConfigInput,
    ) -> Result<ConsumerObj> {
        let (c, caller) = (console(ctx), caller(ctx)?);
        let mut full = c.consumer(&caller, &cluster_id, &stream, &name)?.view.config;
        if config.durable_name.as_ref().is_some_and(|n| n != &name) {
            return Err(ApiError::validation("durableName: a consumer cannot be renamed").into());
        }
        config.apply_to(&mut full);
        Ok(ConsumerObj(
            c.update_consumer(&caller, &cluster_id, &stream, &name, full).await?,
        ))
    }

    /// Deletes a durable consumer and its delivery state; the stream's messages stay. Needs
    /// the operator role. Errors: `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn delete_consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the consumer is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream the consumer reads.")] stream: String,
        #[graphql(desc = "The consumer's durable name.")] name: String,
    ) -> Result<DeletedResource> {
        console(ctx)
            .delete_consumer(&caller(ctx)?, &cluster_id, &stream, &name)
            .await?;
        Ok(DeletedResource { cluster_id, name })
    }

    /// Stops delivery until `until`, then delivery resumes by itself (nats-server 2.11+).
    /// Needs the operator role. Errors: `VALIDATION` (`until` not in the future, a server
    /// too old), `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn pause_consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the consumer is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream the consumer reads.")] stream: String,
        #[graphql(desc = "The consumer's durable name.")] name: String,
        #[graphql(desc = "When delivery resumes; must be in the future.")] until: DateTime<Utc>,
    ) -> Result<ConsumerObj> {
        let until = until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        Ok(ConsumerObj(
            console(ctx)
                .pause_consumer(&caller(ctx)?, &cluster_id, &stream, &name, Some(until))
                .await?,
        ))
    }

    /// Resumes a paused consumer now (nats-server 2.11+). Needs the operator role. Errors:
    /// `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn resume_consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the consumer is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream the consumer reads.")] stream: String,
        #[graphql(desc = "The consumer's durable name.")] name: String,
    ) -> Result<ConsumerObj> {
        Ok(ConsumerObj(
            console(ctx)
                .pause_consumer(&caller(ctx)?, &cluster_id, &stream, &name, None)
                .await?,
        ))
    }
}
