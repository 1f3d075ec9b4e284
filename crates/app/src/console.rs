//! The application: [`Console`] holds the command side (one repository per aggregate),
//! the read side (the views), the fleet and the keys, and callers ask it for use cases
//! (the `impl Console` blocks of this crate's modules) rather than reach into its parts.
//!
//! [`Console::start`] prepares every view, wires the repositories to their services and
//! hands back the long-running workers (projections, audit writer, session sweeper,
//! advisory watcher) for the caller to run.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jsc_domain::alerts;
use jsc_domain::cluster::Cluster;
use jsc_domain::consumer::Consumer;
use jsc_domain::identity::{ApiKey, Invitation, Organization, Session, User};
use jsc_domain::stream::Stream;
use jsc_eventstore::claims::ClaimRules;
use jsc_eventstore::{JetStreamEventStore, Repository};
use jsc_fleet::{Fleet, Pool};
use jsc_projections::alerts as alv;
use jsc_projections::identity::{ApiKeyView, InvitationView, OrganizationView, SessionView, UserView};
use jsc_projections::{ClusterView, ConsumerView, Projection, StreamView, WithProjection};
use jsc_projector::{KvProjection, ProjectionStatus, Projector, Runnable, ViewCache};
use tokio_util::sync::CancellationToken;

use crate::adapters::{ClusterServicesImpl, ManagedClusters};
use crate::auth::{Auth, AuthSettings, KEY_USAGE_BUCKET};
use crate::live::LiveState;

/// The read models, kept in memory from their KV buckets.
#[derive(Clone)]
pub(crate) struct Views {
    pub clusters: ViewCache<ClusterView>,
    pub streams: ViewCache<StreamView>,
    pub consumers: ViewCache<ConsumerView>,
    pub users: ViewCache<UserView>,
    pub organizations: ViewCache<OrganizationView>,
    pub invitations: ViewCache<InvitationView>,
    pub sessions: ViewCache<SessionView>,
    pub api_keys: ViewCache<ApiKeyView>,
    pub alert_rules: ViewCache<alv::AlertRuleView>,
    pub channels: ViewCache<alv::ChannelView>,
    pub alert_policies: ViewCache<alv::AlertPolicyView>,
    pub silences: ViewCache<alv::SilenceView>,
    pub alerts: ViewCache<alv::AlertView>,
}

/// One repository per aggregate type.
#[derive(Clone)]
pub(crate) struct Repositories {
    pub clusters: Arc<Repository<Cluster>>,
    pub streams: Arc<Repository<Stream>>,
    pub consumers: Arc<Repository<Consumer>>,
    pub users: Arc<Repository<User>>,
    pub organizations: Arc<Repository<Organization>>,
    pub invitations: Arc<Repository<Invitation>>,
    pub sessions: Arc<Repository<Session>>,
    pub api_keys: Arc<Repository<ApiKey>>,
    pub alert_rules: Arc<Repository<alerts::AlertRule>>,
    pub channels: Arc<Repository<alerts::NotificationChannel>>,
    pub alert_policies: Arc<Repository<alerts::AlertPolicy>>,
    pub silences: Arc<Repository<alerts::Silence>>,
    pub alerts: Arc<Repository<alerts::Alert>>,
}

/// The application. Cheap to clone (one `Arc`); holds nothing another replica could not
/// rebuild from NATS (login limits excepted, see the scale-out issue).
#[derive(Clone)]
pub struct Console(Arc<Parts>);

impl std::ops::Deref for Console {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// What the console is made of; its fields are this crate's own (callers outside it ask
/// [`Console`] for use cases).
pub struct Parts {
    pub(crate) home: async_nats::Client,
    pub(crate) store: JetStreamEventStore,
    pub(crate) repos: Repositories,
    pub(crate) views: Views,
    pub(crate) auth: Auth,
    pub(crate) live: Arc<LiveState>,
    pub(crate) audit: jsc_projections::audit::AuditReader,
    /// Persisted query texts by SHA-256.
    pub(crate) persisted: async_nats::jetstream::kv::Store,
    pub(crate) fleet: Fleet,
    pub(crate) projector: Projector,
    /// How long a mutation waits for the read model to show its change.
    pub(crate) view_wait: Duration,
    /// Whether commands wait for their views (read-your-writes); off for a console opened
    /// by a command-line tool that runs no projections.
    pub(crate) wait_for_views: bool,
    /// Republish jobs running (and lately ended) in this process.
    pub(crate) jobs: crate::republish::Jobs,
    /// Protobuf decoders, compiled once each.
    pub(crate) decoders: crate::messages::Decoders,
    /// The metrics stream and the latest sample of every cluster.
    pub(crate) monitoring: crate::monitoring::Monitoring,
    /// The roles one replica performs at a time, and this replica's id among them.
    pub(crate) leases: crate::lease::Leases,
    /// Notifications: the sender, the delivery log, what each channel was told.
    pub(crate) alerting: crate::alerting::Alerting,
}

/// What the console is started with.
pub struct Options {
    pub keys: jsc_secrets::Keyring,
    pub secrets: jsc_secrets::SecretBox,
    pub auth: AuthSettings,
    /// How long a mutation waits for the read model to show its change.
    pub view_wait: Duration,
    /// Whether commands wait for their views: true for a serving console; false for a
    /// command-line tool that opens the console without running its workers.
    pub wait_for_views: bool,
    /// How long live state (message counts, lag) read from a cluster is reused.
    pub live_ttl: Duration,
    /// How often sessions past their expiry are ended.
    pub session_sweep_interval: Duration,
    /// How often every managed cluster is compared with the history.
    pub reconcile_interval: Duration,
    /// Most outside changes waiting to be recorded per cluster; past it a reconcile is
    /// asked for instead.
    pub outside_changes_queue: usize,
    /// The object store: the Parquet audit table (`audit/`) and the metrics roll-ups
    /// (`metrics/`) live there. How the audit table is written:
    pub audit_store: Arc<dyn object_store::ObjectStore>,
    pub audit_max_rows: usize,
    /// Bytes of buffered event text at which a file is written whatever its rows
    /// ([`jsc_projections::audit::MAX_BUFFERED_BYTES`] by default).
    pub audit_max_bytes: usize,
    pub audit_max_age: Duration,
    pub audit_compact_after: usize,
    /// How the clusters are sampled, and how long raw samples are kept.
    pub monitoring: crate::monitoring::MonitoringOptions,
    /// How long a role's lease outlives its holder's last renewal (see [`crate::lease`]):
    /// about how long a role stays undone after the replica performing it dies.
    pub lease_ttl: Duration,
    /// How alert notifications are sent and retried.
    pub alerting: crate::alerting::AlertingOptions,
    /// The home connection's reconnects (see [`jsc_projector::Reconnects`]); a default one
    /// for a connection that never says.
    pub home_reconnects: jsc_projector::Reconnects,
}

/// A worker performing `role` on the one replica that holds its lease (named after it).
fn leased<F, Fut>(leases: &crate::lease::Leases, role: &'static str, shutdown: &CancellationToken, work: F) -> Worker
where
    F: FnMut(CancellationToken) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (leases, token) = (leases.clone(), shutdown.clone());
    Worker {
        name: role,
        run: Box::pin(async move {
            leases.run(role, token, work).await;
            Ok(())
        }),
    }
}

/// Runs `work` again after it fails, backing off from 100 ms to 30 s, until `token` fires:
/// a role keeps going through a NATS outage instead of stopping for good.
async fn restarting<F, Fut, E>(what: &'static str, token: CancellationToken, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match work().await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(role = what, error = %e, retry_in = ?backoff, "stopped with an error; starting it again")
            }
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// A long-running part of the console, to be run until the shutdown token fires.
pub struct Worker {
    pub name: &'static str,
    pub run: BoxFuture<'static, Result<(), BoxError>>,
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot prepare the view {view}")]
    View {
        view: &'static str,
        #[source]
        source: jsc_projector::Error,
    },
    #[error("cannot create the API key usage bucket")]
    KeyUsage(#[source] jsc_projector::Error),
    #[error("cannot create the audit writer's state bucket")]
    AuditState(#[source] jsc_projector::Error),
    #[error("cannot create the persisted queries bucket")]
    PersistedQueries(#[source] jsc_projector::Error),
    #[error("cannot open the leases bucket console_leases: {0}")]
    Leases(String),
    #[error("cannot create the dead letters stream: {0}")]
    DeadLetters(String),
    #[error("cannot open the sign-in limits bucket: {0}")]
    LoginLimits(String),
    #[error("{0}")]
    Alerting(String),
    #[error("{0}")]
    Metrics(#[from] jsc_metrics::store::StoreError),
}

struct Prepare<'a> {
    projector: &'a Projector,
    js: &'a async_nats::jetstream::Context,
    shutdown: &'a CancellationToken,
    runnables: &'a mut Vec<Runnable>,
    reconnects: &'a jsc_projector::Reconnects,
}

impl Prepare<'_> {
    /// Prepares a projection, adds it to those the projector runs, and returns the view
    /// readers use.
    async fn view<P: KvProjection>(&mut self, projection: P) -> Result<ViewCache<P::View>, StartError> {
        let name = projection.name();
        let err = |source| StartError::View { view: name, source };
        self.projector.prepare(&projection).await.map_err(err)?;
        let (bucket, order) = (projection.bucket(), projection.order());
        self.runnables.push(projection.into());
        ViewCache::start_ordered(
            self.js.clone(),
            &bucket,
            1,
            order,
            Some(self.reconnects.clone()),
            self.shutdown.clone(),
        )
        .await
        .map_err(err)
    }
}

impl Console {
    /// Prepares the views and wires the console on `home`, whose event store is `store`.
    /// Returns the console and the workers to run (the caller spawns them).
    pub async fn start(
        home: async_nats::Client,
        store: JetStreamEventStore,
        options: Options,
        shutdown: &CancellationToken,
    ) -> Result<(Self, Vec<Worker>), StartError> {
        // The console's own metrics are recorded from here on.
        jsc_metrics::prom::console_recorder();
        let stream_name = store.config().stream.clone();
        // The console's own streams and buckets get as many copies as the event stream.
        let storage = jsc_eventstore::HomeStorage::new(home.clone(), store.config().replicas);
        let projector = Projector::new(home.clone(), store.config())
            .with_replicas(storage.replicas())
            .with_reconnects(options.home_reconnects.clone());
        let js = async_nats::jetstream::new(home.clone());
        let mut runnables = Vec::new();
        let mut p = Prepare {
            projector: &projector,
            js: &js,
            shutdown,
            runnables: &mut runnables,
            reconnects: &options.home_reconnects,
        };
        use jsc_projections::identity as idv;
        let views = Views {
            clusters: p.view(jsc_projections::ClustersProjection).await?,
            streams: p.view(jsc_projections::StreamsProjection).await?,
            consumers: p.view(jsc_projections::ConsumersProjection).await?,
            users: p.view(idv::USERS).await?,
            organizations: p.view(idv::ORGANIZATIONS).await?,
            invitations: p.view(idv::INVITATIONS).await?,
            sessions: p.view(idv::SESSIONS).await?,
            api_keys: p.view(idv::API_KEYS).await?,
            alert_rules: p.view(alv::ALERT_RULES).await?,
            channels: p.view(alv::CHANNELS).await?,
            alert_policies: p.view(alv::ALERT_POLICIES).await?,
            silences: p.view(alv::SILENCES).await?,
            alerts: p.view(alv::ALERTS).await?,
        };
        let credential_changes = crate::auth::credential_changes(&views, shutdown.clone());
        let key_usage = jsc_projector::ensure_bucket(&js, KEY_USAGE_BUCKET, storage.replicas())
            .await
            .map_err(StartError::KeyUsage)?;
        let limiter = crate::auth::LoginLimiter::shared(&storage)
            .await
            .map_err(StartError::LoginLimits)?;
        let persisted =
            jsc_projector::ensure_bucket(&js, crate::persisted::PERSISTED_QUERIES_BUCKET, storage.replicas())
                .await
                .map_err(StartError::PersistedQueries)?;
        // Made here rather than by the audit writer when it first runs (under a lease,
        // perhaps on another replica): every bucket has its copies from the start.
        jsc_projector::ensure_bucket(&js, jsc_projections::audit::STATE_BUCKET, storage.replicas())
            .await
            .map_err(StartError::AuditState)?;
        crate::deadletters::ensure_stream(&storage)
            .await
            .map_err(StartError::DeadLetters)?;
        let metrics_stream = jsc_metrics::store::ensure_stream(&storage, options.monitoring.raw).await?;
        let leases = crate::lease::Leases::open(&storage, options.lease_ttl, crate::lease::replica_id())
            .await
            .map_err(StartError::Leases)?;
        let alerting = crate::alerting::open(&storage, options.alerting)
            .await
            .map_err(StartError::Alerting)?;
        let mut workers = Vec::new();
        {
            // One consumer of the event stream feeds every view, on one replica: the others
            // read the views it writes.
            let runner = projector.clone();
            workers.push(leased(&leases, crate::lease::PROJECTIONS, shutdown, move |t| {
                let (runner, runnables) = (runner.clone(), runnables.clone());
                restarting(crate::lease::PROJECTIONS, t.clone(), move || {
                    let (runner, runnables, t) = (runner.clone(), runnables.clone(), t.clone());
                    async move { runner.run_all(runnables, t).await }
                })
            }));
        }
        let fleet = Fleet::new(options.secrets);
        let services = Arc::new(ClusterServicesImpl {
            view: views.clusters.clone(),
            fleet: fleet.clone(),
        });
        let clusters = Arc::new(
            Repository::<Cluster>::new(store.clone(), services).with_claims(ClaimRules {
                keys: Cluster::unique_keys,
                taken: Cluster::key_taken,
            }),
        );
        let managed = Arc::new(ManagedClusters {
            clusters: clusters.clone(),
            pool: Arc::new(Pool::new(fleet.clone())),
        });
        let repos = Repositories {
            clusters,
            streams: Arc::new(
                Repository::new(
                    store.clone(),
                    managed.clone() as Arc<dyn jsc_domain::stream::StreamServices>,
                )
                .with_side_effects(),
            ),
            consumers: Arc::new(
                Repository::new(
                    store.clone(),
                    managed.clone() as Arc<dyn jsc_domain::consumer::ConsumerServices>,
                )
                .with_side_effects(),
            ),
            users: Arc::new(Repository::new(store.clone(), ()).with_claims(ClaimRules {
                keys: User::unique_keys,
                taken: User::key_taken,
            })),
            organizations: Arc::new(Repository::new(store.clone(), ())),
            invitations: Arc::new(Repository::new(store.clone(), ())),
            sessions: Arc::new(Repository::new(store.clone(), ())),
            api_keys: Arc::new(Repository::new(store.clone(), ())),
            alert_rules: Arc::new(Repository::new(store.clone(), ())),
            channels: Arc::new(Repository::new(store.clone(), ())),
            alert_policies: Arc::new(Repository::new(store.clone(), ())),
            silences: Arc::new(Repository::new(store.clone(), ())),
            alerts: Arc::new(Repository::new(store.clone(), ())),
        };
        let console = Console(Arc::new(Parts {
            home: home.clone(),
            store: store.clone(),
            repos,
            views,
            auth: Auth {
                keys: options.keys,
                settings: options.auth,
                limiter: Arc::new(limiter),
                key_usage: Some(key_usage),
                last_touch: Default::default(),
                registration: Default::default(),
                credential_changes,
            },
            live: Arc::new(LiveState::new(managed, options.live_ttl)),
            audit: jsc_projections::audit::AuditReader {
                client: home.clone(),
                stream: stream_name.clone(),
                store: options.audit_store.clone(),
            },
            persisted,
            fleet,
            projector,
            view_wait: options.view_wait,
            wait_for_views: options.wait_for_views,
            jobs: Default::default(),
            decoders: Default::default(),
            monitoring: crate::monitoring::Monitoring {
                latest: Default::default(),
                rollups: Arc::new(jsc_metrics::rollup::Rollups::new(
                    options.audit_store.clone(),
                    metrics_stream.clone(),
                    options.monitoring.raw.max_age,
                    options.monitoring.rollups,
                )),
                stream: metrics_stream,
                // About 100 MB at most (300,000 consumers' figures), as far back as the raw
                // samples are kept: a query reads raw samples wherever the roll-ups do not
                // reach yet (an hour and more behind, longer after an outage).
                tail: jsc_metrics::store::TailCache::new(300_000, options.monitoring.raw.max_age.as_millis() as i64),
                options: options.monitoring,
            },
            leases: leases.clone(),
            alerting,
        }));
        {
            // On a home cluster that loses a node, the readers following a stream led there
            // start over as soon as another leads it.
            let (reconnects, client, token) = (options.home_reconnects.clone(), home.clone(), shutdown.clone());
            workers.push(Worker {
                name: "leader-elections",
                run: Box::pin(async move {
                    reconnects.on_new_leaders(client, token).await;
                    Ok(())
                }),
            });
        }
        {
            let latest = console.monitoring.latest.clone();
            let js = async_nats::jetstream::new(console.home.clone());
            let token = shutdown.clone();
            workers.push(Worker {
                name: "metrics-latest",
                run: Box::pin(async move {
                    latest.run(js, token).await;
                    Ok(())
                }),
            });
        }
        // One replica samples the clusters, and one writes the roll-ups (a lease each).
        if console.monitoring.options.collect {
            let c = console.clone();
            workers.push(leased(&leases, crate::lease::COLLECTOR, shutdown, move |t| {
                crate::monitoring::run_collector(c.clone(), t)
            }));
        } else {
            tracing::info!("the metrics collector is off (--no-metrics-collector): this console samples no cluster");
        }
        workers.push(console.alerting_worker(shutdown.clone()));
        {
            let rollups = console.monitoring.rollups.clone();
            workers.push(leased(&leases, crate::lease::ROLLUPS, shutdown, move |t| {
                let rollups = rollups.clone();
                async move { rollups.run(t).await }
            }));
        }
        {
            let writer = jsc_projections::audit::AuditWriter {
                client: home,
                stream: stream_name,
                store: options.audit_store,
                max_rows: options.audit_max_rows,
                max_bytes: options.audit_max_bytes,
                max_age: options.audit_max_age,
                compact_after: options.audit_compact_after,
                replicas: storage.replicas(),
            };
            // One writer: replicas share the audit store (an object store URL), and its
            // files are named by the sequences they hold.
            workers.push(leased(&leases, crate::lease::AUDIT_WRITER, shutdown, move |t| {
                let writer = writer.clone();
                restarting(crate::lease::AUDIT_WRITER, t.clone(), move || {
                    writer.clone().run(t.clone())
                })
            }));
        }
        {
            let c = console.clone();
            let every = options.session_sweep_interval;
            workers.push(leased(&leases, crate::lease::SESSION_SWEEPER, shutdown, move |t| {
                let c = c.clone();
                async move { c.sweep_expired_sessions(every, t).await }
            }));
        }
        {
            // One replica follows each managed cluster's advisories and reconciles it:
            // an outside change is recorded once.
            let c = console.clone();
            let (every, queue) = (options.reconcile_interval, options.outside_changes_queue);
            workers.push(leased(&leases, crate::lease::WATCHER, shutdown, move |t| {
                crate::watch::run(c.clone(), every, queue, t)
            }));
        }
        Ok((console, workers))
    }

    /// The console's own NATS connection.
    pub fn home(&self) -> &async_nats::Client {
        &self.home
    }

    /// The event store every command commits to.
    pub fn event_store(&self) -> &JetStreamEventStore {
        &self.store
    }

    /// Where every projection stands (for `/readyz`).
    pub async fn projections(&self) -> Result<Vec<ProjectionStatus>, jsc_projector::Error> {
        struct Status<'a>(&'a Projector);
        impl<'a> WithProjection for Status<'a> {
            type Output = BoxFuture<'a, Result<ProjectionStatus, jsc_projector::Error>>;
            fn call<P: KvProjection>(self, p: P) -> Self::Output {
                Box::pin(async move { self.0.status(&p).await })
            }
        }
        let mut out = Vec::with_capacity(Projection::ALL.len());
        for p in Projection::ALL {
            out.push(p.with(Status(&self.projector)).await?);
        }
        Ok(out)
    }

    /// Ready: the home NATS connected and every view caught up with the event stream.
    pub async fn readiness(&self) -> Readiness {
        let nats = self.home.connection_state() == async_nats::connection::State::Connected;
        if !nats {
            return Readiness {
                nats,
                projections: Vec::new(),
                ready: false,
            };
        }
        match self.projections().await {
            Ok(list) => Readiness {
                nats,
                ready: list.iter().all(|p| p.pending == 0),
                projections: list,
            },
            Err(e) => {
                tracing::warn!(error = %e, "readiness: projection status unavailable");
                Readiness {
                    nats,
                    projections: Vec::new(),
                    ready: false,
                }
            }
        }
    }

    /// The signing keyring (the HTTP edge checks download links with it).
    pub fn keys(&self) -> &jsc_secrets::Keyring {
        &self.auth.keys
    }
}

/// What `/readyz` reports.
pub struct Readiness {
    pub ready: bool,
    pub nats: bool,
    pub projections: Vec<ProjectionStatus>,
}

/// What tools and tests do with any one view, whatever its type.
trait AnyView: Send + Sync {
    fn len(&self) -> usize;
    fn wait_for(&self, seq: u64, timeout: Duration) -> BoxFuture<'_, bool>;
    fn changed(&self) -> futures::stream::BoxStream<'static, ()>;
}

impl<V> AnyView for ViewCache<V>
where
    V: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn len(&self) -> usize {
        ViewCache::len(self)
    }

    fn wait_for(&self, seq: u64, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(ViewCache::wait_for(self, seq, timeout))
    }

    fn changed(&self) -> futures::stream::BoxStream<'static, ()> {
        use futures::StreamExt;
        crate::changes::view_changes(self, "view").map(|_| ()).boxed()
    }
}

impl Views {
    /// The view of `projection`: the one place the list meets the typed views.
    fn of(&self, projection: Projection) -> &dyn AnyView {
        match projection {
            Projection::Clusters => &self.clusters,
            Projection::Streams => &self.streams,
            Projection::Consumers => &self.consumers,
            Projection::Users => &self.users,
            Projection::Organizations => &self.organizations,
            Projection::Invitations => &self.invitations,
            Projection::Sessions => &self.sessions,
            Projection::ApiKeys => &self.api_keys,
            Projection::AlertRules => &self.alert_rules,
            Projection::NotificationChannels => &self.channels,
            Projection::AlertPolicies => &self.alert_policies,
            Projection::Silences => &self.silences,
            Projection::Alerts => &self.alerts,
        }
    }
}

impl Console {
    /// Waits until the view of `projection` reflects stream sequence `seq` (for tools and
    /// tests that wrote around the API); false after `timeout`.
    pub async fn wait_for_view(&self, projection: Projection, seq: u64, timeout: Duration) -> bool {
        self.views.of(projection).wait_for(seq, timeout).await
    }

    /// Entries in the view of `projection`.
    pub fn view_len(&self, projection: Projection) -> usize {
        self.views.of(projection).len()
    }

    /// One item per change the view of `projection` applies from now on.
    pub fn view_changed(&self, projection: Projection) -> futures::stream::BoxStream<'static, ()> {
        self.views.of(projection).changed()
    }
}
