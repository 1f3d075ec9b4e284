//! Stream use cases: lists and lookups from the streams view, live state from the cluster,
//! and every change as a command on the stream aggregate.

use std::sync::Arc;

use jsc_domain::identity::Role;
use jsc_domain::stream::{
    ChangeOrigin, PublishedMessage, PurgeRequest, ServiceError, Stream, StreamCommand, StreamConfig, StreamEvent,
    stream_id,
};
use jsc_fleet::admin::StreamInfo;
use jsc_projections::{ConsumerView, StreamView, consumers_group, stream_key, streams_group};
use jsc_projector::Versioned;

use crate::paging::{List, MAX_PAGE, Page, Paging};
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, Result};

/// A cluster's streams to list.
#[derive(Default)]
pub struct StreamFilter {
    /// Part of the name, case-insensitive.
    pub name_contains: Option<String>,
    /// A subject the stream stores (overlapping wildcards count).
    pub subject: Option<String>,
}

pub(crate) fn unavailable(e: ServiceError) -> Error {
    Error::unavailable(e.to_string())
}

impl Console {
    /// One stream, for a viewer of its cluster; `NOT_FOUND` otherwise.
    pub fn stream(&self, caller: &Caller, cluster_id: &str, name: &str) -> Result<Versioned<StreamView>> {
        self.require_cluster(&caller.principal, cluster_id, Role::Viewer)?;
        self.views
            .streams
            .get(&stream_key(cluster_id, name))
            .ok_or_else(|| Error::not_found(format!("no stream '{name}' on cluster '{cluster_id}'")))
    }

    /// Streams of a cluster by name, filtered, one page (at most [`MAX_PAGE`]).
    pub fn streams(
        &self,
        caller: &Caller,
        cluster_id: &str,
        filter: StreamFilter,
        paging: &Paging,
    ) -> Result<Page<Versioned<StreamView>>> {
        self.require_cluster(&caller.principal, cluster_id, Role::Viewer)?;
        self.stream_page(cluster_id, filter, paging)
    }

    /// [`Self::streams`] for a cluster the caller was already found to see.
    pub fn stream_page(
        &self,
        cluster_id: &str,
        filter: StreamFilter,
        paging: &Paging,
    ) -> Result<Page<Versioned<StreamView>>> {
        let needle = filter.name_contains.map(|n| n.to_lowercase());
        let keep = |s: &StreamView| {
            needle.as_ref().is_none_or(|n| s.name.to_lowercase().contains(n))
                && filter.subject.as_ref().is_none_or(|subj| {
                    s.config
                        .subjects
                        .iter()
                        .any(|own| jsc_domain::names::subjects_overlap(own, subj))
                })
        };
        let filtered = needle.is_some() || filter.subject.is_some();
        self.ordered_page(
            List::new("streams", cluster_id),
            &self.views.streams,
            &streams_group(cluster_id),
            filtered.then_some(&keep as &dyn Fn(&StreamView) -> bool),
            paging,
            MAX_PAGE,
        )
    }

    /// The durable consumers of a stream the caller was already found to see, by name, one
    /// page.
    pub fn consumers_of(
        &self,
        cluster_id: &str,
        stream: &str,
        paging: &Paging,
    ) -> Result<Page<Versioned<ConsumerView>>> {
        let scope = format!("{cluster_id}/{stream}");
        self.ordered_page(
            List::new("consumers", &scope),
            &self.views.consumers,
            &consumers_group(cluster_id, stream),
            None,
            paging,
            MAX_PAGE,
        )
    }

    /// Live: every stream of a cluster with its state, by name (shared for a moment).
    pub async fn live_streams(&self, cluster_id: &str) -> Result<Arc<crate::Sampled<StreamInfo>>> {
        self.live.streams(cluster_id).await.map_err(unavailable)
    }

    /// Creates a stream on a managed cluster (operator).
    pub async fn create_stream(
        &self,
        caller: &Caller,
        cluster_id: &str,
        config: StreamConfig,
    ) -> Result<Versioned<StreamView>> {
        let name = config.name.clone();
        let cmd = StreamCommand::Create {
            cluster_id: cluster_id.to_string(),
            config,
        };
        self.stream_command(caller, cluster_id, &name, cmd).await?;
        self.stream(caller, cluster_id, &name)
    }

    /// Changes a stream's configuration to `config` (operator).
    pub async fn update_stream(
        &self,
        caller: &Caller,
        cluster_id: &str,
        name: &str,
        config: StreamConfig,
    ) -> Result<Versioned<StreamView>> {
        self.stream(caller, cluster_id, name)?;
        if config.name != name {
            return Err(Error::validation(
                "name: a stream cannot be renamed; create a new stream",
            ));
        }
        self.stream_command(caller, cluster_id, name, StreamCommand::Update { config })
            .await?;
        self.stream(caller, cluster_id, name)
    }

    /// Deletes a stream and its messages (operator); `confirm_name` must repeat its name.
    /// Its consumers go with it, in their histories too.
    pub async fn delete_stream(
        &self,
        caller: &Caller,
        cluster_id: &str,
        name: &str,
        confirm_name: String,
    ) -> Result<()> {
        self.stream(caller, cluster_id, name)?;
        let ctx = self.authorize(Actor::Caller(caller), Access::Cluster(cluster_id, Role::Operator))?;
        self.run_in::<Stream>(
            &ctx,
            &stream_id(cluster_id, name),
            StreamCommand::Delete { confirm_name },
        )
        .await?;
        let last = self
            .observe_consumers_of(cluster_id, name, ChangeOrigin::Console, &ctx)
            .await;
        let _ = self.views.consumers.wait_for(last, self.view_wait).await;
        Ok(())
    }

    /// Removes messages (operator); how many were removed.
    pub async fn purge_stream(
        &self,
        caller: &Caller,
        cluster_id: &str,
        name: &str,
        request: PurgeRequest,
    ) -> Result<u64> {
        self.stream(caller, cluster_id, name)?;
        let committed = self
            .stream_command(caller, cluster_id, name, StreamCommand::Purge { request })
            .await?;
        Ok(committed
            .events
            .iter()
            .find_map(|e| match &e.payload {
                StreamEvent::Purged { purged, .. } => Some(*purged),
                _ => None,
            })
            .unwrap_or(0))
    }

    /// Seals a stream (operator): no more messages, deletes or purges.
    pub async fn seal_stream(&self, caller: &Caller, cluster_id: &str, name: &str) -> Result<Versioned<StreamView>> {
        self.stream(caller, cluster_id, name)?;
        self.stream_command(caller, cluster_id, name, StreamCommand::Seal)
            .await?;
        self.stream(caller, cluster_id, name)
    }

    /// Publishes a message into a stream (operator); the history records its subject, size,
    /// header names and payload digest, never the payload.
    pub async fn publish(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        subject: String,
        headers: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<PublishedMessage> {
        self.stream(caller, cluster_id, stream)?;
        let cmd = StreamCommand::Publish {
            subject,
            headers,
            payload,
        };
        let committed = self.stream_command(caller, cluster_id, stream, cmd).await?;
        committed
            .events
            .iter()
            .find_map(|e| match &e.payload {
                StreamEvent::MessagePublished { message, .. } => Some(message.clone()),
                _ => None,
            })
            .ok_or_else(|| Error::bug("publish recorded no event", caller.correlation_id()))
    }

    /// Removes one message from a stream (operator); `erase` overwrites its bytes too. The
    /// history records which message, never its content.
    pub async fn delete_message(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        sequence: u64,
        erase: bool,
    ) -> Result<u64> {
        self.stream(caller, cluster_id, stream)?;
        let committed = self
            .stream_command(
                caller,
                cluster_id,
                stream,
                StreamCommand::DeleteMessage { sequence, erase },
            )
            .await?;
        Ok(committed.stream_sequence)
    }

    pub(crate) async fn stream_command(
        &self,
        caller: &Caller,
        cluster_id: &str,
        name: &str,
        cmd: StreamCommand,
    ) -> Result<jsc_eventstore::Committed<Stream>> {
        self.run(
            Actor::Caller(caller),
            Access::Cluster(cluster_id, Role::Operator),
            &stream_id(cluster_id, name),
            cmd,
        )
        .await
    }
}
