//! Several consoles on one home NATS serve interchangeably: invariants such as unique names
//! hold because the write side enforces them (a claim committed in the same atomic batch as
//! the events), not because a view was checked. Real nats-server, real consoles, real HTTP.

use std::time::Duration;

use jsc_testkit::{NatsServer, TestApp};
use serde_json::{Value, json};

const REGISTER: &str = "mutation($i: RegisterClusterInput!) { registerCluster(input: $i) { cluster { id } } }";

/// Replicas of one deployment: the same keys, as `--secret-key` and `--signing-key` give them.
fn shared_keys(c: &mut jsc_cli::Config) {
    use base64::Engine;
    let key = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    c.secret_keys = vec![key(7)];
    c.signing_keys = vec![key(9)];
}

/// Fires `per_replica` registrations of `name` at once on each of `replicas`; returns the
/// ids registered and the refusals' (code, message).
async fn race(
    replicas: &[&TestApp],
    per_replica: usize,
    name: &str,
    url: &str,
) -> (Vec<String>, Vec<(String, String)>) {
    let input = json!({"i": {"name": name, "urls": [url]}});
    let attempts = replicas
        .iter()
        .flat_map(|app| std::iter::repeat_n(*app, per_replica))
        .map(|app| app.graphql(REGISTER, input.clone()));
    let answers: Vec<Value> = futures::future::join_all(attempts).await;
    let mut ids = Vec::new();
    let mut refused = Vec::new();
    for a in answers {
        match a["data"]["registerCluster"]["cluster"]["id"].as_str() {
            Some(id) => ids.push(id.to_string()),
            None => refused.push(jsc_testkit::first_error(&a)),
        }
    }
    (ids, refused)
}

fn assert_one_won(round: &str, ids: &[String], refused: &[(String, String)], name: &str) {
    assert_eq!(
        ids.len(),
        1,
        "{round}: exactly one registration of '{name}' succeeds: {ids:?} {refused:?}"
    );
    for (code, message) in refused {
        assert_eq!(code, "VALIDATION", "{round}: {message}");
        assert!(
            message.contains(&format!("a cluster named '{name}' already exists")),
            "{round}: {message}"
        );
    }
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_commit_exactly_one_on_one_replica_and_on_two() {
    let managed = NatsServer::start();
    let first = TestApp::spawn_with(NatsServer::start(), shared_keys).await;
    let second = TestApp::spawn_with(first.nats.shared(), shared_keys).await;
    let rounds = 15;
    for round in 0..rounds {
        // One replica: four requests at once (the view cannot have any of them yet).
        let name = format!("one-{round}");
        let (ids, refused) = race(&[&first], 4, &name, managed.url()).await;
        assert_one_won(&format!("one replica, round {round}"), &ids, &refused, &name);
        // Two replicas: two at once on each. Case does not make another name.
        let name = format!("Two-{round}");
        let (ids, refused) = race(&[&first, &second], 2, &name, managed.url()).await;
        assert_one_won(&format!("two replicas, round {round}"), &ids, &refused, &name);
        let (ids, refused) = race(&[&second], 1, &name.to_lowercase(), managed.url()).await;
        assert!(
            ids.is_empty(),
            "'{}' is '{name}' in another case: {ids:?}",
            name.to_lowercase()
        );
        assert_eq!(refused[0].0, "VALIDATION");
    }
    // The events agree: one registration per name, whatever the views showed.
    let names: Vec<String> = first
        .events(Some("cluster"))
        .await
        .iter()
        .filter(|e| e.event_type == "ClusterRegistered")
        .map(|e| {
            e.payload["Registered"]["spec"]["name"]
                .as_str()
                .expect("a registration names its cluster")
                .to_lowercase()
        })
        .collect();
    assert_eq!(names.len(), 2 * rounds, "{names:?}");
    let mut distinct = names.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), names.len(), "no name registered twice: {names:?}");
}

#[tokio::test]
async fn a_name_is_free_again_after_its_cluster_is_renamed_or_removed_and_a_rename_cannot_take_a_held_name() {
    let managed = NatsServer::start();
    let first = TestApp::spawn_with(NatsServer::start(), shared_keys).await;
    let second = TestApp::spawn_with(first.nats.shared(), shared_keys).await;
    let url = managed.url();
    let a = first.register_cluster(json!({"name": "alpha", "urls": [url]})).await;
    let b = second.register_cluster(json!({"name": "beta", "urls": [url]})).await;

    // A rename onto a held name is refused by the write side, even on the other replica.
    let (code, message) = second
        .error(
            "mutation($i: UpdateClusterInput!) { updateCluster(input: $i) { cluster { id } } }",
            json!({"i": {"id": b, "name": "ALPHA"}}),
        )
        .await;
    assert_eq!(code, "VALIDATION", "{message}");
    assert!(message.contains("already exists"), "{message}");

    // A rename frees the old name at once: the other replica may register it next.
    first.update_cluster(&a, json!({"name": "gamma"})).await;
    let again = second.register_cluster(json!({"name": "alpha", "urls": [url]})).await;
    assert_ne!(again, a);
    // Removing frees the name too.
    first.remove_cluster(&b).await;
    second.register_cluster(json!({"name": "beta", "urls": [url]})).await;
    // And the renamed cluster holds its new name.
    let (code, _) = second
        .error(REGISTER, json!({"i": {"name": "gamma", "urls": [url]}}))
        .await;
    assert_eq!(code, "VALIDATION");

    // Claims are events: who took and released each name, when, in the verified chain.
    let claims = first.events(Some("claim")).await;
    let alpha: Vec<(&str, &str)> = claims
        .iter()
        .filter(|e| e.aggregate_id.ends_with("/alpha"))
        .map(|e| (e.event_type.as_str(), e.actor()))
        .collect();
    let owner = first.owner_actor();
    assert_eq!(
        alpha,
        vec![
            ("ClaimTaken", owner.as_str()),
            ("ClaimReleased", owner.as_str()),
            ("ClaimTaken", owner.as_str())
        ],
        "{claims:?}"
    );
    let client = first.nats.client().await;
    let report = jsc_eventstore::verify::verify_stream(&client, &first.event_config().stream, |_, _| {})
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[tokio::test]
async fn two_replicas_starting_at_once_make_one_owner_account() {
    let nats = NatsServer::start();
    let shared = nats.shared();
    let (first, second) = tokio::join!(
        TestApp::spawn_with(nats, shared_keys),
        TestApp::spawn_with(shared, shared_keys)
    );
    // Both signed their owner in; it is the same account.
    assert!(
        !first.owner_id.is_empty() && first.owner_id == second.owner_id,
        "{} {}",
        first.owner_id,
        second.owner_id
    );
    let users = first.events(Some("user")).await;
    let registered = users.iter().filter(|e| e.event_type == "UserRegistered").count();
    assert_eq!(registered, 1, "one account for the owner's email");
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let me = second.data("{ me { id email } }", json!({})).await;
            if me["me"]["id"] == first.owner_id.as_str() {
                return;
            }
        }
    })
    .await
    .expect("the second replica knows the owner");
}

#[tokio::test]
async fn sign_in_limits_and_lockouts_hold_across_replicas() {
    let limits = |attempts: usize, failures: usize| {
        move |c: &mut jsc_cli::Config| {
            shared_keys(c);
            c.auth.attempts_per_minute = attempts;
            c.auth.max_failures = failures;
        }
    };
    // Per address: four attempts a minute between both replicas. Each spawn signed its
    // owner in once: two attempts from 127.0.0.1 already.
    let first = TestApp::spawn_with(NatsServer::start(), limits(4, 100)).await;
    let second = TestApp::spawn_with(first.nats.shared(), limits(4, 100)).await;
    let body = first.try_login("guess@example.com", "guess-guess-guess").await;
    assert_eq!(jsc_testkit::code(&body), "UNAUTHENTICATED", "{body}");
    let body = second.try_login("guess@example.com", "guess-guess-guess").await;
    assert_eq!(jsc_testkit::code(&body), "UNAUTHENTICATED", "{body}");
    // Four counted, whichever replica saw them: the fifth is refused at both.
    for app in [&first, &second] {
        let body = app
            .try_login(jsc_testkit::OWNER_EMAIL, jsc_testkit::OWNER_PASSWORD)
            .await;
        assert_eq!(jsc_testkit::code(&body), "RATE_LIMITED", "{body}");
    }

    // Per account: three failures between both replicas lock it at both.
    let first = TestApp::spawn_with(NatsServer::start(), limits(100, 3)).await;
    let second = TestApp::spawn_with(first.nats.shared(), limits(100, 3)).await;
    for app in [&first, &second, &first] {
        let body = app.try_login(jsc_testkit::OWNER_EMAIL, "not the password").await;
        assert_eq!(jsc_testkit::code(&body), "UNAUTHENTICATED", "{body}");
    }
    let answers: Vec<(String, String)> = futures::future::join_all(
        [&second, &first].map(|app| app.try_login(jsc_testkit::OWNER_EMAIL, jsc_testkit::OWNER_PASSWORD)),
    )
    .await
    .iter()
    .map(jsc_testkit::first_error)
    .collect();
    for (code, message) in &answers {
        assert_eq!(
            code, "RATE_LIMITED",
            "locked at every replica, even with the right password: {answers:?}"
        );
        assert!(message.contains("wait"), "{message}");
    }
    // Another account from the same address is not locked.
    let body = second.try_login("someone@example.com", "guess-guess-guess").await;
    assert_eq!(jsc_testkit::code(&body), "UNAUTHENTICATED", "{body}");
}
