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
    let err = register_with(|s| s.urls = vec!["http://example.com".into()]).unwrap_err();
    assert!(err.to_string().contains("scheme must be nats, tls, ws or wss"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Validation);
}

#[test]
fn register_refuses_credentials_in_the_url() {
    let err = register_with(|s| s.urls = vec!["nats://alice:secret@127.0.0.1:4222".into()]).unwrap_err();
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
    let err = register_with_tls(|t| t.client_cert_pem = Some(CERT.into())).unwrap_err();
    assert!(err.starts_with("tls: give both"), "{err}");
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

/// A real self-signed certificate (P-256, CN jsconsole-test), for checks of PEM input.
const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBiTCCAS+gAwIBAgIUD/nCRazfMDD92o65KzdTNzR5x+8wCgYIKoZIzj0EAwIw\nGTEXMBUGA1UEAwwOanNjb25zb2xlLXRlc3QwIBcNMjYxMjA3MTIyMjU4WhgPMjEy\nNjExMTMxMjIyNThaMBkxFzAVBgNVBAMMDmpzY29uc29sZS10ZXN0MFkwEwYHKoZI\nzj0CAQYIKoZIzj0DAQcDQgAEAy8AXgeTP3dOD34oWx7yTySr+KVH8knqEWBkNIT/\nHzB0L8MjiMyHxB9pA1NhGDhQa2rtUWyZlasbz8ZAHbfsQ6NTMFEwHQYDVR0OBBYE\nFKYcoL4R3YYui9tlbxx/8cSJX/X0MB8GA1UdIwQYMBaAFKYcoL4R3YYui9tlbxx/\n8cSJX/X0MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAJo9B9rW\n4d+bp45n8cJP3qApxFl64R2S9Z0n1S5a14doAiA24K8fYQVxAutrQpegjeKZ/deu\nORAPSDOrGrUl+sBibw==\n-----END CERTIFICATE-----";

/// Registers cluster "prod" with `change` made to its spec: the error, if refused.
fn register_with(change: impl FnOnce(&mut ClusterSpec)) -> Result<(), ClusterError> {
    let mut s = spec("prod");
    change(&mut s);
    framework(&[])
        .given_no_previous_events()
        .when(ClusterCommand::Register {
            id: "c1".into(),
            organization: "default".into(),
            spec: s,
        })
        .inspect_result()
        .map(|_| ())
}

fn register_with_tls(tls: impl FnOnce(&mut crate::cluster::TlsOptions)) -> Result<(), String> {
    register_with(|s| tls(&mut s.tls)).map_err(|e| e.to_string())
}

#[test]
fn a_ca_certificate_must_be_pem_certificates() {
    assert_eq!(register_with_tls(|t| t.ca_cert_pem = Some(CERT.into())), Ok(()));
    // Two certificates (a bundle) with surrounding white space.
    let bundle = format!("\n{CERT}\n\n{CERT}\n");
    assert_eq!(register_with_tls(|t| t.ca_cert_pem = Some(bundle)), Ok(()));
    for (pem, says) in [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("/etc/ssl/ca.pem", "text outside a -----BEGIN/-----END block"),
        ("-----BEGIN CERTIFICATE-----", "has no -----END CERTIFICATE----- line"),
        (
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----",
            "holds a PRIVATE KEY, not a CERTIFICATE",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----",
            "body is not base64",
        ),
        (
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IERFUg==\n-----END CERTIFICATE-----",
            "not DER",
        ),
        // The first two lines of a real certificate: a DER sequence cut short.
        (&format!("{}\n-----END CERTIFICATE-----", &CERT[..157]), "cut short"),
    ] {
        let err = register_with_tls(|t| t.ca_cert_pem = Some(pem.into())).unwrap_err();
        assert!(err.starts_with("tls.caCertPem: "), "{pem:?}: {err}");
        assert!(err.contains(says), "{pem:?}: {err}");
        assert!(err.contains("-----BEGIN CERTIFICATE-----"), "says what to send: {err}");
    }
    let err = register_with_tls(|t| t.client_cert_pem = Some("cert.pem".into())).unwrap_err();
    assert!(err.starts_with("tls.clientCertPem: "), "{err}");
}

#[test]
fn tags_with_control_characters_are_refused() {
    let err = register_with(|s| s.tags = vec!["eu\u{1b}[31m".into()])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("tags: the tag "), "{err}");
    assert!(err.contains("control character (U+001B)"), "{err}");
}
