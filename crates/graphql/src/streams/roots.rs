//! Queries and mutations on streams and consumers: each translates its arguments into one
//! use case of the application and its answer back.

use async_graphql::{Context, ID, Object, Result};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsc_app::{Error as ApiError, StreamFilter};
use jsc_domain::consumer::ConsumerConfig;
use jsc_domain::stream::{PurgeRequest, StreamConfig};

use super::inputs::{ConsumerConfigInput, HeaderInput, StreamConfigInput};
use super::types::{ConsumerObj, DeletedResource, PublishAck, PurgeResult, StreamObj, StreamPage};
use crate::context::{caller, console};

#[derive(Default)]
pub struct StreamQuery;

#[Object]
impl StreamQuery {
    /// Streams of a cluster, by name: `first` (at most 500) after the cursor `after`.
    /// Filter by part of the name, or by a subject the stream stores.
    async fn streams(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        name_contains: Option<String>,
        subject: Option<String>,
        #[graphql(default = 50)] first: usize,
        after: Option<String>,
    ) -> Result<StreamPage> {
        let filter = StreamFilter { name_contains, subject };
        Ok(console(ctx)
            .streams(&caller(ctx)?, &cluster_id, filter, first, after)?
            .into())
    }

    /// One stream with its consumers.
    async fn stream(&self, ctx: &Context<'_>, cluster_id: ID, name: String) -> Result<StreamObj> {
        Ok(StreamObj(console(ctx).stream(&caller(ctx)?, &cluster_id, &name)?))
    }

    async fn consumer(&self, ctx: &Context<'_>, cluster_id: ID, stream: String, name: String) -> Result<ConsumerObj> {
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
    /// Creates a stream on a managed cluster.
    async fn create_stream(&self, ctx: &Context<'_>, cluster_id: ID, config: StreamConfigInput) -> Result<StreamObj> {
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
    async fn update_stream(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        name: String,
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

    /// Deletes a stream and all its messages; repeat its name in `confirmName`.
    async fn delete_stream(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        name: String,
        confirm_name: String,
    ) -> Result<DeletedResource> {
        console(ctx)
            .delete_stream(&caller(ctx)?, &cluster_id, &name, confirm_name)
            .await?;
        Ok(DeletedResource { cluster_id, name })
    }

    /// Removes messages: all, only those on `subject`, all but the newest `keep`, or those
    /// below `upToSequence`.
    async fn purge_stream(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        name: String,
        subject: Option<String>,
        keep: Option<u64>,
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

    /// Seals a stream: no more messages, deletes or purges; cannot be undone.
    async fn seal_stream(&self, ctx: &Context<'_>, cluster_id: ID, name: String) -> Result<StreamObj> {
        Ok(StreamObj(
            console(ctx).seal_stream(&caller(ctx)?, &cluster_id, &name).await?,
        ))
    }

    /// Publishes a message into a stream and returns JetStream's acknowledgement. Give the
    /// payload as text or as base64, not both. The history records the subject, size,
    /// header names and a SHA-256 of the payload, never the payload.
    #[allow(clippy::too_many_arguments)]
    async fn publish_message(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        subject: String,
        #[graphql(default)] headers: Vec<HeaderInput>,
        payload: Option<String>,
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

    /// Creates a durable consumer (pull, or push with a deliver subject).
    async fn create_consumer(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
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

    /// Changes a consumer; fields left out keep their value.
    async fn update_consumer(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        name: String,
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

    async fn delete_consumer(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        name: String,
    ) -> Result<DeletedResource> {
        console(ctx)
            .delete_consumer(&caller(ctx)?, &cluster_id, &stream, &name)
            .await?;
        Ok(DeletedResource { cluster_id, name })
    }

    /// Stops delivery until `until` (nats-server 2.11+).
    async fn pause_consumer(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        name: String,
        until: DateTime<Utc>,
    ) -> Result<ConsumerObj> {
        let until = until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        Ok(ConsumerObj(
            console(ctx)
                .pause_consumer(&caller(ctx)?, &cluster_id, &stream, &name, Some(until))
                .await?,
        ))
    }

    /// Resumes a paused consumer now (nats-server 2.11+).
    async fn resume_consumer(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        name: String,
    ) -> Result<ConsumerObj> {
        Ok(ConsumerObj(
            console(ctx)
                .pause_consumer(&caller(ctx)?, &cluster_id, &stream, &name, None)
                .await?,
        ))
    }
}
