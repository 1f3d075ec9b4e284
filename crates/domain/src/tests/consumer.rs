//! The consumer aggregate's rules.

use crate::policy::*;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cqrs_es::test::TestFramework;

use crate::consumer::{Consumer, ConsumerCommand, ConsumerConfig, ConsumerError, ConsumerEvent, ConsumerServices};
use crate::stream::{ChangeOrigin, Seen, ServiceError};
use crate::{DomainError, ErrorKind};

const CLUSTER: &str = "c1";
const STREAM: &str = "ORDERS";
const NAME: &str = "dispatch";
/// Far enough ahead to stay in the future.
const LATER: &str = "2999-01-01T00:00:00Z";

/// A managed cluster that answers like a NATS server: what it stores carries metadata of
/// its own (`_nats.*`) and repeats the durable name as `name`, which the aggregate must not
/// mistake for a change.
#[derive(Default)]
struct FakeServer {
    calls: Mutex<Vec<String>>,
    /// What `consumer_config` reports.
    observed: Option<ConsumerConfig>,
    /// When set, every call fails with it.
    fail: Option<ServiceError>,
}

impl FakeServer {
    fn observing(observed: Option<ConsumerConfig>) -> Self {
        Self {
            observed,
            ..Default::default()
        }
    }

    fn failing(error: ServiceError) -> Self {
        Self {
            fail: Some(error),
            ..Default::default()
        }
    }

    fn call(&self, call: String) -> Result<(), ServiceError> {
        self.calls.lock().unwrap().push(call);
        self.fail.clone().map_or(Ok(()), Err)
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// `config` as a server stores and returns it.
fn server_side(mut config: ConsumerConfig) -> ConsumerConfig {
    config.metadata.insert("_nats.req.level".into(), "1".into());
    config.name = config.durable_name.clone();
    config
}

#[async_trait]
impl ConsumerServices for FakeServer {
    async fn create_consumer(
        &self,
        cluster_id: &str,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<ConsumerConfig, ServiceError> {
        self.call(format!("create {cluster_id}/{stream}/{}", config.consumer_name()))?;
        Ok(server_side(config.clone()))
    }

    async fn update_consumer(
        &self,
        cluster_id: &str,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<ConsumerConfig, ServiceError> {
        self.call(format!("update {cluster_id}/{stream}/{}", config.consumer_name()))?;
        Ok(server_side(config.clone()))
    }

    async fn delete_consumer(&self, cluster_id: &str, stream: &str, name: &str) -> Result<(), ServiceError> {
        self.call(format!("delete {cluster_id}/{stream}/{name}"))
    }

    async fn consumer_config(
        &self,
        cluster_id: &str,
        stream: &str,
        name: &str,
    ) -> Result<Option<ConsumerConfig>, ServiceError> {
        self.call(format!("read {cluster_id}/{stream}/{name}"))?;
        Ok(self.observed.clone().map(server_side))
    }

    async fn pause_consumer(
        &self,
        cluster_id: &str,
        stream: &str,
        name: &str,
        until: Option<&str>,
    ) -> Result<ConsumerConfig, ServiceError> {
        match until {
            Some(t) => self.call(format!("pause {cluster_id}/{stream}/{name} until {t}"))?,
            None => self.call(format!("resume {cluster_id}/{stream}/{name}"))?,
        }
        let mut stored = dispatch();
        stored.pause_until = until.map(str::to_string);
        Ok(server_side(stored))
    }
}

fn framework(fake: &Arc<FakeServer>) -> TestFramework<Consumer> {
    let svc: Arc<dyn ConsumerServices> = fake.clone();
    TestFramework::with(svc)
}

/// A pull consumer with some metadata of the user's own (kept, unlike the server's).
fn dispatch() -> ConsumerConfig {
    let mut c = ConsumerConfig::durable(NAME);
    c.filter_subject = Some("orders.>".into());
    c.metadata.insert("team".into(), "payments".into());
    c
}

fn push_dispatch() -> ConsumerConfig {
    let mut c = dispatch();
    c.deliver_subject = Some("deliver.dispatch".into());
    c
}

fn created_with(config: ConsumerConfig) -> ConsumerEvent {
    ConsumerEvent::Created {
        cluster_id: CLUSTER.into(),
        stream: STREAM.into(),
        config,
        origin: ChangeOrigin::Console,
    }
}

fn created() -> ConsumerEvent {
    created_with(dispatch())
}

fn deleted() -> ConsumerEvent {
    ConsumerEvent::Deleted {
        cluster_id: CLUSTER.into(),
        stream: STREAM.into(),
        name: NAME.into(),
        last_config: dispatch(),
        origin: ChangeOrigin::Console,
    }
}

fn create(config: ConsumerConfig) -> ConsumerCommand {
    ConsumerCommand::Create {
        cluster_id: CLUSTER.into(),
        stream: STREAM.into(),
        config,
    }
}

fn observe() -> ConsumerCommand {
    ConsumerCommand::Observe {
        cluster_id: CLUSTER.into(),
        stream: STREAM.into(),
        name: NAME.into(),
        origin: external(),
        seen: Seen::Nothing,
    }
}

/// The consumer recorded gone, as found outside the console.
fn deleted_outside() -> ConsumerEvent {
    ConsumerEvent::Deleted {
        cluster_id: CLUSTER.into(),
        stream: STREAM.into(),
        name: NAME.into(),
        last_config: dispatch(),
        origin: external(),
    }
}

fn external() -> ChangeOrigin {
    ChangeOrigin::External {
        observed_via: "advisory".into(),
        client: Some("nats-cli".into()),
    }
}

/// Creating a consumer with `config` fails with `message` before any server is asked.
fn create_is_refused(config: ConsumerConfig, message: &str) {
    let fake = Arc::new(FakeServer::default());
    let err = framework(&fake)
        .given_no_previous_events()
        .when(create(config))
        .inspect_result()
        .unwrap_err();
    assert_eq!(err.to_string(), message);
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert_eq!(fake.calls(), Vec::<String>::new(), "the server was asked");
}

/// Updating the live `dispatch` consumer (created from `current`) to `next` fails with
/// `message` before any server is asked.
fn update_is_refused(current: ConsumerConfig, next: ConsumerConfig, message: &str) {
    let fake = Arc::new(FakeServer::default());
    let err = framework(&fake)
        .given(vec![created_with(current)])
        .when(ConsumerCommand::Update { config: next })
        .inspect_result()
        .unwrap_err();
    assert_eq!(err.to_string(), message);
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert_eq!(fake.calls(), Vec::<String>::new(), "the server was asked");
}

const FIXED: &str = "cannot be changed on an existing consumer; delete it and create it again";

// --- create -------------------------------------------------------------------------------

#[test]
fn create_records_the_servers_config_without_what_the_server_adds() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given_no_previous_events()
        .when(create(dispatch()))
        .then_expect_events(vec![created()]);
    assert_eq!(fake.calls(), ["create c1/ORDERS/dispatch"]);
}

#[test]
fn a_consumer_needs_a_durable_name() {
    let mut c = dispatch();
    c.durable_name = None;
    create_is_refused(c, "durableName: give the consumer a durable name");
}

#[test]
fn a_consumer_name_follows_the_naming_rules() {
    create_is_refused(
        ConsumerConfig::durable("dis.patch"),
        "durableName: the consumer name 'dis.patch' contains '.'; use letters, digits, '-' and '_'",
    );
}

/// A policy the API does not know cannot even be read: the config is refused as it
/// arrives, naming the value and the values there are.
fn unknown_value_is_refused(field: &str, value: &str, known: &str) {
    let mut json = serde_json::to_value(dispatch()).unwrap();
    json[field] = value.into();
    let e = serde_json::from_value::<ConsumerConfig>(json).unwrap_err().to_string();
    assert!(e.contains(value) && e.contains(known), "{field}: {e}");
}

#[test]
fn an_unknown_deliver_policy_is_refused() {
    unknown_value_is_refused("deliver_policy", "sometimes", "by_start_time");
}

#[test]
fn an_unknown_ack_policy_is_refused() {
    unknown_value_is_refused("ack_policy", "maybe", "explicit");
}

#[test]
fn an_unknown_replay_policy_is_refused() {
    unknown_value_is_refused("replay_policy", "fast", "original");
}

#[test]
fn delivering_by_start_sequence_needs_a_start_sequence() {
    let mut c = dispatch();
    c.deliver_policy = DeliverPolicy::ByStartSequence;
    create_is_refused(
        c,
        "optStartSeq: deliver policy by_start_sequence needs a start sequence",
    );
}

#[test]
fn delivering_by_start_time_needs_a_start_time() {
    let mut c = dispatch();
    c.deliver_policy = DeliverPolicy::ByStartTime;
    create_is_refused(c, "optStartTime: deliver policy by_start_time needs a start time");
}

#[test]
fn a_start_sequence_or_time_needs_a_by_start_deliver_policy() {
    let mut c = dispatch();
    c.deliver_policy = DeliverPolicy::New;
    c.opt_start_seq = Some(5);
    create_is_refused(
        c,
        "deliverPolicy: a start sequence or time needs deliver policy by_start_sequence or by_start_time, not new",
    );
    let mut c = dispatch();
    c.opt_start_time = Some("2026-01-01T00:00:00Z".into());
    create_is_refused(
        c,
        "deliverPolicy: a start sequence or time needs deliver policy by_start_sequence or by_start_time, not all",
    );
}

#[test]
fn filter_subject_and_filter_subjects_are_exclusive() {
    let mut c = dispatch();
    c.filter_subjects = vec!["orders.eu".into()];
    create_is_refused(c, "filterSubjects: give filterSubject or filterSubjects, not both");
}

#[test]
fn filter_subjects_must_be_valid_subjects() {
    let mut c = dispatch();
    c.filter_subject = Some("orders..eu".into());
    create_is_refused(
        c,
        "filterSubjects: 'orders..eu' is not a valid subject: it has an empty token (two dots, or a dot at either end)",
    );
}

#[test]
fn filter_subjects_must_not_overlap() {
    let mut c = dispatch();
    c.filter_subject = None;
    c.filter_subjects = vec!["orders.*".into(), "orders.eu".into()];
    create_is_refused(c, "filterSubjects: 'orders.*' and 'orders.eu' overlap");
}

#[test]
fn max_deliver_must_exceed_the_number_of_backoff_durations() {
    let mut c = dispatch();
    c.backoff = vec![1_000_000_000, 2_000_000_000];
    c.max_deliver = 2;
    create_is_refused(c, "maxDeliver: must be greater than the number of backoff durations");
}

#[test]
fn backoff_durations_must_be_positive() {
    let mut c = dispatch();
    c.backoff = vec![1_000_000_000, 0];
    create_is_refused(c, "backoff: durations must be positive");
}

#[test]
fn ack_wait_and_inactive_threshold_must_not_be_negative() {
    // Each reported under its own field.
    let mut c = dispatch();
    c.ack_wait = -1;
    create_is_refused(c, "ackWait: must not be negative (0s takes the server's default)");
    let mut c = dispatch();
    c.inactive_threshold = -1;
    create_is_refused(
        c,
        "inactiveThreshold: must not be negative (0s takes the server's default)",
    );
}

#[test]
fn a_deliver_subject_must_be_a_valid_subject() {
    let mut c = dispatch();
    c.deliver_subject = Some("deliver..dispatch".into());
    create_is_refused(
        c,
        "deliverSubject: 'deliver..dispatch' is not a valid subject: it has an empty token (two dots, or a dot at either end)",
    );
}

#[test]
fn push_consumers_have_no_waiting_pulls() {
    let mut c = push_dispatch();
    c.max_waiting = 10;
    create_is_refused(c, "maxWaiting: only pull consumers have waiting pulls");
}

#[test]
fn push_only_options_need_a_deliver_subject() {
    let message = "deliverSubject: flow control, heartbeats, rate limits and deliver groups are for push consumers: give a deliver subject";
    let push_only: [fn(&mut ConsumerConfig); 4] = [
        |c| c.flow_control = true,
        |c| c.idle_heartbeat = 5_000_000_000,
        |c| c.rate_limit_bps = Some(1_000),
        |c| c.deliver_group = Some("workers".into()),
    ];
    for set in push_only {
        let mut c = dispatch();
        set(&mut c);
        create_is_refused(c.clone(), message);
        c.deliver_subject = Some("deliver.dispatch".into());
        assert_eq!(c.validate(), Ok(()), "{c:?}");
    }
}

#[test]
fn creating_an_existing_consumer_is_a_conflict() {
    let fake = Arc::new(FakeServer::default());
    let err = framework(&fake)
        .given(vec![created()])
        .when(create(dispatch()))
        .inspect_result()
        .unwrap_err();
    assert_eq!(err, ConsumerError::AlreadyExists(NAME.into()));
    assert_eq!(
        err.to_string(),
        "consumer 'dispatch' already exists on this stream; update it instead"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[test]
fn a_deleted_consumer_can_be_created_again() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created(), deleted()])
        .when(create(dispatch()))
        .then_expect_events(vec![created()]);
}

#[test]
fn service_errors_keep_their_kind() {
    let cases = [
        (
            ServiceError::Unavailable("no responders".into()),
            "no responders",
            ErrorKind::Unavailable,
        ),
        (
            ServiceError::NotFound("stream not found".into()),
            "stream not found",
            ErrorKind::NotFound,
        ),
        (
            ServiceError::Conflict("consumer already exists".into()),
            "consumer already exists",
            ErrorKind::Conflict,
        ),
        (
            ServiceError::Rejected {
                code: 10084,
                description: "consumer name in subject does not match durable name in request".into(),
            },
            "the server refused: consumer name in subject does not match durable name in request (error 10084)",
            ErrorKind::Validation,
        ),
        (
            ServiceError::Unsupported("needs NATS server 2.11".into()),
            "needs NATS server 2.11",
            ErrorKind::Validation,
        ),
    ];
    for (service_error, message, kind) in cases {
        let fake = Arc::new(FakeServer::failing(service_error.clone()));
        let err = framework(&fake)
            .given_no_previous_events()
            .when(create(dispatch()))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, ConsumerError::Service(service_error));
        assert_eq!(err.to_string(), message);
        assert_eq!(err.kind(), kind, "{message}");
    }
}

// --- update -------------------------------------------------------------------------------

#[test]
fn update_records_the_servers_config_before_and_after() {
    let mut next = dispatch();
    next.description = Some("ships paid orders".into());
    next.max_ack_pending = 100;
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(ConsumerCommand::Update { config: next.clone() })
        .then_expect_events(vec![ConsumerEvent::Updated {
            cluster_id: CLUSTER.into(),
            stream: STREAM.into(),
            before: dispatch(),
            after: next,
            origin: ChangeOrigin::Console,
        }]);
    assert_eq!(fake.calls(), ["update c1/ORDERS/dispatch"]);
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    // The server's answer differs only by what it adds itself.
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(ConsumerCommand::Update { config: dispatch() })
        .then_expect_events(vec![]);
    assert_eq!(fake.calls(), ["update c1/ORDERS/dispatch"]);
}

#[test]
fn updating_a_consumer_that_never_existed_is_not_found() {
    let fake = Arc::new(FakeServer::default());
    let err = framework(&fake)
        .given_no_previous_events()
        .when(ConsumerCommand::Update { config: dispatch() })
        .inspect_result()
        .unwrap_err();
    assert!(matches!(err, ConsumerError::NotFound(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[test]
fn updating_a_deleted_consumer_is_not_found() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created(), deleted()])
        .when(ConsumerCommand::Update { config: dispatch() })
        .then_expect_error(ConsumerError::NotFound(NAME.into()));
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[test]
fn a_consumer_cannot_be_renamed() {
    let mut next = dispatch();
    next.durable_name = Some("shipping".into());
    update_is_refused(dispatch(), next, &format!("durableName: {FIXED}"));
}

#[test]
fn the_deliver_policy_and_its_start_are_fixed() {
    let mut next = dispatch();
    next.deliver_policy = DeliverPolicy::New;
    update_is_refused(dispatch(), next, &format!("deliverPolicy: {FIXED}"));

    let mut current = dispatch();
    current.deliver_policy = DeliverPolicy::ByStartSequence;
    current.opt_start_seq = Some(10);
    let mut next = current.clone();
    next.opt_start_seq = Some(20);
    update_is_refused(current, next, &format!("deliverPolicy: {FIXED}"));
}

#[test]
fn the_ack_policy_is_fixed() {
    let mut next = dispatch();
    next.ack_policy = AckPolicy::None;
    update_is_refused(dispatch(), next, &format!("ackPolicy: {FIXED}"));
}

#[test]
fn the_replay_policy_is_fixed() {
    let mut next = dispatch();
    next.replay_policy = ReplayPolicy::Original;
    update_is_refused(dispatch(), next, &format!("replayPolicy: {FIXED}"));
}

#[test]
fn a_consumer_cannot_switch_between_push_and_pull() {
    let message = "deliverSubject: a consumer cannot switch between push and pull";
    update_is_refused(dispatch(), push_dispatch(), message);
    update_is_refused(push_dispatch(), dispatch(), message);
}

#[test]
fn a_push_consumer_may_change_its_deliver_subject() {
    let mut next = push_dispatch();
    next.deliver_subject = Some("deliver.dispatch.v2".into());
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created_with(push_dispatch())])
        .when(ConsumerCommand::Update { config: next.clone() })
        .then_expect_events(vec![ConsumerEvent::Updated {
            cluster_id: CLUSTER.into(),
            stream: STREAM.into(),
            before: push_dispatch(),
            after: next,
            origin: ChangeOrigin::Console,
        }]);
}

#[test]
fn an_update_is_validated_like_a_create() {
    let mut next = dispatch();
    next.filter_subject = Some("orders.>.eu".into());
    update_is_refused(
        dispatch(),
        next,
        "filterSubjects: 'orders.>.eu' is not a valid subject: '>' must be the whole last token",
    );
}

#[test]
fn a_server_failure_on_update_records_nothing() {
    let fake = Arc::new(FakeServer::failing(ServiceError::NotFound("consumer not found".into())));
    let mut next = dispatch();
    next.description = Some("x".into());
    let err = framework(&fake)
        .given(vec![created()])
        .when(ConsumerCommand::Update { config: next })
        .inspect_result()
        .unwrap_err();
    assert_eq!(
        err,
        ConsumerError::Service(ServiceError::NotFound("consumer not found".into()))
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

// --- delete -------------------------------------------------------------------------------

#[test]
fn delete_records_the_last_config() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(ConsumerCommand::Delete)
        .then_expect_events(vec![deleted()]);
    assert_eq!(fake.calls(), ["delete c1/ORDERS/dispatch"]);
}

#[test]
fn deleting_a_deleted_consumer_is_not_found() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created(), deleted()])
        .when(ConsumerCommand::Delete)
        .then_expect_error_message("consumer 'dispatch' not found on this stream");
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[test]
fn a_server_failure_on_delete_records_nothing() {
    let fake = Arc::new(FakeServer::failing(ServiceError::Unavailable(
        "cluster c1 is unreachable".into(),
    )));
    let err = framework(&fake)
        .given(vec![created()])
        .when(ConsumerCommand::Delete)
        .inspect_result()
        .unwrap_err();
    assert_eq!(err.to_string(), "cluster c1 is unreachable");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

// --- pause and resume ---------------------------------------------------------------------

fn paused_dispatch() -> ConsumerConfig {
    let mut c = dispatch();
    c.pause_until = Some(LATER.into());
    c
}

#[test]
fn pause_records_the_time_and_the_servers_config() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(ConsumerCommand::Pause { until: LATER.into() })
        .then_expect_events(vec![ConsumerEvent::Paused {
            until: LATER.into(),
            after: paused_dispatch(),
        }]);
    assert_eq!(fake.calls(), [format!("pause c1/ORDERS/dispatch until {LATER}")]);
}

#[test]
fn pause_needs_an_rfc3339_time() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(ConsumerCommand::Pause {
            until: "tomorrow".into(),
        })
        .then_expect_error_message("until: give an RFC 3339 time such as 2026-12-01T08:00:00Z");
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[test]
fn pause_must_end_in_the_future() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(ConsumerCommand::Pause {
            until: "2020-01-01T00:00:00Z".into(),
        })
        .then_expect_error_message("until: must be in the future; use resumeConsumer to resume now");
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[test]
fn pausing_a_deleted_consumer_is_not_found() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created(), deleted()])
        .when(ConsumerCommand::Pause { until: LATER.into() })
        .then_expect_error(ConsumerError::NotFound(NAME.into()));
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[test]
fn pausing_on_a_server_without_pause_support_records_nothing() {
    let fake = Arc::new(FakeServer::failing(ServiceError::Unsupported(
        "pausing consumers needs NATS server 2.11 or later".into(),
    )));
    let err = framework(&fake)
        .given(vec![created()])
        .when(ConsumerCommand::Pause { until: LATER.into() })
        .inspect_result()
        .unwrap_err();
    assert_eq!(err.to_string(), "pausing consumers needs NATS server 2.11 or later");
    assert_eq!(err.kind(), ErrorKind::Validation);
}

#[test]
fn resume_records_the_servers_config() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![
            created(),
            ConsumerEvent::Paused {
                until: LATER.into(),
                after: paused_dispatch(),
            },
        ])
        .when(ConsumerCommand::Resume)
        .then_expect_events(vec![ConsumerEvent::Resumed { after: dispatch() }]);
    assert_eq!(fake.calls(), ["resume c1/ORDERS/dispatch"]);
}

#[test]
fn resuming_a_deleted_consumer_is_not_found() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created(), deleted()])
        .when(ConsumerCommand::Resume)
        .then_expect_error(ConsumerError::NotFound(NAME.into()));
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[test]
fn a_server_failure_on_resume_records_nothing() {
    let fake = Arc::new(FakeServer::failing(ServiceError::Unavailable("timed out".into())));
    let err = framework(&fake)
        .given(vec![created()])
        .when(ConsumerCommand::Resume)
        .inspect_result()
        .unwrap_err();
    assert_eq!(
        err,
        ConsumerError::Service(ServiceError::Unavailable("timed out".into()))
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

// --- observe ------------------------------------------------------------------------------

#[test]
fn observing_an_unknown_consumer_records_its_creation_outside_the_console() {
    let fake = Arc::new(FakeServer::observing(Some(dispatch())));
    framework(&fake)
        .given_no_previous_events()
        .when(observe())
        .then_expect_events(vec![ConsumerEvent::Created {
            cluster_id: CLUSTER.into(),
            stream: STREAM.into(),
            config: dispatch(),
            origin: external(),
        }]);
    assert_eq!(fake.calls(), ["read c1/ORDERS/dispatch"]);
}

/// What an advisory's answer showed, for the observation of one consumer.
fn observe_seen(seen: ConsumerConfig) -> ConsumerCommand {
    match observe() {
        ConsumerCommand::Observe {
            cluster_id,
            stream,
            name,
            origin,
            ..
        } => ConsumerCommand::Observe {
            cluster_id,
            stream,
            name,
            origin,
            seen: Seen::Answer(Box::new(seen)),
        },
        _ => unreachable!(),
    }
}

#[test]
fn a_creation_seen_in_its_answer_is_recorded_without_asking_the_server() {
    // The server has it gone since: the answer is still what was made, and its deletion
    // comes in an observation of its own.
    let fake = Arc::new(FakeServer::observing(None));
    framework(&fake)
        .given_no_previous_events()
        .when(observe_seen(server_side(dispatch())))
        .then_expect_events(vec![ConsumerEvent::Created {
            cluster_id: CLUSTER.into(),
            stream: STREAM.into(),
            config: dispatch(),
            origin: external(),
        }]);
    assert_eq!(fake.calls(), Vec::<String>::new(), "the server was asked");
}

#[test]
fn an_answer_seen_for_a_known_consumer_is_checked_against_the_server() {
    // The answer may be older than the console's own change to the consumer: what the
    // server has now is recorded, not the answer.
    let mut stale = dispatch();
    stale.max_deliver = 9;
    let mut now = dispatch();
    now.max_deliver = 5;
    let fake = Arc::new(FakeServer::observing(Some(now.clone())));
    framework(&fake)
        .given(vec![created()])
        .when(observe_seen(stale))
        .then_expect_events(vec![ConsumerEvent::Updated {
            cluster_id: CLUSTER.into(),
            stream: STREAM.into(),
            before: dispatch(),
            after: now,
            origin: external(),
        }]);
    assert_eq!(fake.calls(), ["read c1/ORDERS/dispatch"]);
}

#[test]
fn a_consumer_whose_stream_was_found_gone_is_recorded_gone_without_asking_the_server() {
    // Whatever the server would say: the stream's own command found it gone just before.
    let fake = Arc::new(FakeServer::observing(Some(dispatch())));
    let mut gone = observe();
    if let ConsumerCommand::Observe { seen, .. } = &mut gone {
        *seen = Seen::GoneWithStream;
    }
    framework(&fake)
        .given(vec![created()])
        .when(gone.clone())
        .then_expect_events(vec![deleted_outside()]);
    // One it never knew stays unknown.
    framework(&fake)
        .given_no_previous_events()
        .when(gone)
        .then_expect_events(vec![]);
    assert_eq!(fake.calls(), Vec::<String>::new(), "the server was asked");
}

#[test]
fn observing_the_known_config_records_nothing() {
    let fake = Arc::new(FakeServer::observing(Some(dispatch())));
    framework(&fake)
        .given(vec![created()])
        .when(observe())
        .then_expect_events(vec![]);
}

#[test]
fn observing_a_change_records_before_and_after() {
    let mut after = dispatch();
    after.max_deliver = 5;
    let fake = Arc::new(FakeServer::observing(Some(after.clone())));
    framework(&fake)
        .given(vec![created()])
        .when(observe())
        .then_expect_events(vec![ConsumerEvent::Updated {
            cluster_id: CLUSTER.into(),
            stream: STREAM.into(),
            before: dispatch(),
            after,
            origin: external(),
        }]);
}

#[test]
fn observing_a_vanished_consumer_records_its_deletion() {
    let fake = Arc::new(FakeServer::observing(None));
    framework(&fake)
        .given(vec![created()])
        .when(observe())
        .then_expect_events(vec![deleted_outside()]);
}

#[test]
fn observing_a_consumer_that_never_existed_records_nothing() {
    let fake = Arc::new(FakeServer::observing(None));
    framework(&fake)
        .given_no_previous_events()
        .when(observe())
        .then_expect_events(vec![]);
}

#[test]
fn observing_an_already_deleted_consumer_records_nothing() {
    let fake = Arc::new(FakeServer::observing(None));
    framework(&fake)
        .given(vec![created(), deleted()])
        .when(observe())
        .then_expect_events(vec![]);
}

#[test]
fn an_unreachable_server_during_observe_records_nothing() {
    let fake = Arc::new(FakeServer::failing(ServiceError::Unavailable("no responders".into())));
    let err = framework(&fake)
        .given(vec![created()])
        .when(observe())
        .inspect_result()
        .unwrap_err();
    assert_eq!(
        err,
        ConsumerError::Service(ServiceError::Unavailable("no responders".into()))
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[test]
fn counts_out_of_range_are_refused_not_sent() {
    type Set = fn(&mut ConsumerConfig);
    let cases: [(Set, &str); 4] = [
        (
            |c| c.max_waiting = -1,
            "maxWaiting: must be 0 (the server's default) or more",
        ),
        (
            |c| c.max_ack_pending = -2,
            "maxAckPending: must be -1 (unlimited), 0 (the server's default) or more",
        ),
        (
            |c| c.num_replicas = -1,
            "replicas: must be between 0 (as many as the stream) and 5",
        ),
        (
            |c| c.num_replicas = 6,
            "replicas: must be between 0 (as many as the stream) and 5",
        ),
    ];
    for (set, message) in cases {
        let mut c = dispatch();
        set(&mut c);
        create_is_refused(c, message);
    }
    let mut c = dispatch();
    c.max_ack_pending = -1;
    c.num_replicas = 3;
    assert_eq!(c.validate(), Ok(()));
}
