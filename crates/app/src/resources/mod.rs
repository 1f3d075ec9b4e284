//! Streams and consumers on managed clusters: configuration and history from the views,
//! live state from the clusters, changes as commands on the stream and consumer aggregates.

mod consumers;
mod streams;

pub(crate) use streams::{SourceKey, StateKey};
pub use streams::{StreamFilter, StreamOrder};

use jsc_domain::consumer::{ConsumerCommand, ConsumerConfig, consumer_id};
use jsc_domain::stream::{ChangeOrigin, Seen};
use jsc_eventstore::CommandContext;

use crate::Console;

impl Console {
    /// Records what the server now says about one consumer (created, changed or gone
    /// outside the console, or taken with its stream); the stream sequence committed, if
    /// anything changed. `seen`: what is known of it besides its server.
    pub(crate) async fn observe_consumer(
        &self,
        cluster_id: &str,
        stream: &str,
        name: &str,
        origin: ChangeOrigin,
        seen: Seen<ConsumerConfig>,
        ctx: &CommandContext,
    ) -> Option<u64> {
        let id = consumer_id(cluster_id, stream, name);
        // A creation no view holds yet is recorded without reading a history first.
        let new = matches!(seen, Seen::Answer(_))
            && !self
                .views
                .consumers
                .contains(&jsc_projections::consumer_key(cluster_id, stream, name));
        let cmd = ConsumerCommand::Observe {
            cluster_id: cluster_id.to_string(),
            stream: stream.to_string(),
            name: name.to_string(),
            origin,
            seen,
        };
        match self.repos.consumers.execute_as_new(&id, cmd, ctx, new).await {
            Ok(done) => Some(done.stream_sequence),
            Err(e) => {
                tracing::warn!(cluster = %cluster_id, %stream, consumer = %name, error = %e, "could not record a consumer change");
                None
            }
        }
    }

    /// A stream that is gone takes its consumers with it: records that in each consumer's
    /// history. The one place this rule lives, for deletes from the console and from
    /// outside it. `stream_gone`: the stream's own command, just before, found it gone (or
    /// deleted it), so its consumers are recorded gone without a read of each; otherwise
    /// each is read. Returns the last stream sequence committed.
    pub(crate) async fn observe_consumers_of(
        &self,
        cluster_id: &str,
        stream: &str,
        stream_gone: bool,
        origin: ChangeOrigin,
        ctx: &CommandContext,
    ) -> u64 {
        let seen = || match stream_gone {
            true => Seen::GoneWithStream,
            false => Seen::Nothing,
        };
        let mut last = 0;
        for c in self
            .views
            .consumers
            .with_prefix(&jsc_projections::consumers_prefix(cluster_id, stream))
        {
            if let Some(seq) = self
                .observe_consumer(cluster_id, stream, &c.view.name, origin.clone(), seen(), ctx)
                .await
            {
                last = last.max(seq);
            }
        }
        last
    }
}
