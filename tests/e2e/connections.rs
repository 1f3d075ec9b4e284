//! Bounded memory for every client: a subscriber that stops reading is disconnected with a
//! close code that says why while the console goes on, and WebSocket connections are
//! capped per user, per address and in total. Real console, real sockets.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jsc_testkit::{NatsServer, Subscription, TestApp};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Writes `n` cluster events straight into the event stream (as a history would be).
async fn history(app: &TestApp, n: u64) {
    use jsc_domain::cluster::{Cluster, ClusterChanges, ClusterEvent, ClusterSpec};
    let store = jsc_eventstore::JetStreamEventStore::open(app.nats.client().await, app.event_config().clone())
        .await
        .unwrap();
    let js = app.nats.jetstream().await;
    let mut hash = None;
    let mut acks = Vec::new();
    for i in 0..n {
        let event = if i == 0 {
            ClusterEvent::Registered {
                id: "bulk".into(),
                organization: "default".into(),
                spec: ClusterSpec {
                    name: "bulk".into(),
                    urls: vec!["nats://127.0.0.1:4222".into()],
                    ..Default::default()
                },
            }
        } else {
            ClusterEvent::Updated {
                changes: ClusterChanges {
                    description: Some(format!("change {i}: {}", "x".repeat(3_000))),
                    ..Default::default()
                },
            }
        };
        let mut meta = std::collections::HashMap::new();
        meta.insert("actor".to_string(), "user:bulk".to_string());
        meta.insert("organization".to_string(), "default".to_string());
        let mut rec = store
            .records_for::<Cluster>("bulk", i as usize, &[event], &meta, None)
            .remove(0);
        rec.rehash(hash.take());
        hash = rec.hash.clone();
        let (body, h) = rec.body_and_hash();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Jsc-Hash", h.as_str());
        acks.push(
            js.publish_with_headers(store.subject("cluster", "bulk"), headers, body.into())
                .await
                .unwrap(),
        );
    }
    for ack in acks {
        ack.await.unwrap();
    }
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_closed_with_1008_and_the_console_goes_on() {
    let logs = jsc_testkit::capture_logs();
    let app = TestApp::spawn_with(NatsServer::start(), |c| {
        c.auth.outbox_messages = 16;
        c.auth.outbox_bytes = 64 << 10;
        c.auth.outbox_stall = Duration::from_millis(500);
    })
    .await;
    history(&app, 2_000).await;

    // A client with a tiny receive window that asks for the whole trail and reads nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let tcp = socket.connect(app.addr).await.unwrap();
    let mut request = format!("ws://{}/graphql", app.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    signed_in(&app, &mut ws).await;
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription { auditEvents(fromSequence: 1) { sequence summary payload } }"
        }})
        .to_string(),
    ))
    .await
    .unwrap();

    // The console gives up on it; meanwhile it answers everyone else.
    let gave_up = "the client did not read what it was sent; closed the connection";
    tokio::time::timeout(Duration::from_secs(30), async {
        while !logs.text().contains(gave_up) {
            let me = app.data("{ me { id } }", json!({})).await;
            assert!(me["me"]["id"].is_string());
        }
    })
    .await
    .expect("the console closes a client that reads nothing");

    // When the client reads again, what was already in the socket comes first, then the
    // close frame with its code and what to do.
    let close = tokio::time::timeout(Duration::from_secs(30), async {
        let mut received = 0;
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return (frame, received),
                Some(Ok(_)) => received += 1,
                other => panic!("expected a close frame, got {other:?} after {received} messages"),
            }
        }
    })
    .await
    .expect("the close frame arrives");
    let (frame, received) = close;
    let frame = frame.expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 1008, "{frame:?}");
    assert!(frame.reason.contains("too slow"), "{frame:?}");
    assert!(
        received < 2_000,
        "it was cut off, not served the whole trail ({received})"
    );

    // A new subscriber is served.
    let js = app.nats.jetstream().await;
    let mut events = js.get_stream(&app.event_config().stream).await.unwrap();
    let next = events.info().await.unwrap().state.last_sequence + 1;
    let mut sub = app
        .subscribe(
            "graphql-transport-ws",
            "subscription($from: Int) { auditEvents(fromSequence: $from) { sequence eventType } }",
            json!({"from": next}),
        )
        .await;
    let cluster = app
        .register_cluster(json!({"name": "after", "urls": ["nats://127.0.0.1:4222"]}))
        .await;
    let e = sub.next_data().await;
    assert_eq!(e["auditEvents"]["sequence"], next, "{e} ({cluster})");
}

/// Sends the owner's `connection_init` on `ws` and expects the ack.
async fn signed_in<S>(app: &TestApp, ws: &mut tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let token = app.token.clone().unwrap();
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}).to_string(),
    ))
    .await
    .unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Refusal = tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>;

/// Opens a WebSocket to the console (no credential yet), or the HTTP answer refusing it.
async fn upgrade(app: &TestApp) -> Result<Ws, Refusal> {
    let mut request = format!("ws://{}/graphql", app.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(*res),
        Err(e) => panic!("the upgrade failed otherwise: {e}"),
    }
}

/// Opens a WebSocket once the console has room for it (a closed one is counted until the
/// console has seen it go).
async fn upgrade_when_free(app: &TestApp) -> Ws {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match upgrade(app).await {
                Ok(ws) => return ws,
                Err(res) => {
                    assert_eq!(res.status(), 429);
                    tokio::task::yield_now().await;
                }
            }
        }
    })
    .await
    .expect("a place is free again once a connection closed")
}

async fn init(app: &TestApp) -> (Subscription, Value) {
    let token = app.token.clone().unwrap();
    let mut s = Subscription::connect(
        app.addr,
        "graphql-transport-ws",
        json!({"authorization": format!("Bearer {token}")}),
    )
    .await;
    let answer = s.next_frame_raw().await;
    (s, answer)
}

#[tokio::test]
async fn websocket_connections_are_capped_per_user_per_address_and_in_total() {
    let app = TestApp::spawn_with(NatsServer::start(), |c| {
        c.auth.max_connections_per_user = 2;
        c.auth.max_connections_per_address = 3;
    })
    .await;
    let (first, a) = init(&app).await;
    let (_second, b) = init(&app).await;
    assert_eq!(a["type"], "connection_ack");
    assert_eq!(b["type"], "connection_ack");
    // A third of the same user: refused at connection_init, saying why.
    let (third, c) = init(&app).await;
    assert_eq!(c["type"], "close", "{c}");
    assert!(c["frame"].as_str().unwrap().contains("the limit per user"), "{c}");
    drop(third);

    // Three open from 127.0.0.1 (anyone may open one: the credential comes after), and a
    // fourth upgrade is refused before it starts, with 429 and the reason.
    let _anonymous = upgrade_when_free(&app).await;
    let res = upgrade(&app)
        .await
        .expect_err("a fourth connection from one address is refused");
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body = String::from_utf8_lossy(res.body().as_deref().unwrap_or_default()).to_string();
    assert!(body.contains("from your address"), "{body}");
    assert!(body.contains("RATE_LIMITED"), "{body}");

    // Closing one frees its place.
    drop(first);
    let mut ws = upgrade_when_free(&app).await;
    signed_in(&app, &mut ws).await;
}
