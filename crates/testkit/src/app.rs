//! The whole console, in-process, on port 0, against its own nats-server.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jsc_cli::{Application, Config};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use crate::NatsServer;

/// How long a test waits for a subscription message before failing.
pub const WS_TIMEOUT: Duration = Duration::from_secs(10);

/// The owner account every test console starts with.
pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "correct horse battery staple";

/// A running console. Stopped when dropped.
pub struct TestApp {
    pub nats: NatsServer,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub data_dir: TempDir,
    /// The console's services, for tests that wait on its in-memory views.
    pub console: jsc_app::Console,
    /// The owner's access token, sent by [`Self::graphql`] and [`Self::subscribe`].
    pub token: Option<String>,
    /// The owner's user id.
    pub owner_id: String,
    /// The event stream's last sequence once the console was up and the owner signed in
    /// (the owner's organization, account and session are the first events).
    pub baseline: u64,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// A console on its own fresh nats-server.
    pub async fn spawn() -> Self {
        Self::spawn_on(NatsServer::start()).await
    }

    /// A console using `nats` as its home NATS.
    pub async fn spawn_on(nats: NatsServer) -> Self {
        Self::spawn_with(nats, |_| {}).await
    }

    /// A console with its configuration adjusted by `tweak`.
    pub async fn spawn_with(nats: NatsServer, tweak: impl FnOnce(&mut Config)) -> Self {
        crate::init_tracing();
        let data_dir = tempfile::Builder::new()
            .prefix("jsc-data-")
            .tempdir()
            .expect("temp dir");
        let mut config = Config::new(data_dir.path());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.nats_url = Some(nats.url().to_string());
        config.admin_email = Some(OWNER_EMAIL.into());
        config.admin_password = Some(OWNER_PASSWORD.into());
        // Tests drive hundreds of operations a second as one caller: charged and reported,
        // never refused (the cost tests set a small budget).
        config.query_budget = Some(jsc_graphql::Budget {
            max: 1_000_000_000,
            refill_per_second: 1_000_000_000,
        });
        tweak(&mut config);
        // The owner as `tweak` left it configured (OWNER_EMAIL unless changed), signed in below.
        let owner = config.admin_password.clone().map(|password| {
            let email = config.admin_email.clone();
            (
                email.unwrap_or_else(|| jsc_app::identity::DEFAULT_ADMIN_EMAIL.into()),
                password,
            )
        });
        let app = Application::build(config).await.expect("the console starts");
        let addr = app.local_addr();
        let console = app.console().clone();
        let shutdown = app.shutdown_token();
        let handle = tokio::spawn(app.run_until_stopped());
        let mut app = Self {
            nats,
            addr,
            http: reqwest::Client::new(),
            data_dir,
            console,
            token: None,
            owner_id: String::new(),
            baseline: 0,
            shutdown,
            handle: Some(handle),
        };
        if let Some((email, password)) = owner {
            let auth = app.login(&email, &password).await;
            app.token = auth["accessToken"].as_str().map(str::to_string);
            app.owner_id = auth["userId"].as_str().unwrap_or_default().to_string();
        }
        if let Ok(mut s) = app.nats.jetstream().await.get_stream(&app.event_config().stream).await {
            app.baseline = s.info().await.map(|i| i.state.last_sequence).unwrap_or(0);
        }
        app
    }

    /// Signs in and returns the `AuthPayload` (fails the test on an error).
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let body = self.try_login(email, password).await;
        assert!(body.get("errors").is_none(), "login failed: {body:#}");
        body["data"]["login"].clone()
    }

    /// POSTs a GraphQL request with `token` (none: anonymous) and returns the whole body.
    pub async fn graphql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        self.post_graphql(query, variables, &headers).await
    }

    /// The `data` of a request as `token` that must succeed.
    pub async fn data_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.graphql_as(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// The `extensions.code` and message of a request as `token` that must fail.
    pub async fn error_as(&self, token: Option<&str>, query: &str, variables: Value) -> (String, String) {
        let body = self.graphql_as(token, query, variables).await;
        first_error(&body)
    }

    /// The actor events record for the owner: `user:<id>`.
    pub fn owner_actor(&self) -> String {
        format!("user:{}", self.owner_id)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GETs `path` (and its query) from the console, without a token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET the console")
    }

    /// POSTs a GraphQL request and returns the whole response body.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.graphql_with_headers(query, variables, &[]).await
    }

    /// POSTs as the owner (unless `headers` carry their own `authorization`).
    pub async fn graphql_with_headers(&self, query: &str, variables: Value, headers: &[(&str, &str)]) -> Value {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth
            && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            all.push(("authorization", a.as_str()));
        }
        self.post_graphql(query, variables, &all).await
    }

    async fn post_graphql(&self, query: &str, variables: Value, headers: &[(&str, &str)]) -> Value {
        let mut req = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({"query": query, "variables": variables}));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("POST /graphql");
        res.json().await.expect("a JSON response")
    }

    /// The `data` of a request that must succeed.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.graphql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// The `extensions.code` and message of a request that must fail.
    pub async fn error(&self, query: &str, variables: Value) -> (String, String) {
        let body = self.graphql(query, variables).await;
        first_error(&body)
    }

    /// Opens a subscription over WebSocket with `protocol` (`graphql-transport-ws` or
    /// `graphql-ws`).
    pub async fn subscribe(&self, protocol: &str, query: &str, variables: Value) -> Subscription {
        self.subscribe_as(self.token.as_deref(), protocol, query, variables)
            .await
    }

    /// Opens a subscription with `token` in `connection_init`.
    pub async fn subscribe_as(
        &self,
        token: Option<&str>,
        protocol: &str,
        query: &str,
        variables: Value,
    ) -> Subscription {
        let payload = match token {
            Some(t) => json!({"authorization": format!("Bearer {t}")}),
            None => json!({}),
        };
        let mut sub = Subscription::connect(self.addr, protocol, payload).await;
        let ack = sub.next_frame().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        sub.start(query, variables).await;
        sub
    }

    /// Stops the console (its nats-server keeps running) and waits for it.
    pub async fn shutdown(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.expect("console task").expect("console stopped cleanly");
        }
    }
}

impl TestApp {
    /// Ends the console abruptly, as `kill -9` would: its tasks stop where they are and
    /// release nothing (its leases expire on their own). Its nats-server keeps running.
    pub fn kill(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
        // Its connection goes too, as with a dead process.
        let home = self.console.home().clone();
        tokio::spawn(async move {
            let _ = home.drain().await;
        });
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A live GraphQL subscription.
pub struct Subscription {
    ws: Ws,
    legacy: bool,
}

/// The code and message of the first error in a GraphQL response (fails if there is none).
pub fn first_error(body: &Value) -> (String, String) {
    let err = &body["errors"][0];
    assert!(!err.is_null(), "expected an error, got {body:#}");
    (
        err["extensions"]["code"].as_str().unwrap_or_default().to_string(),
        err["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// The `extensions.code` of the first error in a GraphQL response (fails if there is none).
pub fn code(body: &Value) -> String {
    first_error(body).0
}

impl Subscription {
    /// Opens the WebSocket and sends `connection_init` with `payload`; read the answer
    /// with [`Self::next_frame_raw`].
    pub async fn connect(addr: SocketAddr, protocol: &str, payload: Value) -> Self {
        let mut request = format!("ws://{addr}/graphql").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        let (mut ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket connects");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol),
            "the server speaks {protocol}"
        );
        let legacy = protocol == "graphql-ws";
        ws.send(Message::text(
            json!({"type": "connection_init", "payload": payload}).to_string(),
        ))
        .await
        .unwrap();
        Self { ws, legacy }
    }

    /// Starts the subscription `query` (id "1").
    pub async fn start(&mut self, query: &str, variables: Value) {
        self.start_with_id("1", query, variables).await
    }

    /// Sends a protocol message as it is.
    pub async fn send_raw(&mut self, message: Value) {
        self.ws.send(Message::text(message.to_string())).await.unwrap();
    }

    /// Starts another subscription on the same connection.
    pub async fn start_with_id(&mut self, id: &str, query: &str, variables: Value) {
        let start = if self.legacy { "start" } else { "subscribe" };
        self.ws
            .send(Message::text(
                json!({"id": id, "type": start, "payload": {"query": query, "variables": variables}}).to_string(),
            ))
            .await
            .unwrap();
    }

    async fn next_frame(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WS_TIMEOUT, self.ws.next())
                .await
                .expect("a WebSocket message in time")
                .expect("the WebSocket is open")
                .expect("a WebSocket frame");
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).expect("JSON frame");
                    match v["type"].as_str() {
                        Some("ka") | Some("pong") => continue,
                        Some("ping") => {
                            self.ws
                                .send(Message::text(json!({"type": "pong"}).to_string()))
                                .await
                                .unwrap();
                            continue;
                        }
                        _ => return v,
                    }
                }
                Message::Close(frame) => return json!({"type": "close", "frame": format!("{frame:?}")}),
                _ => continue,
            }
        }
    }

    /// The next result's `data`; fails the test on an error or after [`WS_TIMEOUT`].
    pub async fn next_data(&mut self) -> Value {
        let frame = self.next_frame().await;
        let expected = if self.legacy { "data" } else { "next" };
        assert_eq!(frame["type"], expected, "{frame}");
        assert!(frame["payload"].get("errors").is_none(), "{frame}");
        frame["payload"]["data"].clone()
    }

    /// The next frame as it is (errors, completion, close).
    pub async fn next_frame_raw(&mut self) -> Value {
        self.next_frame().await
    }
}
