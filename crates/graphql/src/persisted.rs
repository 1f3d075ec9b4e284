//! Automatic persisted queries (Apollo's protocol) over HTTP POST, HTTP GET and WebSocket:
//! a client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`
//! without the query; if the hash is unknown the answer is `PERSISTED_QUERY_NOT_FOUND`
//! (message `PersistedQueryNotFound`, as Apollo clients expect), and the client sends the
//! query once with its hash, which registers it for every replica (NATS KV). Registered
//! documents are kept parsed in memory, so a hit costs no parsing.
//!
//! With `only_registered` the console runs only operations already registered (by hash);
//! a query text is refused unless its hash is registered — for production deployments that
//! register their clients' operations at deploy time (`jsconsole queries register`).
//!
//! Over HTTP GET only queries run (a mutation or subscription must be POSTed), so a GET can
//! be cached by a proxy and never changes anything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Request, ServerError, ServerResult};
use jsc_app::{Code, Console};

/// Marks a request that came as HTTP GET: only queries run.
#[derive(Debug, Clone, Copy)]
pub struct HttpGet;

/// Parsed documents by hash, at most this many (then forgotten, reloaded from KV).
const MAX_PARSED: usize = 2_000;

/// The extension; shared parsed documents.
pub(crate) struct PersistedQueries {
    pub(crate) only_registered: bool,
    pub(crate) parsed: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

impl ExtensionFactory for PersistedQueries {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PersistedQueriesExt {
            only_registered: self.only_registered,
            parsed: self.parsed.clone(),
        })
    }
}

struct PersistedQueriesExt {
    only_registered: bool,
    parsed: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

fn error(code: Code, message: impl Into<String>) -> ServerError {
    let mut e = ServerError::new(message, None);
    e.extensions
        .get_or_insert_with(Default::default)
        .set("code", code.as_str());
    e
}

fn from_app(e: jsc_app::Error) -> ServerError {
    error(e.code, e.message)
}

fn with_doc(mut request: Request, doc: ExecutableDocument) -> Request {
    request.set_parsed_query(doc);
    request
}

fn sha256_hex(text: &str) -> String {
    jsc_domain::sha256_hex(text.as_bytes())
}

#[derive(serde::Deserialize)]
struct PersistedQuery {
    version: i32,
    #[serde(rename = "sha256Hash")]
    sha256_hash: String,
}

impl PersistedQueriesExt {
    fn cached(&self, hash: &str) -> Option<ExecutableDocument> {
        self.parsed.lock().expect("parsed lock").get(hash).cloned()
    }

    fn remember(&self, hash: &str, doc: &ExecutableDocument) {
        let mut parsed = self.parsed.lock().expect("parsed lock");
        if parsed.len() >= MAX_PARSED {
            parsed.clear();
        }
        parsed.insert(hash.to_string(), doc.clone());
    }

    /// The document registered under `hash`: from memory, or from KV (then parsed once).
    async fn registered(&self, console: &Console, hash: &str) -> ServerResult<Option<ExecutableDocument>> {
        if let Some(doc) = self.cached(hash) {
            return Ok(Some(doc));
        }
        let Some(text) = console.persisted_query(hash).await.map_err(from_app)? else {
            return Ok(None);
        };
        let doc = async_graphql::parser::parse_query(&text)?;
        self.remember(hash, &doc);
        Ok(Some(doc))
    }

    async fn resolve(&self, ctx: &ExtensionContext<'_>, mut request: Request) -> ServerResult<Request> {
        let console = ctx.data_opt::<Console>();
        let persisted = match request.extensions.remove("persistedQuery") {
            Some(v) => Some(async_graphql::from_value::<PersistedQuery>(v).map_err(|_| {
                error(
                    Code::Validation,
                    "extensions.persistedQuery: give {\"version\": 1, \"sha256Hash\": \"<hex SHA-256 of the query>\"}",
                )
            })?),
            None => None,
        };
        if let Some(pq) = &persisted {
            if pq.version != 1 {
                return Err(error(
                    Code::Validation,
                    format!(
                        "extensions.persistedQuery.version: only version 1 is supported, not {}",
                        pq.version
                    ),
                ));
            }
            if !request.query.is_empty() && sha256_hex(&request.query) != pq.sha256_hash.to_ascii_lowercase() {
                return Err(error(
                    Code::Validation,
                    "extensions.persistedQuery.sha256Hash: not the SHA-256 of the query sent with it",
                ));
            }
        }
        // The operation's hash: the one sent, or (only registered operations) the text's.
        let hash = match &persisted {
            Some(pq) => pq.sha256_hash.to_ascii_lowercase(),
            None if self.only_registered => sha256_hex(&request.query),
            None => return Ok(request),
        };
        let Some(console) = console else {
            return Err(error(Code::Unavailable, "persisted queries need a running console"));
        };
        if request.query.is_empty() || self.only_registered {
            return match self.registered(console, &hash).await? {
                Some(doc) => Ok(with_doc(request, doc)),
                None if request.query.is_empty() => Err(error(Code::PersistedQueryNotFound, "PersistedQueryNotFound")),
                None => Err(error(
                    Code::Forbidden,
                    "this console runs only registered operations; register this one \
                     (jsconsole queries register) and send its sha256Hash in extensions.persistedQuery",
                )),
            };
        }
        let doc = async_graphql::parser::parse_query(&request.query)?;
        console.persist_query(&hash, &request.query).await.map_err(from_app)?;
        self.remember(&hash, &doc);
        Ok(with_doc(request, doc))
    }
}

#[async_trait::async_trait]
impl Extension for PersistedQueriesExt {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let mut request = self.resolve(ctx, request).await?;
        if request.data.get(&std::any::TypeId::of::<HttpGet>()).is_some() {
            let changes = request
                .parsed_query()?
                .operations
                .iter()
                .any(|(_, op)| op.node.ty != OperationType::Query);
            if changes {
                return Err(error(
                    Code::Validation,
                    "over HTTP GET only queries run; send mutations with POST and subscriptions over WebSocket",
                ));
            }
        }
        next.run(ctx, request).await
    }
}
