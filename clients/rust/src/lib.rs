//! A typed client of the JetStream Console GraphQL API. Each operation in
//! `clients/operations.graphql` (shared with the TypeScript client) becomes a module of Rust
//! types checked against `schema/console.graphql` when this crate compiles: a schema change
//! that breaks an operation breaks the build.
//!
//! [`walkthrough`] signs in, creates a stream on the first cluster the user may see,
//! subscribes to the stream's changes over WebSocket (`graphql-transport-ws`), publishes a
//! message and returns what happened, line by line.

use anyhow::{Context as _, anyhow, bail};
use futures::{SinkExt, StreamExt};
use graphql_client::{GraphQLQuery, QueryBody, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The schema's custom scalars, as this client reads them.
pub type DateTime = String;
pub type Duration = String;
#[allow(clippy::upper_case_acronyms)]
pub type JSON = Value;

macro_rules! operation {
    ($name:ident) => {
        #[derive(GraphQLQuery)]
        #[graphql(
            schema_path = "../../schema/console.graphql",
            query_path = "../operations.graphql",
            response_derives = "Debug, Clone",
            variables_derives = "Debug, Clone, Default",
            skip_serializing_none
        )]
        pub struct $name;
    };
}

operation!(SignIn);
operation!(Clusters);
operation!(CreateStream);
operation!(Publish);
operation!(StreamChanges);

/// A signed-in connection to one console.
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    /// Runs one operation over HTTP; an error answer becomes `CODE: message`.
    pub async fn run<Q: GraphQLQuery>(&self, variables: Q::Variables) -> anyhow::Result<Q::ResponseData>
    where
        Q::Variables: Serialize,
        Q::ResponseData: DeserializeOwned,
    {
        let mut req = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&Q::build_query(variables));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.context("the console did not answer")?;
        let body: Response<Q::ResponseData> = res.json().await.context("not a GraphQL answer")?;
        if let Some(e) = body.errors.as_ref().and_then(|e| e.first()) {
            let code = e
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("ERROR");
            bail!("{code}: {}", e.message);
        }
        body.data.ok_or_else(|| anyhow!("an answer without data"))
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> anyhow::Result<()> {
        let data = self
            .run::<SignIn>(sign_in::Variables {
                input: sign_in::LoginInput {
                    email: email.into(),
                    password: password.into(),
                    ..Default::default()
                },
            })
            .await?;
        self.token = Some(data.login.access_token);
        Ok(())
    }

    /// Starts a subscription over WebSocket and returns its stream of `data` payloads.
    pub async fn subscribe<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
    ) -> anyhow::Result<impl futures::Stream<Item = anyhow::Result<Q::ResponseData>> + use<Q>>
    where
        Q::Variables: Serialize,
        Q::ResponseData: DeserializeOwned,
    {
        let url = format!("{}/graphql", self.base.replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        let auth = self
            .token
            .as_ref()
            .map(|t| json!({"authorization": format!("Bearer {t}")}));
        send(
            &mut ws,
            json!({"type": "connection_init", "payload": auth.unwrap_or(json!({}))}),
        )
        .await?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if serde_json::from_str::<Value>(&t)?["type"] == "connection_ack" => {}
            other => bail!("the console did not accept the connection: {other:?}"),
        }
        let body: QueryBody<Q::Variables> = Q::build_query(variables);
        send(&mut ws, json!({"id": "1", "type": "subscribe", "payload": body})).await?;
        Ok(ws.filter_map(|m| async move {
            let text = match m {
                Ok(Message::Text(t)) => t,
                Ok(_) => return None,
                Err(e) => return Some(Err(e.into())),
            };
            let frame: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => return Some(Err(e.into())),
            };
            match frame["type"].as_str() {
                Some("next") => {
                    let payload: Response<Q::ResponseData> = match serde_json::from_value(frame["payload"].clone()) {
                        Ok(p) => p,
                        Err(e) => return Some(Err(e.into())),
                    };
                    if let Some(e) = payload.errors.and_then(|e| e.into_iter().next()) {
                        return Some(Err(anyhow!("{}", e.message)));
                    }
                    payload.data.map(Ok)
                }
                Some("error") => Some(Err(anyhow!("subscription refused: {}", frame["payload"]))),
                Some("complete") => Some(Err(anyhow!("the console ended the subscription"))),
                _ => None,
            }
        }))
    }
}

async fn send<S>(ws: &mut S, v: Value) -> anyhow::Result<()>
where
    S: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    ws.send(Message::Text(v.to_string().into())).await?;
    Ok(())
}

/// Signs in, creates `stream`, subscribes to its changes, publishes one message and waits
/// for the change it causes. Returns what happened, one line per step.
pub async fn walkthrough(base: &str, email: &str, password: &str, stream: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut client = Client::new(base);
    client.sign_in(email, password).await?;
    let clusters = client.run::<Clusters>(clusters::Variables { first: Some(1) }).await?;
    let cluster = clusters
        .clusters
        .nodes
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no cluster to create the stream on: register one first"))?;
    // Subscribe first, so the change the publish makes cannot be missed.
    let changes = client
        .subscribe::<StreamChanges>(stream_changes::Variables {
            cluster_id: cluster.id.clone(),
            name: stream.into(),
        })
        .await?;
    let subject = format!("{}.>", stream.to_lowercase());
    let created = client
        .run::<CreateStream>(create_stream::Variables {
            input: create_stream::CreateStreamInput {
                cluster_id: cluster.id.clone(),
                config: create_stream::StreamConfigInput {
                    name: Some(stream.into()),
                    subjects: Some(vec![subject]),
                    ..Default::default()
                },
                ..Default::default()
            },
        })
        .await?
        .create_stream;
    let event = created.sequence.map_or("-".to_string(), |s| s.to_string());
    let created = created.stream;
    out.push(format!(
        "created {} ({}) on {}: {} (event {event})",
        created.name,
        created.id,
        cluster.name,
        created.config.subjects.join(", ")
    ));
    // The subscription starts as the server gets to it: a change made before then is not
    // sent. So publish, wait a second for the change, and publish again if it did not come.
    let mut changes = Box::pin(changes);
    for _ in 0..10 {
        let ack = client
            .run::<Publish>(publish::Variables {
                input: publish::PublishMessageInput {
                    cluster_id: cluster.id.clone(),
                    stream: stream.into(),
                    subject: format!("{}.hello", stream.to_lowercase()),
                    payload: Some("hello".into()),
                    ..Default::default()
                },
            })
            .await?
            .publish_message;
        let event = ack.sequence.map_or("-".to_string(), |s| s.to_string());
        out.push(format!("published at sequence {} (event {event})", ack.ack.sequence));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        while let Ok(change) = tokio::time::timeout_at(deadline, changes.next()).await {
            let c = change.ok_or_else(|| anyhow!("the subscription ended"))??.stream_changed;
            let version = c.stream.as_ref().map_or("-".to_string(), |s| s.version.to_string());
            out.push(format!("change {:?} {} version {version}", c.kind, c.name));
            if matches!(c.kind, stream_changes::ResourceChangeKind::PUBLISHED) {
                return Ok(out);
            }
        }
    }
    bail!("no PUBLISHED change arrived after 10 messages: {out:?}")
}
