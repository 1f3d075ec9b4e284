//! Given/when/then tests of the cluster aggregate (moved from `cluster.rs`).

use cqrs_es::test::TestFramework;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::DateTime;

use crate::cluster::*;
use crate::{DomainError, ErrorKind, Sealed};

struct FakeServices {
    taken: Vec<String>,
}

#[async_trait]
impl ClusterServices for FakeServices {
    async fn name_in_use(&self, _organization: &str, name: &str, _except_id: &str) -> Result<bool, String> {
        Ok(self.taken.iter().any(|t| t.eq_ignore_ascii_case(name)))
    }
    async fn probe(&self, _spec: &ClusterSpec) -> ConnectionTest {
        ConnectionTest {
            ok: true,
            tested_at: DateTime::from_timestamp(0, 0).unwrap(),
            server_version: Some("2.15.1".into()),
            server_name: Some("n1".into()),
            jetstream: Some(true),
            rtt_micros: Some(100),
            account: None,
            error: None,
        }
    }
}

fn framework(taken: &[&str]) -> TestFramework<Cluster> {
    let services: Arc<dyn ClusterServices> = Arc::new(FakeServices {
        taken: taken.iter().map(|s| s.to_string()).collect(),
    });
    TestFramework::with(services)
}

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        urls: vec!["nats://127.0.0.1:4222".into()],
        ..Default::default()
    }
}

fn registered(name: &str) -> ClusterEvent {
    ClusterEvent::Registered {
        id: "c1".into(),
        organization: "default".into(),
        spec: spec(name),
    }
}

#[test]
fn register_normalizes_the_spec() {
    let mut raw = spec("  prod ");
    raw.urls = vec!["127.0.0.1:4222".into(), "nats://127.0.0.1:4222".into()];
    raw.tags = vec!["b".into(), "a".into(), "a".into()];
    let mut expected = spec("prod");
    expected.tags = vec!["a".into(), "b".into()];
    framework(&[])
        .given_no_previous_events()
        .when(ClusterCommand::Register {
            id: "c1".into(),
            organization: "default".into(),
            spec: raw,
        })
        .then_expect_events(vec![ClusterEvent::Registered {
            id: "c1".into(),
            organization: "default".into(),
            spec: expected,
        }]);
}

#[test]
fn register_refuses_an_empty_name() {
    framework(&[])
        .given_no_previous_events()
        .when(ClusterCommand::Register {
            id: "c1".into(),
            organization: "default".into(),
            spec: spec("  "),
        })
        .then_expect_error_message("name: must not be empty; give the cluster a short name such as 'prod-eu'");
}

#[test]
fn register_refuses_a_bad_url() {
    let mut s = spec("prod");
    s.urls = vec!["http://example.com".into()];
    let err = framework(&[])
        .given_no_previous_events()
        .when(ClusterCommand::Register {
            id: "c1".into(),
            organization: "default".into(),
            spec: s,
        })
        .inspect_result()
        .unwrap_err();
    assert!(err.to_string().contains("scheme must be nats, tls, ws or wss"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Validation);
}

#[test]
fn register_refuses_credentials_in_the_url() {
    let mut s = spec("prod");
    s.urls = vec!["nats://alice:secret@127.0.0.1:4222".into()];
    let err = framework(&[])
        .given_no_previous_events()
        .when(ClusterCommand::Register {
            id: "c1".into(),
            organization: "default".into(),
            spec: s,
        })
        .inspect_result()
        .unwrap_err();
    assert!(err.to_string().contains("remove the credentials"), "{err}");
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn register_refuses_a_duplicate_name() {
    framework(&["Prod"])
        .given_no_previous_events()
        .when(ClusterCommand::Register {
            id: "c1".into(),
            organization: "default".into(),
            spec: spec("prod"),
        })
        .then_expect_error(ClusterError::NameInUse("prod".into()));
}

#[test]
fn register_twice_is_a_conflict() {
    framework(&[])
        .given(vec![registered("prod")])
        .when(ClusterCommand::Register {
            id: "c1".into(),
            organization: "default".into(),
            spec: spec("other"),
        })
        .then_expect_error(ClusterError::AlreadyRegistered("c1".into()));
}

#[test]
fn update_records_only_what_changed() {
    framework(&[])
        .given(vec![registered("prod")])
        .when(ClusterCommand::Update {
            changes: ClusterChanges {
                name: Some("prod".into()),
                description: Some("EU".into()),
                ..Default::default()
            },
        })
        .then_expect_events(vec![ClusterEvent::Updated {
            changes: ClusterChanges {
                description: Some("EU".into()),
                ..Default::default()
            },
        }]);
}

#[test]
fn an_update_that_changes_nothing_emits_nothing() {
    framework(&[])
        .given(vec![registered("prod")])
        .when(ClusterCommand::Update {
            changes: ClusterChanges {
                name: Some("prod".into()),
                ..Default::default()
            },
        })
        .then_expect_events(vec![]);
}

#[test]
fn commands_on_a_removed_cluster_are_not_found() {
    framework(&[])
        .given(vec![registered("prod"), ClusterEvent::Removed { name: "prod".into() }])
        .when(ClusterCommand::Remove)
        .then_expect_error(ClusterError::NotFound);
}

#[test]
fn mutual_tls_needs_both_halves() {
    let mut s = spec("prod");
    s.tls.client_cert_pem = Some("-----BEGIN CERTIFICATE-----".into());
    let err = framework(&[])
        .given_no_previous_events()
        .when(ClusterCommand::Register {
            id: "c1".into(),
            organization: "default".into(),
            spec: s,
        })
        .inspect_result()
        .unwrap_err();
    assert!(err.to_string().starts_with("tls: give both"), "{err}");
}

fn with_password(sealed: &str) -> ClusterEvent {
    let mut s = spec("prod");
    s.auth = ClusterAuth::UserPassword {
        username: "u".into(),
        password: Sealed::from_sealed_string(sealed.into()),
    };
    ClusterEvent::Registered {
        id: "c1".into(),
        organization: "default".into(),
        spec: s,
    }
}

#[test]
fn an_update_that_keeps_the_secret_records_the_stored_one() {
    framework(&[])
        .given(vec![with_password("v1:k:stored")])
        .when(ClusterCommand::Update {
            changes: ClusterChanges {
                auth: Some(ClusterAuth::UserPassword {
                    username: "v".into(),
                    password: Sealed::keep(),
                }),
                ..Default::default()
            },
        })
        .then_expect_events(vec![ClusterEvent::Updated {
            changes: ClusterChanges {
                auth: Some(ClusterAuth::UserPassword {
                    username: "v".into(),
                    password: Sealed::from_sealed_string("v1:k:stored".into()),
                }),
                ..Default::default()
            },
        }]);
}

#[test]
fn keeping_a_secret_of_another_kind_is_refused() {
    let err = framework(&[])
        .given(vec![with_password("v1:k:stored")])
        .when(ClusterCommand::Update {
            changes: ClusterChanges {
                auth: Some(ClusterAuth::Token { token: Sealed::keep() }),
                ..Default::default()
            },
        })
        .inspect_result()
        .unwrap_err();
    assert!(err.to_string().starts_with("auth.token: required"), "{err}");
}

#[test]
fn test_connection_records_the_probe() {
    let result = framework(&[])
        .given(vec![registered("prod")])
        .when(ClusterCommand::TestConnection)
        .inspect_result()
        .unwrap();
    assert!(matches!(&result[..], [ClusterEvent::ConnectionTested { result }] if result.ok));
}
