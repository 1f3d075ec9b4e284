//! The stream aggregate's rules not already covered by the tests in `stream.rs`.

use crate::policy::*;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cqrs_es::test::TestFramework;

use crate::stream::{
    ChangeOrigin, PublishedMessage, PurgeRequest, Seen, ServiceError, Stream, StreamCommand, StreamConfig, StreamError,
    StreamEvent, StreamServices, StreamSource, SubjectTransform,
};
use crate::{DomainError, ErrorKind};

const CLUSTER: &str = "c1";

/// A managed cluster that stores what it is sent, adding metadata of its own (`_nats.*`).
#[derive(Default)]
struct FakeServer {
    calls: Mutex<Vec<String>>,
    /// What `stream_config` reports.
    observed: Option<StreamConfig>,
    /// When set, every call fails with it.
    fail: Option<ServiceError>,
    /// Whether `publish` answers that the message was a duplicate.
    duplicate: bool,
}

impl FakeServer {
    fn failing(error: ServiceError) -> Self {
        Self {
            fail: Some(error),
            ..Default::default()
        }
    }

    fn observing(observed: Option<StreamConfig>) -> Self {
        Self {
            observed,
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

fn server_side(mut config: StreamConfig) -> StreamConfig {
    config.metadata.insert("_nats.ver".into(), "2.15.1".into());
    config
}

#[async_trait]
impl StreamServices for FakeServer {
    async fn create_stream(&self, cluster_id: &str, config: &StreamConfig) -> Result<StreamConfig, ServiceError> {
        self.call(format!("create {cluster_id}/{}", config.name))?;
        Ok(server_side(config.clone()))
    }

    async fn update_stream(&self, cluster_id: &str, config: &StreamConfig) -> Result<StreamConfig, ServiceError> {
        self.call(format!("update {cluster_id}/{}", config.name))?;
        Ok(server_side(config.clone()))
    }

    async fn delete_stream(&self, cluster_id: &str, name: &str) -> Result<(), ServiceError> {
        self.call(format!("delete {cluster_id}/{name}"))
    }

    async fn stream_config(&self, cluster_id: &str, name: &str) -> Result<Option<StreamConfig>, ServiceError> {
        self.call(format!("read {cluster_id}/{name}"))?;
        Ok(self.observed.clone().map(server_side))
    }

    async fn purge_stream(&self, cluster_id: &str, name: &str, _: &PurgeRequest) -> Result<u64, ServiceError> {
        self.call(format!("purge {cluster_id}/{name}"))?;
        Ok(3)
    }

    async fn publish(
        &self,
        cluster_id: &str,
        stream: &str,
        subject: &str,
        _: &[(String, String)],
        _: &[u8],
    ) -> Result<(u64, bool), ServiceError> {
        self.call(format!("publish {cluster_id}/{stream} {subject}"))?;
        Ok((7, self.duplicate))
    }

    async fn delete_message(&self, cluster_id: &str, stream: &str, seq: u64, erase: bool) -> Result<(), ServiceError> {
        self.call(format!("delete message {cluster_id}/{stream} {seq} erase={erase}"))
    }
}

fn framework(fake: &Arc<FakeServer>) -> TestFramework<Stream> {
    let svc: Arc<dyn StreamServices> = fake.clone();
    TestFramework::with(svc)
}

fn orders() -> StreamConfig {
    let mut c = StreamConfig::named("ORDERS");
    c.subjects = vec!["orders.>".into()];
    c
}

fn created_with(config: StreamConfig) -> StreamEvent {
    StreamEvent::Created {
        cluster_id: CLUSTER.into(),
        config,
        origin: ChangeOrigin::Console,
    }
}

fn created() -> StreamEvent {
    created_with(orders())
}

fn deleted() -> StreamEvent {
    StreamEvent::Deleted {
        cluster_id: CLUSTER.into(),
        name: "ORDERS".into(),
        last_config: orders(),
        origin: ChangeOrigin::Console,
    }
}

fn create(config: StreamConfig) -> StreamCommand {
    StreamCommand::Create {
        cluster_id: CLUSTER.into(),
        config,
    }
}

fn publish(subject: &str, headers: &[(&str, &str)]) -> StreamCommand {
    StreamCommand::Publish {
        subject: subject.into(),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        payload: b"hello".to_vec(),
    }
}

fn external() -> ChangeOrigin {
    ChangeOrigin::External {
        observed_via: "reconcile".into(),
        client: None,
    }
}

fn observe() -> StreamCommand {
    StreamCommand::Observe {
        cluster_id: CLUSTER.into(),
        name: "ORDERS".into(),
        origin: external(),
        seen: Seen::Nothing,
    }
}

/// `command` on a stream with history `given` fails with a validation `message` before any
/// server is asked.
fn is_refused(given: Vec<StreamEvent>, command: StreamCommand, message: &str) {
    let fake = Arc::new(FakeServer::default());
    let err = framework(&fake)
        .given(given)
        .when(command)
        .inspect_result()
        .unwrap_err();
    assert_eq!(err.to_string(), message);
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert_eq!(fake.calls(), Vec::<String>::new(), "the server was asked");
}

fn create_is_refused(config: StreamConfig, message: &str) {
    is_refused(vec![], create(config), message);
}

fn update_is_refused(current: StreamConfig, next: StreamConfig, message: &str) {
    is_refused(
        vec![created_with(current)],
        StreamCommand::Update { config: next },
        message,
    );
}

/// `command` on a stream that was deleted fails with NotFound, naming it.
fn is_not_found_once_deleted(command: StreamCommand) {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created(), deleted()])
        .when(command)
        .then_expect_error(StreamError::NotFound("ORDERS".into()));
    assert_eq!(fake.calls(), Vec::<String>::new());
}

/// One change to a configuration, for tables of cases.
type Change = fn(&mut StreamConfig);

fn fixed(what: &str) -> String {
    format!("{what} cannot be changed on an existing stream; create a new stream and move the data")
}

// --- create -------------------------------------------------------------------------------

#[test]
fn creating_an_existing_stream_is_a_conflict() {
    let fake = Arc::new(FakeServer::default());
    let err = framework(&fake)
        .given(vec![created()])
        .when(create(orders()))
        .inspect_result()
        .unwrap_err();
    assert_eq!(err, StreamError::AlreadyExists("ORDERS".into()));
    assert_eq!(
        err.to_string(),
        "stream 'ORDERS' already exists on this cluster; update it instead"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[test]
fn a_deleted_stream_can_be_created_again() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created(), deleted()])
        .when(create(orders()))
        .then_expect_events(vec![created()]);
    assert_eq!(fake.calls(), ["create c1/ORDERS"]);
}

#[test]
fn a_stream_name_follows_the_naming_rules() {
    create_is_refused(
        StreamConfig::named("ORD.ERS"),
        "name: the stream name 'ORD.ERS' contains '.'; use letters, digits, '-' and '_'",
    );
    create_is_refused(StreamConfig::named(""), "name: a stream name must not be empty");
}

#[test]
fn stream_subjects_must_be_valid_subjects() {
    let mut c = orders();
    c.subjects = vec!["orders..eu".into()];
    create_is_refused(
        c,
        "subjects: 'orders..eu' is not a valid subject: it has an empty token (two dots, or a dot at either end)",
    );
}

#[test]
fn overlapping_subjects_name_both_and_ask_for_the_wider_one() {
    let mut c = orders();
    c.subjects.push("orders.eu".into());
    create_is_refused(
        c,
        "subjects: 'orders.>' and 'orders.eu' overlap; keep only the wider one",
    );
}

#[test]
fn a_mirror_has_no_subjects() {
    let mut c = orders();
    c.mirror = Some(StreamSource {
        name: "UPSTREAM".into(),
        ..Default::default()
    });
    create_is_refused(
        c,
        "subjects: a mirror takes its messages from the mirrored stream and cannot have subjects",
    );
}

#[test]
fn a_mirror_has_no_sources() {
    let mut c = StreamConfig::named("ORDERS");
    c.mirror = Some(StreamSource {
        name: "UPSTREAM".into(),
        ..Default::default()
    });
    c.sources = vec![StreamSource {
        name: "OTHER".into(),
        ..Default::default()
    }];
    create_is_refused(c, "sources: a stream is either a mirror or has sources, not both");
}

#[test]
fn retention_discard_storage_and_compression_take_known_values() {
    // A value the API does not know cannot even be read: refused as it arrives, naming it
    // and the values there are.
    for (field, value, known) in [
        ("retention", "forever", "workqueue"),
        ("discard", "middle", "old"),
        ("storage", "tape", "memory"),
        ("compression", "zip", "s2"),
    ] {
        let mut json = serde_json::to_value(orders()).unwrap();
        json[field] = value.into();
        let e = serde_json::from_value::<StreamConfig>(json).unwrap_err().to_string();
        assert!(e.contains(value) && e.contains(known), "{field}: {e}");
    }
}

#[test]
fn limits_are_minus_one_or_more() {
    let cases: [(Change, &str); 5] = [
        (|c| c.max_consumers = -2, "maxConsumers"),
        (|c| c.max_msgs = -2, "maxMsgs"),
        (|c| c.max_bytes = -2, "maxBytes"),
        (|c| c.max_msgs_per_subject = -2, "maxMsgsPerSubject"),
        (|c| c.max_msg_size = -2, "maxMsgSize"),
    ];
    for (set, field) in cases {
        let mut c = orders();
        set(&mut c);
        create_is_refused(c, &format!("{field}: must be -1 (unlimited) or more"));
    }
}

#[test]
fn durations_must_not_be_negative() {
    // Each reported under its own field.
    let cases: [(Change, &str); 3] = [
        (|c| c.max_age = -1, "maxAge"),
        (|c| c.duplicate_window = -1, "duplicateWindow"),
        (|c| c.subject_delete_marker_ttl = Some(-1), "subjectDeleteMarkerTtl"),
    ];
    for (set, field) in cases {
        let mut c = orders();
        set(&mut c);
        create_is_refused(c, &format!("{field}: must not be negative (0s is unlimited or off)"));
    }
}

#[test]
fn replicas_are_between_one_and_five() {
    for n in [0, 6] {
        let mut c = orders();
        c.num_replicas = n;
        create_is_refused(c, "replicas: must be between 1 and 5");
    }
    let mut c = orders();
    c.num_replicas = 5;
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn discard_new_per_subject_needs_discard_new_and_a_per_subject_limit() {
    let message = "discardNewPerSubject: needs discard 'new' and a max messages per subject limit";
    let mut c = orders();
    c.discard_new_per_subject = true;
    c.max_msgs_per_subject = 10;
    create_is_refused(c.clone(), message);
    c.discard = Discard::New;
    c.max_msgs_per_subject = -1;
    create_is_refused(c.clone(), message);
    c.max_msgs_per_subject = 10;
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given_no_previous_events()
        .when(create(c.clone()))
        .then_expect_events(vec![created_with(c)]);
}

#[test]
fn a_subject_transform_source_must_be_a_subject() {
    let mut c = orders();
    c.subject_transform = Some(SubjectTransform {
        src: "orders..eu".into(),
        dest: "eu.orders".into(),
    });
    create_is_refused(
        c,
        "subjectTransform.src: 'orders..eu' is not a valid subject: it has an empty token (two dots, or a dot at either end)",
    );
}

#[test]
fn source_and_mirror_names_follow_the_naming_rules() {
    let message = "sources: the stream name 'UP STREAM' contains white space; use letters, digits, '-' and '_'";
    let bad = StreamSource {
        name: "UP STREAM".into(),
        ..Default::default()
    };
    let mut c = orders();
    c.sources = vec![bad.clone()];
    create_is_refused(c, message);
    let mut c = StreamConfig::named("ORDERS");
    c.mirror = Some(bad);
    create_is_refused(c, message);
}

#[test]
fn service_errors_keep_their_kind() {
    let cases = [
        (
            ServiceError::Unavailable("no responders".into()),
            ErrorKind::Unavailable,
        ),
        (ServiceError::NotFound("account not found".into()), ErrorKind::NotFound),
        (
            ServiceError::Conflict("stream name already in use".into()),
            ErrorKind::Conflict,
        ),
        (
            ServiceError::Rejected {
                code: 10047,
                description: "insufficient resources".into(),
            },
            ErrorKind::Validation,
        ),
        (
            ServiceError::Unsupported("needs NATS server 2.11".into()),
            ErrorKind::Validation,
        ),
    ];
    for (service_error, kind) in cases {
        let fake = Arc::new(FakeServer::failing(service_error.clone()));
        let err = framework(&fake)
            .given_no_previous_events()
            .when(create(orders()))
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.to_string(), service_error.to_string());
        assert_eq!(err, StreamError::Service(service_error));
        assert_eq!(err.kind(), kind);
    }
}

#[test]
fn a_server_refusal_is_reported_in_the_servers_words() {
    let fake = Arc::new(FakeServer::failing(ServiceError::Rejected {
        code: 10047,
        description: "insufficient resources".into(),
    }));
    framework(&fake)
        .given_no_previous_events()
        .when(create(orders()))
        .then_expect_error_message("the server refused: insufficient resources (error 10047)");
}

// --- update -------------------------------------------------------------------------------

#[test]
fn update_records_the_servers_config_before_and_after() {
    let mut next = orders();
    next.max_msgs = 1_000;
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(StreamCommand::Update { config: next.clone() })
        .then_expect_events(vec![StreamEvent::Updated {
            cluster_id: CLUSTER.into(),
            before: orders(),
            after: next,
            origin: ChangeOrigin::Console,
        }]);
    assert_eq!(fake.calls(), ["update c1/ORDERS"]);
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(StreamCommand::Update { config: orders() })
        .then_expect_events(vec![]);
    assert_eq!(fake.calls(), ["update c1/ORDERS"]);
}

#[test]
fn updating_a_stream_that_never_existed_is_not_found() {
    let fake = Arc::new(FakeServer::default());
    let err = framework(&fake)
        .given_no_previous_events()
        .when(StreamCommand::Update { config: orders() })
        .inspect_result()
        .unwrap_err();
    assert!(matches!(err, StreamError::NotFound(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn updating_a_deleted_stream_is_not_found() {
    is_not_found_once_deleted(StreamCommand::Update { config: orders() });
}

#[test]
fn a_stream_cannot_be_renamed() {
    let mut next = orders();
    next.name = "SALES".into();
    update_is_refused(orders(), next, &format!("name: {}", fixed("the name")));
}

#[test]
fn retention_cannot_change_to_or_from_workqueue() {
    let message = format!("retention: {}", fixed("retention to or from workqueue"));
    let mut workqueue = orders();
    workqueue.retention = Retention::WorkQueue;
    update_is_refused(orders(), workqueue.clone(), &message);
    let mut interest = orders();
    interest.retention = Retention::Interest;
    update_is_refused(workqueue, interest, &message);
}

#[test]
fn retention_may_change_between_limits_and_interest() {
    let mut interest = orders();
    interest.retention = Retention::Interest;
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(StreamCommand::Update {
            config: interest.clone(),
        })
        .then_expect_events(vec![StreamEvent::Updated {
            cluster_id: CLUSTER.into(),
            before: orders(),
            after: interest,
            origin: ChangeOrigin::Console,
        }]);
}

#[test]
fn the_mirror_cannot_change() {
    let mut mirror = StreamConfig::named("ORDERS");
    mirror.mirror = Some(StreamSource {
        name: "UPSTREAM".into(),
        ..Default::default()
    });
    let mut next = mirror.clone();
    next.mirror.as_mut().unwrap().filter_subject = Some("orders.eu".into());
    update_is_refused(mirror, next, &format!("mirror: {}", fixed("the mirror configuration")));
}

#[test]
fn a_sealed_stream_cannot_be_unsealed() {
    let mut sealed = orders();
    sealed.sealed = true;
    update_is_refused(sealed, orders(), "sealed: a sealed stream cannot be unsealed");
}

#[test]
fn per_message_ttl_cannot_be_disabled_once_enabled() {
    let mut ttl = orders();
    ttl.allow_msg_ttl = true;
    update_is_refused(
        ttl,
        orders(),
        "allowMsgTtl: per-message TTL cannot be disabled once enabled",
    );
}

#[test]
fn an_update_is_validated_like_a_create() {
    let mut next = orders();
    next.num_replicas = 7;
    update_is_refused(orders(), next, "replicas: must be between 1 and 5");
}

#[test]
fn a_server_failure_on_update_records_nothing() {
    let fake = Arc::new(FakeServer::failing(ServiceError::Unavailable("timed out".into())));
    let mut next = orders();
    next.max_msgs = 1;
    let err = framework(&fake)
        .given(vec![created()])
        .when(StreamCommand::Update { config: next })
        .inspect_result()
        .unwrap_err();
    assert_eq!(err, StreamError::Service(ServiceError::Unavailable("timed out".into())));
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

// --- delete -------------------------------------------------------------------------------

#[test]
fn delete_with_the_name_repeated_records_the_last_config() {
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(StreamCommand::Delete {
            confirm_name: "ORDERS".into(),
        })
        .then_expect_events(vec![deleted()]);
    assert_eq!(fake.calls(), ["delete c1/ORDERS"]);
}

#[test]
fn a_wrong_confirmation_asks_nothing_of_the_server() {
    is_refused(
        vec![created()],
        StreamCommand::Delete {
            confirm_name: "orders".into(),
        },
        "confirmName: type the stream's name ('ORDERS') to confirm deleting it and all its messages",
    );
}

#[test]
fn deleting_a_deleted_stream_is_not_found() {
    is_not_found_once_deleted(StreamCommand::Delete {
        confirm_name: "ORDERS".into(),
    });
}

#[test]
fn a_server_failure_on_delete_records_nothing() {
    let fake = Arc::new(FakeServer::failing(ServiceError::NotFound("stream not found".into())));
    let err = framework(&fake)
        .given(vec![created()])
        .when(StreamCommand::Delete {
            confirm_name: "ORDERS".into(),
        })
        .inspect_result()
        .unwrap_err();
    assert_eq!(err.to_string(), "stream not found");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

// --- purge --------------------------------------------------------------------------------

#[test]
fn purge_records_the_request_and_how_many_were_purged() {
    let request = PurgeRequest {
        filter: Some("orders.eu".into()),
        keep: Some(10),
        seq: None,
    };
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(StreamCommand::Purge {
            request: request.clone(),
        })
        .then_expect_events(vec![StreamEvent::Purged {
            cluster_id: CLUSTER.into(),
            name: "ORDERS".into(),
            request,
            purged: 3,
        }]);
    assert_eq!(fake.calls(), ["purge c1/ORDERS"]);
}

#[test]
fn a_stream_that_denies_purging_cannot_be_purged() {
    let mut c = orders();
    c.deny_purge = true;
    is_refused(
        vec![created_with(c)],
        StreamCommand::Purge {
            request: PurgeRequest::default(),
        },
        "stream: this stream denies purging (deny_purge)",
    );
}

#[test]
fn purge_keeps_a_count_or_stops_at_a_sequence_not_both() {
    is_refused(
        vec![created()],
        StreamCommand::Purge {
            request: PurgeRequest {
                filter: None,
                keep: Some(10),
                seq: Some(100),
            },
        },
        "purge: give either keep or upToSequence, not both",
    );
}

#[test]
fn a_purge_filter_must_be_a_subject() {
    is_refused(
        vec![created()],
        StreamCommand::Purge {
            request: PurgeRequest {
                filter: Some("orders..eu".into()),
                ..Default::default()
            },
        },
        "subject: 'orders..eu' is not a valid subject: it has an empty token (two dots, or a dot at either end)",
    );
}

#[test]
fn purging_a_deleted_stream_is_not_found() {
    is_not_found_once_deleted(StreamCommand::Purge {
        request: PurgeRequest::default(),
    });
}

// --- seal ---------------------------------------------------------------------------------

#[test]
fn sealing_records_before_and_after() {
    let mut sealed = orders();
    sealed.sealed = true;
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created()])
        .when(StreamCommand::Seal)
        .then_expect_events(vec![StreamEvent::Sealed {
            cluster_id: CLUSTER.into(),
            name: "ORDERS".into(),
            before: orders(),
            after: sealed,
        }]);
    assert_eq!(fake.calls(), ["update c1/ORDERS"]);
}

#[test]
fn sealing_a_sealed_stream_records_nothing() {
    let mut sealed = orders();
    sealed.sealed = true;
    let fake = Arc::new(FakeServer::default());
    framework(&fake)
        .given(vec![created_with(sealed)])
        .when(StreamCommand::Seal)
        .then_expect_events(vec![]);
    assert_eq!(fake.calls(), Vec::<String>::new());
}

#[test]
fn sealing_a_deleted_stream_is_not_found() {
    is_not_found_once_deleted(StreamCommand::Seal);
}

// --- publish ------------------------------------------------------------------------------

#[test]
fn publish_records_size_header_names_duplicate_and_digest() {
    let fake = Arc::new(FakeServer {
        duplicate: true,
        ..Default::default()
    });
    framework(&fake)
        .given(vec![created()])
        .when(publish("orders.new", &[("Nats-Msg-Id", "o-1"), ("k", "v")]))
        .then_expect_events(vec![StreamEvent::MessagePublished {
            cluster_id: CLUSTER.into(),
            stream: "ORDERS".into(),
            message: PublishedMessage {
                subject: "orders.new".into(),
                sequence: 7,
                duplicate: true,
                size: 5,
                header_names: vec!["Nats-Msg-Id".into(), "k".into()],
                // SHA-256 of "hello".
                payload_sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into(),
            },
        }]);
    assert_eq!(fake.calls(), ["publish c1/ORDERS orders.new"]);
}

#[test]
fn publish_needs_a_valid_subject() {
    is_refused(
        vec![created()],
        publish("orders..new", &[]),
        "subject: 'orders..new' is not a valid subject: it has an empty token (two dots, or a dot at either end)",
    );
}

#[test]
fn publish_needs_a_subject_without_wildcards() {
    for subject in ["orders.*", "orders.>"] {
        is_refused(
            vec![created()],
            publish(subject, &[]),
            "subject: publish to a concrete subject, without wildcards",
        );
    }
}

#[test]
fn a_sealed_stream_accepts_no_messages() {
    let mut sealed = orders();
    sealed.sealed = true;
    is_refused(
        vec![created_with(sealed)],
        publish("orders.new", &[]),
        "stream: the stream is sealed and accepts no messages",
    );
}

#[test]
fn header_names_are_printable_ascii_without_colons_or_spaces() {
    for name in ["", "X Bad", "a:b", "caf\u{e9}"] {
        is_refused(
            vec![created()],
            publish("orders.new", &[(name, "v")]),
            &format!("headers: '{name}' is not a valid header name; use printable ASCII without ':' or spaces"),
        );
    }
}

#[test]
fn header_values_are_on_one_line() {
    for value in ["a\nb", "a\rb"] {
        is_refused(
            vec![created()],
            publish("orders.new", &[("k", value)]),
            "headers: the value of 'k' must be on one line",
        );
    }
}

#[test]
fn publishing_to_a_deleted_stream_is_not_found() {
    is_not_found_once_deleted(publish("orders.new", &[]));
}

#[test]
fn a_server_failure_on_publish_records_nothing() {
    let fake = Arc::new(FakeServer::failing(ServiceError::Unavailable("no responders".into())));
    let err = framework(&fake)
        .given(vec![created()])
        .when(publish("orders.new", &[]))
        .inspect_result()
        .unwrap_err();
    assert_eq!(
        err,
        StreamError::Service(ServiceError::Unavailable("no responders".into()))
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

// --- observe ------------------------------------------------------------------------------

#[test]
fn observing_an_unknown_stream_records_its_creation_outside_the_console() {
    let fake = Arc::new(FakeServer::observing(Some(orders())));
    framework(&fake)
        .given_no_previous_events()
        .when(observe())
        .then_expect_events(vec![StreamEvent::Created {
            cluster_id: CLUSTER.into(),
            config: orders(),
            origin: external(),
        }]);
    assert_eq!(fake.calls(), ["read c1/ORDERS"]);
}

#[test]
fn observing_a_stream_that_never_existed_records_nothing() {
    let fake = Arc::new(FakeServer::observing(None));
    framework(&fake)
        .given_no_previous_events()
        .when(observe())
        .then_expect_events(vec![]);
}

#[test]
fn observing_an_already_deleted_stream_records_nothing() {
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
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.to_string(), "no responders");
}

#[test]
fn metadata_and_placement_tags_take_no_control_characters_and_keys_are_not_empty() {
    let mut c = orders();
    c.metadata.insert("team".into(), "pay\u{7}ments".into());
    create_is_refused(
        c,
        "metadata: the value of metadata key 'team' \"pay\\u{7}ments\" contains a control character (U+0007); remove it",
    );
    let mut c = orders();
    c.metadata.insert(" ".into(), "x".into());
    create_is_refused(c, "metadata: a metadata key must not be empty; give each entry a key");
    let mut c = orders();
    c.placement = Some(crate::stream::Placement {
        cluster: None,
        tags: vec!["az\n1".into()],
    });
    create_is_refused(
        c,
        "placement.tags: the placement tag \"az\\n1\" contains a control character (U+000A); remove it",
    );
    let mut c = orders();
    c.metadata.insert("team".into(), "payments".into());
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn an_update_may_not_empty_the_subjects_of_a_stream_that_has_some() {
    let current = orders();
    let mut next = current.clone();
    next.subjects.clear();
    update_is_refused(
        current,
        next,
        "subjects: must not be empty: leave subjects out to keep them, or list the subjects the stream should store",
    );
    // A stream made without subjects (stored on its name) stays so.
    let mut bare = orders();
    bare.subjects.clear();
    assert!(bare.clone().check_update_from(&bare).is_ok());
}

#[test]
fn a_control_character_in_a_name_is_called_what_it_is() {
    let mut c = orders();
    c.name = "ord\u{0}ers".into();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("contains a control character (U+0000)"), "{err}");
}
