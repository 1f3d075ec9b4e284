//! The event store against a real nats-server: concurrency, atomicity, idempotency,
//! metadata, upcasting and reading back in order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SemanticVersionEventUpcaster;
use cqrs_es::{Aggregate, DomainEvent, EventStore};
use jsc_eventstore::{CommandContext, CommandError, Error, EventStoreConfig, JetStreamEventStore, Repository};
use jsc_testkit::NatsServer;
use serde::{Deserialize, Serialize};

/// A small aggregate for exercising the store: a counter whose increments carry a token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counter {
    total: u64,
    tokens: Vec<String>,
}

#[derive(Debug, Clone)]
enum CounterCommand {
    Add { token: String },
    AddMany { tokens: Vec<String> },
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum CounterEvent {
    Added { token: String, by: u64 },
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        "Added".into()
    }
    fn event_version(&self) -> String {
        "2.0".into()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("refused")]
struct CounterError;

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = CounterError;
    type Services = ();

    async fn handle(&mut self, command: CounterCommand, _: &(), sink: &EventSink<Self>) -> Result<(), CounterError> {
        match command {
            CounterCommand::Add { token } => sink.write(CounterEvent::Added { token, by: 1 }, self).await,
            CounterCommand::AddMany { tokens } => {
                for token in tokens {
                    sink.write(CounterEvent::Added { token, by: 1 }, self).await;
                }
            }
            CounterCommand::Refuse => return Err(CounterError),
        }
        Ok(())
    }

    fn apply(&mut self, event: CounterEvent) {
        let CounterEvent::Added { token, by } = event;
        self.total += by;
        self.tokens.push(token);
    }
}

async fn store(server: &NatsServer) -> JetStreamEventStore {
    JetStreamEventStore::open(server.client().await, EventStoreConfig::default())
        .await
        .expect("open the event store")
}

fn ctx() -> CommandContext {
    CommandContext {
        actor: "user:tester".into(),
        correlation_id: "corr-1".into(),
        causation_id: "cause-1".into(),
        client_addr: Some("127.0.0.1".into()),
        user_agent: Some("e2e".into()),
        organization: Some("acme".into()),
        receipt: Default::default(),
    }
}

#[tokio::test]
async fn racing_commands_commit_exactly_once_or_conflict() {
    let server = NatsServer::start();
    let store = store(&server).await;
    // One repository per task, as sixteen console replicas would have: they only learn of
    // each other's commits through the stream's sequence check.
    let mut tasks = Vec::new();
    for t in 0..16 {
        let repo = Arc::new(Repository::<Counter>::new(store.clone(), ()));
        tasks.push(tokio::spawn(async move {
            let mut ok = Vec::new();
            let mut conflicts = 0;
            for i in 0..50 {
                let token = format!("t{t}-{i}");
                match repo
                    .execute("shared", CounterCommand::Add { token: token.clone() }, &ctx())
                    .await
                {
                    Ok(c) => ok.push((token, c.stream_sequence, c.version)),
                    Err(CommandError::Conflict) => conflicts += 1,
                    Err(other) => panic!("a failure other than a conflict: {other:?}"),
                }
            }
            (ok, conflicts)
        }));
    }
    let mut succeeded = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (ok, c) = t.await.unwrap();
        succeeded.extend(ok);
        conflicts += c;
    }
    assert_eq!(succeeded.len() + conflicts, 16 * 50);
    assert!(!succeeded.is_empty());

    let subject = store.subject("counter", "shared");
    let stored = store.reader().read_subject(&subject, 1).await.unwrap();
    let stored_tokens: Vec<String> = stored
        .iter()
        .map(|r| r.payload["Added"]["token"].as_str().unwrap().to_string())
        .collect();
    // Every success is in the stream exactly once, and nothing else is.
    let unique: HashSet<&String> = stored_tokens.iter().collect();
    assert_eq!(unique.len(), stored_tokens.len(), "an event was written twice");
    let expected: HashSet<&String> = succeeded.iter().map(|(t, _, _)| t).collect();
    assert_eq!(unique, expected);
    // The aggregate sequence is gapless, and each reported stream sequence is where the
    // event really is.
    for (i, rec) in stored.iter().enumerate() {
        assert_eq!(rec.aggregate_sequence, i as u64 + 1);
    }
    let at: HashMap<&String, (u64, u64)> = stored_tokens
        .iter()
        .zip(&stored)
        .map(|(t, r)| (t, (r.stream_sequence, r.aggregate_sequence)))
        .collect();
    for (token, seq, version) in &succeeded {
        assert_eq!(at[token], (*seq, *version as u64), "{token}");
    }
    // A fresh load agrees with the stream.
    let fresh = Repository::<Counter>::new(store.clone(), ());
    let (state, version) = fresh.load("shared").await.unwrap();
    assert_eq!(version, stored.len());
    assert_eq!(state.total, stored.len() as u64);
}

#[tokio::test]
async fn a_command_on_an_aggregate_guessed_new_is_handled_again_against_its_history() {
    let server = NatsServer::start();
    let store = store(&server).await;
    // Another replica wrote two events; this repository has never seen the aggregate.
    let other = Repository::<Counter>::new(store.clone(), ());
    for token in ["a", "b"] {
        other
            .execute("known", CounterCommand::Add { token: token.into() }, &ctx())
            .await
            .unwrap();
    }
    let repo = Repository::<Counter>::new(store.clone(), ());
    // Guessed new, wrongly: the commit that expected no history conflicts, and the command
    // runs again on the real one.
    let done = repo
        .execute_as_new("known", CounterCommand::Add { token: "c".into() }, &ctx(), true)
        .await
        .unwrap();
    assert_eq!((done.version, done.state.total), (3, 3));
    assert_eq!(done.state.tokens, ["a", "b", "c"]);
    // Guessed new, rightly: the first event of its history.
    let done = repo
        .execute_as_new("fresh", CounterCommand::Add { token: "x".into() }, &ctx(), true)
        .await
        .unwrap();
    assert_eq!((done.version, done.state.total), (1, 1));
    // The stream agrees: gapless aggregate sequences, each event once.
    for (id, want) in [("known", vec!["a", "b", "c"]), ("fresh", vec!["x"])] {
        let stored = store
            .reader()
            .read_subject(&store.subject("counter", id), 1)
            .await
            .unwrap();
        let tokens: Vec<&str> = stored
            .iter()
            .map(|r| r.payload["Added"]["token"].as_str().unwrap())
            .collect();
        assert_eq!(tokens, want, "{id}");
        let sequences: Vec<u64> = stored.iter().map(|r| r.aggregate_sequence).collect();
        assert_eq!(sequences, (1..=want.len() as u64).collect::<Vec<_>>(), "{id}");
    }
    // The hash chain holds across the conflict.
    let report = jsc_eventstore::verify::verify_stream(&server.client().await, &store.config().stream, |_, _| {})
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[tokio::test]
async fn a_multi_event_command_is_all_or_nothing() {
    let server = NatsServer::start();
    let store = store(&server).await;
    let repo = Repository::<Counter>::new(store.clone(), ());
    repo.execute("a", CounterCommand::Add { token: "first".into() }, &ctx())
        .await
        .unwrap();
    let committed = repo
        .execute(
            "a",
            CounterCommand::AddMany {
                tokens: vec!["x".into(), "y".into(), "z".into()],
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(committed.version, 4);
    let subject = store.subject("counter", "a");
    let stored = store.reader().read_subject(&subject, 1).await.unwrap();
    assert_eq!(stored.len(), 4);
    let commit_ids: HashSet<&str> = stored[1..].iter().map(|r| r.commit_id.as_str()).collect();
    assert_eq!(commit_ids.len(), 1, "one commit id for the three events of one command");
    assert_eq!(committed.stream_sequence, stored[3].stream_sequence);

    // A three-event batch whose expectation is stale is refused whole.
    let ctx_map = ctx().to_metadata();
    let stale = store.records_for::<Counter>(
        "a",
        1,
        &[
            CounterEvent::Added {
                token: "p".into(),
                by: 1,
            },
            CounterEvent::Added {
                token: "q".into(),
                by: 1,
            },
            CounterEvent::Added {
                token: "r".into(),
                by: 1,
            },
        ],
        &ctx_map,
        None,
    );
    let err = store
        .append(&subject, stored[0].stream_sequence, &stale)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict), "{err:?}");
    let after = store.reader().read_subject(&subject, 1).await.unwrap();
    assert_eq!(after.len(), 4, "no event of the refused batch was stored");
}

#[tokio::test]
async fn a_retried_commit_is_not_written_twice() {
    let server = NatsServer::start();
    let store = store(&server).await;
    let subject = store.subject("counter", "retry");
    let meta = ctx().to_metadata();
    for n in [1usize, 3] {
        let id = format!("retry-{n}");
        let subject = store.subject("counter", &id);
        let events: Vec<CounterEvent> = (0..n)
            .map(|i| CounterEvent::Added {
                token: format!("r{i}"),
                by: 1,
            })
            .collect();
        let records = store.records_for::<Counter>(&id, 0, &events, &meta, None);
        // The first attempt lands but its ack is lost (the caller saw a timeout) ...
        let first = store.try_append(&subject, 0, &records, &[]).await.unwrap();
        assert!(!first.duplicate);
        // ... so the same commit is sent again with the same ids.
        let again = store.append_again(&subject, 0, &records).await.unwrap();
        assert!(again.duplicate, "the retry must be recognised as the same commit");
        assert_eq!(again.last_stream_sequence, first.last_stream_sequence);
        let stored = store.reader().read_subject(&subject, 1).await.unwrap();
        assert_eq!(stored.len(), n, "{n}-event commit written more than once");
        // A re-send of a commit that never landed is written normally.
        let other = store.records_for::<Counter>(&id, n, &events[..1], &meta, records.last().unwrap().hash.clone());
        let fresh = store
            .append_again(&subject, again.last_stream_sequence, &other)
            .await
            .unwrap();
        assert!(!fresh.duplicate);
        assert_eq!(store.reader().read_subject(&subject, 1).await.unwrap().len(), n + 1);
    }
    let _ = subject;
}

#[tokio::test]
async fn events_carry_their_metadata_and_read_back_in_order() {
    let server = NatsServer::start();
    let store = store(&server).await;
    let repo = Repository::<Counter>::new(store.clone(), ());
    for i in 0..5 {
        let id = format!("agg{}", i % 2);
        repo.execute(&id, CounterCommand::Add { token: format!("k{i}") }, &ctx())
            .await
            .unwrap();
    }
    // A refused command writes nothing.
    let err = repo.execute("agg0", CounterCommand::Refuse, &ctx()).await.unwrap_err();
    assert!(matches!(err, CommandError::Rejected(CounterError)));

    let all = store
        .reader()
        .read_range(&store.config().subjects(None), 1, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    let seqs: Vec<u64> = all.iter().map(|r| r.stream_sequence).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let tokens: Vec<&str> = all
        .iter()
        .map(|r| r.payload["Added"]["token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, vec!["k0", "k1", "k2", "k3", "k4"]);
    let rec = &all[2];
    assert_eq!(rec.aggregate_type, "counter");
    assert_eq!(rec.aggregate_id, "agg0");
    assert_eq!(rec.aggregate_sequence, 2);
    assert_eq!(rec.event_type, "Added");
    assert_eq!(rec.event_version, "2.0");
    assert_eq!(rec.metadata["actor"], "user:tester");
    assert_eq!(rec.metadata["correlation_id"], "corr-1");
    assert_eq!(rec.metadata["causation_id"], "cause-1");
    assert_eq!(rec.metadata["client_addr"], "127.0.0.1");
    assert!(!rec.event_id.is_empty() && !rec.commit_id.is_empty());
    assert!((chrono::Utc::now() - rec.timestamp).num_seconds() < 60);

    // The headers carry type and aggregate for filtering without parsing bodies.
    let stream = server
        .jetstream()
        .await
        .get_stream(&store.config().stream)
        .await
        .unwrap();
    let raw = stream.direct_get(3).await.unwrap();
    assert_eq!(raw.headers.get("Jsc-Event-Type").unwrap().as_str(), "Added");
    assert_eq!(raw.headers.get("Jsc-Aggregate-Type").unwrap().as_str(), "counter");
    assert_eq!(raw.headers.get("Jsc-Aggregate-Seq").unwrap().as_str(), "2");

    // Ranges are honoured.
    let mid = store
        .reader()
        .read_range(&store.subject("counter", "agg1"), 2, Some(4))
        .await
        .unwrap();
    assert_eq!(mid.iter().map(|r| r.stream_sequence).collect::<Vec<_>>(), vec![2, 4]);
}

#[tokio::test]
async fn the_stream_forbids_deleting_and_purging_events() {
    let server = NatsServer::start();
    let store = store(&server).await;
    let repo = Repository::<Counter>::new(store.clone(), ());
    repo.execute("x", CounterCommand::Add { token: "a".into() }, &ctx())
        .await
        .unwrap();
    let mut stream = server
        .jetstream()
        .await
        .get_stream(&store.config().stream)
        .await
        .unwrap();
    let info = stream.info().await.unwrap();
    assert!(info.config.deny_delete && info.config.deny_purge && info.config.allow_atomic_publish);
    assert_eq!(info.config.max_age, Duration::ZERO);
    assert!(
        stream.delete_message(1).await.is_err(),
        "deleting an event must be refused"
    );
    assert!(stream.purge().await.is_err(), "purging the stream must be refused");
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}

#[tokio::test]
async fn old_event_versions_are_upcast_on_load() {
    let server = NatsServer::start();
    let store = store(&server).await;
    // Version 1.0 of `Added` had `amount` where 2.0 has `by`, and no token.
    let subject = store.subject("counter", "old");
    let mut rec = store.records_for::<Counter>(
        "old",
        0,
        &[CounterEvent::Added {
            token: String::new(),
            by: 0,
        }],
        &ctx().to_metadata(),
        None,
    );
    rec[0].event_version = "1.0".into();
    rec[0].payload = serde_json::json!({"Added": {"amount": 7}});
    rec[0].rehash(None);
    store.append(&subject, 0, &rec).await.unwrap();

    let upcaster = SemanticVersionEventUpcaster::new(
        "Added",
        "2.0",
        Box::new(|mut v: serde_json::Value| {
            let amount = v["Added"]["amount"].take();
            serde_json::json!({"Added": {"token": "legacy", "by": amount}})
        }),
    );
    let upcasting = store.clone().with_upcasters(vec![Box::new(upcaster)]);
    let events = EventStore::<Counter>::load_events(&upcasting, "old").await.unwrap();
    assert_eq!(
        events[0].payload,
        CounterEvent::Added {
            token: "legacy".into(),
            by: 7
        }
    );
    let repo = Repository::<Counter>::new(upcasting, ());
    let (state, _) = repo.load("old").await.unwrap();
    assert_eq!(state.total, 7);
    // Without the upcaster the old payload cannot be read: the error says where.
    let err = EventStore::<Counter>::load_events(&store, "old").await.unwrap_err();
    assert!(err.to_string().contains("stream sequence 1"), "{err}");
}

#[tokio::test]
async fn cqrs_framework_runs_on_the_jetstream_store() {
    let server = NatsServer::start();
    let store = store(&server).await;
    let cqrs = cqrs_es::CqrsFramework::<Counter, _>::new(store.clone(), vec![], ());
    cqrs.execute_with_metadata("fw", CounterCommand::Add { token: "a".into() }, ctx().to_metadata())
        .await
        .unwrap();
    cqrs.execute("fw", CounterCommand::Add { token: "b".into() })
        .await
        .unwrap();
    let events = EventStore::<Counter>::load_events(&store, "fw").await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].metadata["actor"], "user:tester");
}
