//! Given/when/then tests of the stream aggregate (moved from `stream.rs`).

use std::sync::Mutex;

use cqrs_es::test::TestFramework;

use std::sync::Arc;

use async_trait::async_trait;

use crate::stream::*;
use crate::{DomainError, ErrorKind};

#[derive(Default)]
struct FakeServer {
    calls: Mutex<Vec<String>>,
    observed: Option<StreamConfig>,
}

#[async_trait]
impl StreamServices for FakeServer {
    async fn create_stream(&self, _: &str, config: &StreamConfig) -> Result<StreamConfig, ServiceError> {
        self.calls.lock().unwrap().push(format!("create {}", config.name));
        let mut stored = config.clone();
        stored.metadata.insert("_nats.ver".into(), "2.15.1".into());
        Ok(stored)
    }
    async fn update_stream(&self, _: &str, config: &StreamConfig) -> Result<StreamConfig, ServiceError> {
        Ok(config.clone())
    }
    async fn delete_stream(&self, _: &str, _: &str) -> Result<(), ServiceError> {
        Ok(())
    }
    async fn stream_config(&self, _: &str, name: &str) -> Result<Option<StreamConfig>, ServiceError> {
        self.calls.lock().unwrap().push(format!("read {name}"));
        Ok(self.observed.clone())
    }
    async fn purge_stream(&self, _: &str, _: &str, _: &PurgeRequest) -> Result<u64, ServiceError> {
        Ok(3)
    }
    async fn publish(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &[(String, String)],
        _: &[u8],
    ) -> Result<(u64, bool), ServiceError> {
        Ok((7, false))
    }

    async fn delete_message(&self, _: &str, _: &str, _: u64, _: bool) -> Result<(), ServiceError> {
        Ok(())
    }
}

fn fw() -> TestFramework<Stream> {
    observing(None)
}

fn observing(observed: Option<StreamConfig>) -> TestFramework<Stream> {
    let svc: Arc<dyn StreamServices> = Arc::new(FakeServer {
        observed,
        ..Default::default()
    });
    TestFramework::with(svc)
}

fn orders() -> StreamConfig {
    let mut c = StreamConfig::named("ORDERS");
    c.subjects = vec!["orders.>".into()];
    c
}

fn created() -> StreamEvent {
    StreamEvent::Created {
        cluster_id: "c1".into(),
        config: orders(),
        origin: ChangeOrigin::Console,
    }
}

#[test]
fn create_records_the_servers_config_without_its_own_metadata() {
    fw().given_no_previous_events()
        .when(StreamCommand::Create {
            cluster_id: "c1".into(),
            config: orders(),
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn overlapping_subjects_are_refused_before_the_server_is_asked() {
    let mut c = orders();
    c.subjects.push("orders.eu".into());
    let err = fw()
        .given_no_previous_events()
        .when(StreamCommand::Create {
            cluster_id: "c1".into(),
            config: c,
        })
        .inspect_result()
        .unwrap_err();
    assert!(err.to_string().contains("overlap"), "{err}");
}

#[test]
fn storage_cannot_change() {
    let mut c = orders();
    c.storage = Storage::Memory;
    let err = fw()
        .given(vec![created()])
        .when(StreamCommand::Update { config: c })
        .inspect_result()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert!(
        err.to_string()
            .starts_with("storage: the storage type cannot be changed"),
        "{err}"
    );
}

#[test]
fn delete_needs_the_name_repeated() {
    let err = fw()
        .given(vec![created()])
        .when(StreamCommand::Delete {
            confirm_name: "orders".into(),
        })
        .inspect_result()
        .unwrap_err();
    assert!(err.to_string().contains("type the stream's name ('ORDERS')"), "{err}");
}

#[test]
fn observing_the_known_config_records_nothing() {
    observing(Some(orders()))
        .given(vec![created()])
        .when(StreamCommand::Observe {
            cluster_id: "c1".into(),
            name: "ORDERS".into(),
            origin: ChangeOrigin::External {
                observed_via: "reconcile".into(),
                client: None,
            },
            seen: Seen::Nothing,
        })
        .then_expect_events(vec![]);
}

fn observe_seen(seen: StreamConfig) -> StreamCommand {
    StreamCommand::Observe {
        cluster_id: "c1".into(),
        name: "ORDERS".into(),
        origin: ChangeOrigin::External {
            observed_via: "advisory".into(),
            client: Some("nats-cli".into()),
        },
        seen: Seen::Answer(Box::new(seen)),
    }
}

#[test]
fn a_creation_seen_in_its_answer_is_recorded_without_asking_the_server() {
    // The server has it gone since: the answer is still what was made, and the deletion
    // comes in an observation of its own.
    let fake = Arc::new(FakeServer::default());
    let svc: Arc<dyn StreamServices> = fake.clone();
    TestFramework::<Stream>::with(svc)
        .given_no_previous_events()
        .when(observe_seen(orders()))
        .then_expect_events(vec![StreamEvent::Created {
            cluster_id: "c1".into(),
            config: orders(),
            origin: ChangeOrigin::External {
                observed_via: "advisory".into(),
                client: Some("nats-cli".into()),
            },
        }]);
    assert_eq!(
        *fake.calls.lock().unwrap(),
        Vec::<String>::new(),
        "the server was asked"
    );
}

#[test]
fn an_answer_seen_for_a_known_stream_is_checked_against_the_server() {
    // The answer may be older than the console's own change to the stream: what the
    // server has now is recorded, not the answer.
    let mut stale = orders();
    stale.max_msgs = 9;
    let mut now = orders();
    now.max_msgs = 5;
    let fake = Arc::new(FakeServer {
        observed: Some(now.clone()),
        ..Default::default()
    });
    let svc: Arc<dyn StreamServices> = fake.clone();
    TestFramework::<Stream>::with(svc)
        .given(vec![created()])
        .when(observe_seen(stale))
        .then_expect_events(vec![StreamEvent::Updated {
            cluster_id: "c1".into(),
            before: orders(),
            after: now,
            origin: ChangeOrigin::External {
                observed_via: "advisory".into(),
                client: Some("nats-cli".into()),
            },
        }]);
    assert_eq!(*fake.calls.lock().unwrap(), ["read ORDERS"]);
}

#[test]
fn observing_a_change_records_before_and_after() {
    let mut after = orders();
    after.max_msgs = 10;
    let origin = ChangeOrigin::External {
        observed_via: "advisory".into(),
        client: Some("nats-cli".into()),
    };
    observing(Some(after.clone()))
        .given(vec![created()])
        .when(StreamCommand::Observe {
            cluster_id: "c1".into(),
            name: "ORDERS".into(),
            origin: origin.clone(),
            seen: Seen::Nothing,
        })
        .then_expect_events(vec![StreamEvent::Updated {
            cluster_id: "c1".into(),
            before: orders(),
            after,
            origin,
        }]);
}

#[test]
fn observing_a_vanished_stream_records_its_deletion() {
    let origin = ChangeOrigin::External {
        observed_via: "reconcile".into(),
        client: None,
    };
    observing(None)
        .given(vec![created()])
        .when(StreamCommand::Observe {
            cluster_id: "c1".into(),
            name: "ORDERS".into(),
            origin: origin.clone(),
            seen: Seen::Nothing,
        })
        .then_expect_events(vec![StreamEvent::Deleted {
            cluster_id: "c1".into(),
            name: "ORDERS".into(),
            last_config: orders(),
            origin,
        }]);
}

#[test]
fn publish_records_a_digest_not_the_payload() {
    let events = fw()
        .given(vec![created()])
        .when(StreamCommand::Publish {
            subject: "orders.new".into(),
            headers: vec![("k".into(), "v".into())],
            payload: b"hello".to_vec(),
        })
        .inspect_result()
        .unwrap();
    let StreamEvent::MessagePublished { message, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(message.sequence, 7);
    assert_eq!(
        message.payload_sha256,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
}
