//! The console's own streams and buckets on its home NATS (the event stream, the views,
//! leases, limits, metrics, dead letters...), each with the home's number of replicas: one
//! on a single server, three on a 3-node cluster, so that losing a node loses nothing.
//!
//! Every one is created the same way: opened when it exists, created when missing (another
//! replica creating it at the same moment is fine), and raised to the wanted replicas when
//! it has fewer (a home that grew into a cluster). Replicas are never lowered here: that
//! drops copies, and is for an operator to decide.

use async_nats::jetstream::{self, kv, stream};

/// Where the console keeps its own state, and how many copies of it.
#[derive(Clone)]
pub struct HomeStorage {
    js: jetstream::Context,
    replicas: usize,
}

impl HomeStorage {
    pub fn new(client: async_nats::Client, replicas: usize) -> Self {
        Self {
            js: jetstream::new(client),
            replicas: replicas.max(1),
        }
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Opens the stream `config.name`, or creates it with `config` and the home's replicas.
    pub async fn stream(&self, config: stream::Config) -> Result<stream::Stream, String> {
        let name = config.name.clone();
        match self.js.get_stream(&name).await {
            Ok(s) => self.raise(s).await,
            Err(_) => {
                let created = self
                    .js
                    .create_stream(stream::Config {
                        num_replicas: self.replicas,
                        ..config
                    })
                    .await;
                match created {
                    Ok(s) => Ok(s),
                    Err(e) => match self.js.get_stream(&name).await {
                        Ok(s) => self.raise(s).await,
                        Err(_) => Err(self.refusal("stream", &name, e)),
                    },
                }
            }
        }
    }

    /// Creates the stream `config.name` or brings its settings to `config` (keeping at
    /// least the replicas it has).
    pub async fn stream_updated(&self, config: stream::Config) -> Result<stream::Stream, String> {
        let name = config.name.clone();
        let replicas = match self.js.get_stream(&name).await {
            Ok(mut s) => match s.info().await {
                Ok(info) => info.config.num_replicas.max(self.replicas),
                Err(_) => self.replicas,
            },
            Err(_) => self.replicas,
        };
        let config = stream::Config {
            num_replicas: replicas,
            ..config
        };
        self.js
            .create_or_update_stream(config)
            .await
            .map_err(|e| self.refusal("stream", &name, e))?;
        self.js.get_stream(&name).await.map_err(|e| e.to_string())
    }

    /// Opens the bucket `config.bucket`, or creates it with `config` and the home's replicas.
    pub async fn bucket(&self, config: kv::Config) -> Result<kv::Store, String> {
        let bucket = config.bucket.clone();
        let open = |kv: kv::Store| async move {
            let s = self
                .js
                .get_stream(format!("KV_{bucket}"))
                .await
                .map_err(|e| e.to_string())?;
            self.raise(s).await?;
            Ok::<_, String>(kv)
        };
        match self.js.get_key_value(&config.bucket).await {
            Ok(kv) => open(kv).await,
            Err(_) => {
                let name = config.bucket.clone();
                let created = self
                    .js
                    .create_key_value(kv::Config {
                        num_replicas: self.replicas,
                        ..config
                    })
                    .await;
                match created {
                    Ok(kv) => Ok(kv),
                    Err(e) => match self.js.get_key_value(&name).await {
                        Ok(kv) => open(kv).await,
                        Err(_) => Err(self.refusal("bucket", &name, e)),
                    },
                }
            }
        }
    }

    /// Raises `s` to the home's replicas when it has fewer.
    async fn raise(&self, mut s: stream::Stream) -> Result<stream::Stream, String> {
        let info = s.info().await.map_err(|e| e.to_string())?;
        if info.config.num_replicas >= self.replicas {
            return Ok(s);
        }
        let name = info.config.name.clone();
        let from = info.config.num_replicas;
        let config = stream::Config {
            num_replicas: self.replicas,
            ..info.config.clone()
        };
        self.js
            .update_stream(config)
            .await
            .map_err(|e| self.refusal("stream", &name, e))?;
        tracing::info!(stream = %name, from, to = self.replicas, "raised the replicas of a console stream");
        self.js.get_stream(&name).await.map_err(|e| e.to_string())
    }

    fn refusal(&self, what: &str, name: &str, e: impl std::fmt::Display) -> String {
        let hint = if self.replicas > 1 {
            format!(
                " (with {} replicas: the home NATS needs at least {} JetStream servers; pass --home-replicas 1 on a single server)",
                self.replicas, self.replicas
            )
        } else {
            String::new()
        };
        format!("cannot create the {what} {name} on the home NATS: {e}{hint}")
    }
}
