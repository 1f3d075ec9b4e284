//! Consumer use cases: lookups from the consumers view, live state from the cluster, and
//! every change as a command on the consumer aggregate.

use std::sync::Arc;

use jsc_domain::consumer::{Consumer, ConsumerCommand, ConsumerConfig, consumer_id};
use jsc_domain::identity::Role;
use jsc_fleet::admin::ConsumerInfo;
use jsc_projections::{ConsumerView, consumer_key};
use jsc_projector::Versioned;

use super::streams::unavailable;
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, Result};

impl Console {
    /// One durable consumer, for a viewer of its cluster; `NOT_FOUND` otherwise.
    pub fn consumer(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        name: &str,
    ) -> Result<Versioned<ConsumerView>> {
        self.stream(caller, cluster_id, stream)?;
        self.views
            .consumers
            .get(&consumer_key(cluster_id, stream, name))
            .ok_or_else(|| Error::not_found(format!("no consumer '{name}' on stream '{stream}'")))
    }

    /// Live: every consumer of a stream with its state, by name (shared for a moment).
    pub async fn live_consumers(&self, cluster_id: &str, stream: &str) -> Result<Arc<crate::Sampled<ConsumerInfo>>> {
        self.live.consumers(cluster_id, stream).await.map_err(unavailable)
    }

    /// Creates a durable consumer (operator).
    pub async fn create_consumer(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<Versioned<ConsumerView>> {
        self.stream(caller, cluster_id, stream)?;
        let name = config.consumer_name().to_string();
        let cmd = ConsumerCommand::Create {
            cluster_id: cluster_id.to_string(),
            stream: stream.to_string(),
            config,
        };
        self.consumer_command(caller, cluster_id, stream, &name, cmd).await?;
        self.consumer(caller, cluster_id, stream, &name)
    }

    /// Changes a consumer to `config` (operator).
    pub async fn update_consumer(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        name: &str,
        config: ConsumerConfig,
    ) -> Result<Versioned<ConsumerView>> {
        self.consumer(caller, cluster_id, stream, name)?;
        if config.consumer_name() != name {
            return Err(Error::validation("durableName: a consumer cannot be renamed"));
        }
        self.consumer_command(caller, cluster_id, stream, name, ConsumerCommand::Update { config })
            .await?;
        self.consumer(caller, cluster_id, stream, name)
    }

    /// Deletes a consumer (operator).
    pub async fn delete_consumer(&self, caller: &Caller, cluster_id: &str, stream: &str, name: &str) -> Result<()> {
        self.consumer(caller, cluster_id, stream, name)?;
        self.consumer_command(caller, cluster_id, stream, name, ConsumerCommand::Delete)
            .await?;
        Ok(())
    }

    /// Stops delivery until `until` (RFC 3339; nats-server 2.11+), or resumes now with `None`.
    pub async fn pause_consumer(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        name: &str,
        until: Option<String>,
    ) -> Result<Versioned<ConsumerView>> {
        self.consumer(caller, cluster_id, stream, name)?;
        let cmd = match until {
            Some(until) => ConsumerCommand::Pause { until },
            None => ConsumerCommand::Resume,
        };
        self.consumer_command(caller, cluster_id, stream, name, cmd).await?;
        self.consumer(caller, cluster_id, stream, name)
    }

    async fn consumer_command(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        name: &str,
        cmd: ConsumerCommand,
    ) -> Result<()> {
        self.run::<Consumer>(
            Actor::Caller(caller),
            Access::Cluster(cluster_id, Role::Operator),
            &consumer_id(cluster_id, stream, name),
            cmd,
        )
        .await?;
        Ok(())
    }
}
