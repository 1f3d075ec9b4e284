//! Queries and mutations on streams and consumers: each translates its arguments into one
//! use case of the application and its answer back.

use async_graphql::{Context, ID, Object, Result};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsc_app::Error as ApiError;
use jsc_domain::consumer::ConsumerConfig;
use jsc_domain::stream::{PurgeRequest, StreamConfig};

use super::inputs::{ConsumerConfigInput, HeaderInput, StreamConfigInput};
use super::types::{ConsumerObj, DeletedResource, PublishAck, StreamConnection, StreamObj};
use crate::connection::paging;
use crate::context::{caller, console};
use crate::mutation::{Outcome, input, payload};

#[derive(Default)]
pub struct StreamQuery;

#[Object]
impl StreamQuery {
    /// Streams of a cluster, one page, by name or by a figure of their state (`orderBy`).
    /// Filter by part of the name, a subject the stream stores, or a tag. Needs the viewer
    /// role on the cluster; `NOT_FOUND` when the caller has none.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn streams(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster whose streams to list.")] cluster_id: ID,
        #[graphql(desc = "Only streams whose name has this text (case-insensitive).")] name_contains: Option<String>,
        #[graphql(desc = "Only streams that store this subject (wildcards allowed; overlapping subjects match).")]
        subject: Option<String>,
        #[graphql(
            desc = "Only streams with this placement tag, or this metadata entry: `key` (any value) or `key=value`."
        )]
        tag: Option<String>,
        #[graphql(
            desc = "The order of the list: by name (the default), or by a figure of the streams' state, either way."
        )]
        order_by: Option<crate::streams::inputs::StreamOrderBy>,
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
        let filter = crate::streams::inputs::stream_filter(name_contains, subject, tag, order_by);
        let page = console(ctx)
            .streams(&caller(ctx)?, &cluster_id, filter, &paging(first, after, last, before))
            .await?;
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
        #[graphql(desc = "The cluster and the new stream's configuration.")] input: CreateStreamInput,
    ) -> Result<CreateStreamPayload> {
        let Some(name) = input.config.name.clone() else {
            return Err(ApiError::validation("config.name: give the stream a name").into());
        };
        let mut full = StreamConfig::named(name);
        input.config.apply_to(&mut full)?;
        let caller = caller(ctx)?;
        let stream = console(ctx).create_stream(&caller, &input.cluster_id, full).await?;
        Ok(CreateStreamPayload {
            stream: StreamObj(stream),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Changes a stream's configuration; fields left out keep their value. Fields the
    /// server cannot change (storage, retention to or from workqueue, mirror) are refused.
    /// Needs the operator role. Errors: `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `CONFLICT`
    /// (a concurrent change), `UNAVAILABLE`.
    async fn update_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The stream and the fields to change.")] input: UpdateStreamInput,
    ) -> Result<UpdateStreamPayload> {
        let (c, caller) = (console(ctx), caller(ctx)?);
        let name = &input.name;
        super::inputs::require_change(&input.config, "name", "description, subjects, maxAge or maxBytes")?;
        let mut full = c.stream(&caller, &input.cluster_id, name)?.view.config;
        if input.config.name.as_ref().is_some_and(|n| n != name) {
            return Err(ApiError::validation("config.name: a stream cannot be renamed; create a new stream").into());
        }
        input.config.apply_to(&mut full)?;
        let stream = c.update_stream(&caller, &input.cluster_id, name, full).await?;
        Ok(UpdateStreamPayload {
            stream: StreamObj(stream),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Deletes a stream and all its messages, and with them its consumers; repeat its name
    /// in `confirmName`. Cannot be undone. Needs the operator role. Errors: `VALIDATION`
    /// (the names differ), `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn delete_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The stream to delete, named twice.")] input: DeleteStreamInput,
    ) -> Result<DeleteStreamPayload> {
        let caller = caller(ctx)?;
        console(ctx)
            .delete_stream(&caller, &input.cluster_id, &input.name, input.confirm_name)
            .await?;
        Ok(DeleteStreamPayload {
            deleted: DeletedResource {
                cluster_id: input.cluster_id,
                name: input.name,
            },
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Removes messages: all, only those on `subject`, all but the newest `keep`, or those
    /// below `upToSequence`. Needs the operator role. Errors: `VALIDATION` (the stream
    /// denies purges, both `keep` and `upToSequence` given), `NOT_FOUND`, `FORBIDDEN`,
    /// `UNAVAILABLE`.
    async fn purge_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The stream and which of its messages to remove.")] input: PurgeStreamInput,
    ) -> Result<PurgeStreamPayload> {
        let request = PurgeRequest {
            filter: input.subject,
            keep: input.keep,
            seq: input.up_to_sequence,
        };
        let caller = caller(ctx)?;
        let purged = console(ctx)
            .purge_stream(&caller, &input.cluster_id, &input.name, request)
            .await?;
        Ok(PurgeStreamPayload {
            purged,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Seals a stream: no more messages, deletes or purges; cannot be undone. Sealing a
    /// sealed stream changes nothing. Needs the operator role. Errors: `NOT_FOUND`,
    /// `FORBIDDEN`, `VALIDATION` (the server refused), `UNAVAILABLE`.
    async fn seal_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The stream to seal.")] input: SealStreamInput,
    ) -> Result<SealStreamPayload> {
        let caller = caller(ctx)?;
        let stream = console(ctx)
            .seal_stream(&caller, &input.cluster_id, &input.name)
            .await?;
        Ok(SealStreamPayload {
            stream: StreamObj(stream),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Publishes a message into a stream and returns JetStream's acknowledgement. Give the
    /// payload as text or as base64, not both. The history records the subject, size,
    /// header names and a SHA-256 of the payload, never the payload. Needs the operator
    /// role. Errors: `VALIDATION` (a bad subject or header, a sealed stream, a refused
    /// message), `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn publish_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The stream, the subject, and the message.")] input: PublishMessageInput,
    ) -> Result<PublishMessagePayload> {
        let (c, caller) = (console(ctx), caller(ctx)?);
        c.stream(&caller, &input.cluster_id, &input.stream)?;
        let payload = match (input.payload, input.payload_base64) {
            (Some(_), Some(_)) => return Err(ApiError::validation("give payload or payloadBase64, not both").into()),
            (Some(t), None) => t.into_bytes(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|_| ApiError::validation("payloadBase64: not valid base64"))?,
            (None, None) => Vec::new(),
        };
        let headers = input.headers.into_iter().map(|h| (h.name, h.value)).collect();
        let message = c
            .publish(
                &caller,
                &input.cluster_id,
                &input.stream,
                input.subject,
                headers,
                payload,
            )
            .await?;
        Ok(PublishMessagePayload {
            ack: PublishAck {
                stream: input.stream,
                sequence: message.sequence,
                duplicate: message.duplicate,
            },
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Creates a durable consumer (pull, or push with a deliver subject); needs the operator
    /// role. Errors: `VALIDATION` (a bad field, or the server refused it), `CONFLICT` (the
    /// consumer exists), `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn create_consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The stream and the new consumer's configuration.")] input: CreateConsumerInput,
    ) -> Result<CreateConsumerPayload> {
        let (c, caller) = (console(ctx), caller(ctx)?);
        c.stream(&caller, &input.cluster_id, &input.stream)?;
        let Some(name) = input.config.durable_name.clone() else {
            return Err(ApiError::validation("config.durableName: give the consumer a durable name").into());
        };
        let mut full = ConsumerConfig::durable(name);
        input.config.apply_to(&mut full)?;
        let consumer = c
            .create_consumer(&caller, &input.cluster_id, &input.stream, full)
            .await?;
        Ok(CreateConsumerPayload {
            consumer: ConsumerObj(consumer),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Changes a consumer; fields left out keep their value. Where it starts, how it acks
    /// and replays, and push or pull cannot change. Needs the operator role. Errors:
    /// `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `CONFLICT` (a concurrent change), `UNAVAILABLE`.
    async fn update_consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The consumer and the fields to change.")] input: UpdateConsumerInput,
    ) -> Result<UpdateConsumerPayload> {
        let (c, caller) = (console(ctx), caller(ctx)?);
        let (cluster, stream, name) = (&input.cluster_id, &input.stream, &input.name);
        super::inputs::require_change(
            &input.config,
            "durableName",
            "description, ackWait, maxDeliver or filterSubjects",
        )?;
        let mut full = c.consumer(&caller, cluster, stream, name)?.view.config.get();
        if input.config.durable_name.as_ref().is_some_and(|n| n != name) {
            return Err(ApiError::validation("config.durableName: a consumer cannot be renamed").into());
        }
        input.config.apply_to(&mut full)?;
        let consumer = c.update_consumer(&caller, cluster, stream, name, full).await?;
        Ok(UpdateConsumerPayload {
            consumer: ConsumerObj(consumer),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Deletes a durable consumer and its delivery state; the stream's messages stay. Needs
    /// the operator role. Errors: `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn delete_consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The consumer to delete.")] input: DeleteConsumerInput,
    ) -> Result<DeleteConsumerPayload> {
        let caller = caller(ctx)?;
        console(ctx)
            .delete_consumer(&caller, &input.cluster_id, &input.stream, &input.name)
            .await?;
        Ok(DeleteConsumerPayload {
            deleted: DeletedResource {
                cluster_id: input.cluster_id,
                name: input.name,
            },
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Stops delivery until `until`, then delivery resumes by itself (nats-server 2.11+).
    /// Needs the operator role. Errors: `VALIDATION` (`until` not in the future, a server
    /// too old), `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn pause_consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The consumer and when it resumes.")] input: PauseConsumerInput,
    ) -> Result<PauseConsumerPayload> {
        let until = input.until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let caller = caller(ctx)?;
        let consumer = console(ctx)
            .pause_consumer(&caller, &input.cluster_id, &input.stream, &input.name, Some(until))
            .await?;
        Ok(PauseConsumerPayload {
            consumer: ConsumerObj(consumer),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Resumes a paused consumer now (nats-server 2.11+). Needs the operator role. Errors:
    /// `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `UNAVAILABLE`.
    async fn resume_consumer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The consumer to resume.")] input: ResumeConsumerInput,
    ) -> Result<ResumeConsumerPayload> {
        let caller = caller(ctx)?;
        let consumer = console(ctx)
            .pause_consumer(&caller, &input.cluster_id, &input.stream, &input.name, None)
            .await?;
        Ok(ResumeConsumerPayload {
            consumer: ConsumerObj(consumer),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }
}

input! {
    /// Creates a stream (mutation createStream).
    CreateStreamInput {
        /// The id of the cluster to create the stream on.
        cluster_id: ID,
        /// The stream's configuration; `name` is required, the rest takes JetStream's
        /// defaults.
        config: StreamConfigInput,
    }
}

payload! {
    /// What mutation createStream answers.
    CreateStreamPayload {
        /// The stream as created.
        stream: StreamObj,
    }
}

input! {
    /// Changes a stream's configuration (mutation updateStream).
    UpdateStreamInput {
        /// The id of the cluster the stream is on.
        cluster_id: ID,
        /// The name of the stream to change.
        name: String,
        /// The fields to change; `name`, if given, must be the stream's name.
        config: StreamConfigInput,
    }
}

payload! {
    /// What mutation updateStream answers.
    UpdateStreamPayload {
        /// The stream with its new configuration.
        stream: StreamObj,
    }
}

input! {
    /// Deletes a stream (mutation deleteStream).
    DeleteStreamInput {
        /// The id of the cluster the stream is on.
        cluster_id: ID,
        /// The name of the stream to delete.
        name: String,
        /// The stream's name again, to confirm.
        confirm_name: String,
    }
}

payload! {
    /// What mutation deleteStream answers: which stream is gone.
    DeleteStreamPayload {
        #[graphql(flatten)]
        deleted: DeletedResource,
    }
}

input! {
    /// Removes messages from a stream (mutation purgeStream).
    PurgeStreamInput {
        /// The id of the cluster the stream is on.
        cluster_id: ID,
        /// The name of the stream to purge.
        name: String,
        /// Only messages on this subject (wildcards allowed); left out, every subject.
        subject: Option<String>,
        /// Keep this many of the newest messages; not with `upToSequence`.
        keep: Option<u64>,
        /// Remove messages with a stream sequence below this one (not itself); not with
        /// `keep`.
        up_to_sequence: Option<u64>,
    }
}

payload! {
    /// What mutation purgeStream answers.
    PurgeStreamPayload {
        /// How many messages were removed.
        purged: u64,
    }
}

input! {
    /// Seals a stream (mutation sealStream).
    SealStreamInput {
        /// The id of the cluster the stream is on.
        cluster_id: ID,
        /// The name of the stream to seal.
        name: String,
    }
}

payload! {
    /// What mutation sealStream answers.
    SealStreamPayload {
        /// The stream, now sealed.
        stream: StreamObj,
    }
}

input! {
    /// Publishes a message into a stream (mutation publishMessage).
    PublishMessageInput {
        /// The id of the cluster the stream is on.
        cluster_id: ID,
        /// The name of the stream to publish into.
        stream: String,
        /// The subject to publish on: concrete (no wildcards) and one the stream stores.
        subject: String,
        /// NATS headers to send with the message, such as `Nats-Msg-Id`. Defaults to none.
        #[graphql(default)]
        headers: Vec<HeaderInput>,
        /// The payload as UTF-8 text; not with `payloadBase64`.
        payload: Option<String>,
        /// The payload as standard base64, for binary data; not with `payload`.
        payload_base64: Option<String>,
    }
}

payload! {
    /// What mutation publishMessage answers. `sequence` is the event that recorded the
    /// publish in the console's event stream; `ack.sequence` is the message's place in its
    /// own stream.
    PublishMessagePayload {
        /// JetStream's acknowledgement of the message.
        ack: PublishAck,
    }
}

input! {
    /// Creates a durable consumer (mutation createConsumer).
    CreateConsumerInput {
        /// The id of the cluster the stream is on.
        cluster_id: ID,
        /// The name of the stream to consume.
        stream: String,
        /// The consumer's configuration; `durableName` is required, the rest takes
        /// JetStream's defaults.
        config: ConsumerConfigInput,
    }
}

payload! {
    /// What mutation createConsumer answers.
    CreateConsumerPayload {
        /// The consumer as created.
        consumer: ConsumerObj,
    }
}

input! {
    /// Changes a consumer (mutation updateConsumer).
    UpdateConsumerInput {
        /// The id of the cluster the consumer is on.
        cluster_id: ID,
        /// The name of the stream the consumer reads.
        stream: String,
        /// The consumer's durable name.
        name: String,
        /// The fields to change; `durableName`, if given, must be the consumer's name.
        config: ConsumerConfigInput,
    }
}

payload! {
    /// What mutation updateConsumer answers.
    UpdateConsumerPayload {
        /// The consumer with its new configuration.
        consumer: ConsumerObj,
    }
}

input! {
    /// Deletes a durable consumer (mutation deleteConsumer).
    DeleteConsumerInput {
        /// The id of the cluster the consumer is on.
        cluster_id: ID,
        /// The name of the stream the consumer reads.
        stream: String,
        /// The consumer's durable name.
        name: String,
    }
}

payload! {
    /// What mutation deleteConsumer answers: which consumer is gone.
    DeleteConsumerPayload {
        #[graphql(flatten)]
        deleted: DeletedResource,
    }
}

input! {
    /// Pauses a consumer (mutation pauseConsumer).
    PauseConsumerInput {
        /// The id of the cluster the consumer is on.
        cluster_id: ID,
        /// The name of the stream the consumer reads.
        stream: String,
        /// The consumer's durable name.
        name: String,
        /// When delivery resumes; must be in the future.
        until: DateTime<Utc>,
    }
}

payload! {
    /// What mutation pauseConsumer answers.
    PauseConsumerPayload {
        /// The consumer, paused.
        consumer: ConsumerObj,
    }
}

input! {
    /// Resumes a paused consumer (mutation resumeConsumer).
    ResumeConsumerInput {
        /// The id of the cluster the consumer is on.
        cluster_id: ID,
        /// The name of the stream the consumer reads.
        stream: String,
        /// The consumer's durable name.
        name: String,
    }
}

payload! {
    /// What mutation resumeConsumer answers.
    ResumeConsumerPayload {
        /// The consumer, delivering again.
        consumer: ConsumerObj,
    }
}
