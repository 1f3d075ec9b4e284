//! The HTTP server around the schema: `POST /graphql`, WebSocket subscriptions on
//! `/graphql` (graphql-transport-ws and legacy graphql-ws), health and readiness, signed
//! downloads, and the bundled explorer at `/`. The one crate whose build needs Node.
#![forbid(unsafe_code)]
// The merged schema roots nest deeper than the default limit when their futures are laid out.
#![recursion_limit = "256"]

mod explorer;
mod web;
pub mod ws;

use std::net::SocketAddr;
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, ServerError};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Path, State, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use jsc_app::{Code, Console, RequestMeta};
use jsc_graphql::{ApiSchema, AuthState, SubscriptionCount};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct HttpState {
    pub schema: ApiSchema,
    pub console: Console,
    /// Open WebSocket connections against their caps.
    pub caps: ws::Caps,
}

pub fn router(console: Console) -> Router {
    router_with(console, jsc_graphql::Limits::default(), false)
}

/// The router; `bench_routes` adds `GET /_bench/clusters`, the same data as the
/// `clusters { nodes { id name } }` query from a bare axum JSON handler: the baseline `make bench` measures the
/// GraphQL layer against, in the same process.
pub fn router_with(console: Console, limits: jsc_graphql::Limits, bench_routes: bool) -> Router {
    let schema = jsc_graphql::build_schema_with(Some(console.clone()), limits);
    let a = console.auth_settings();
    let caps = ws::Caps::new(ws::CapSettings {
        total: a.max_connections,
        per_address: a.max_connections_per_address,
        per_user: a.max_connections_per_user,
        outbox_messages: a.outbox_messages,
        outbox_bytes: a.outbox_bytes,
        outbox_stall: a.outbox_stall,
    });
    let state = HttpState { schema, console, caps };
    let mut router = Router::new();
    if bench_routes {
        router = router.route("/_bench/clusters", get(bench_clusters));
    }
    router
        .route("/graphql", get(graphql_ws).post(graphql_http))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .route("/", get(web_index))
        .route("/assets/{file}", get(web_asset))
        .route("/explorer", get(explorer_page))
        .route("/explorer/", get(explorer_page))
        .route("/explorer/{file}", get(explorer_asset))
        .route("/exports/{file}", get(download_export))
        .fallback(page_or_not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(http_metrics))
        .layer(axum::Extension(TrustedProxies(
            state.console.auth_settings().trusted_proxies.clone(),
        )))
        .layer(
            // Spans name the path only: query strings (signed download links) stay out of logs.
            // A `traceparent` header from the client makes the request a child of its trace.
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<Body>| {
                let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path());
                let parent = req.headers().get(jsc_eventstore::trace::TRACEPARENT);
                jsc_eventstore::trace::follow_header(&span, parent.and_then(|v| v.to_str().ok()));
                span
            }),
        )
        .with_state(state)
}

/// The route a path belongs to, for metric labels (a bounded set, whatever clients ask).
fn route_of(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/" => "/",
        "/explorer" | "/explorer/" => "/explorer",
        p if p.starts_with("/explorer/") => "/explorer/{file}",
        p if p.starts_with("/assets/") => "/assets/{file}",
        p if p.starts_with("/exports/") => "/exports/{file}",
        _ => "other",
    }
}

/// Counts and times every HTTP request by method, route and status.
async fn http_metrics(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let method = match *req.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route = route_of(req.uri().path());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("jsconsole_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    metrics::histogram!("jsconsole_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus exposition, for a bearer credential (an API key suits a
/// scraper): the series of every cluster it can view, and the console's own metrics when
/// it administers an organization.
async fn prometheus(State(state): State<HttpState>, Meta(meta): Meta, headers: axum::http::HeaderMap) -> Response {
    let principal = match auth_state(&state.console, bearer(&headers).as_deref()) {
        AuthState::Authenticated(p) | AuthState::Connection(p) => p,
        AuthState::Invalid(e) => return error_body(StatusCode::UNAUTHORIZED, e.code, &e.message),
        AuthState::Anonymous => {
            return error_body(
                StatusCode::UNAUTHORIZED,
                Code::Unauthenticated,
                "send `Authorization: Bearer <API key>` (createApiKey); in Prometheus, set `authorization: {credentials: <API key>}` on the scrape job",
            );
        }
    };
    let caller = jsc_app::Caller::new(principal, meta);
    let body = state.console.prometheus(&caller).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Operation names seen so far: metric labels for at most this many, `other` beyond.
const MAX_OPERATION_LABELS: usize = 256;

fn operation_label(name: Option<&str>) -> String {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> = std::sync::OnceLock::new();
    let Some(name) =
        name.filter(|n| !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    else {
        return "anonymous".into();
    };
    let mut seen = SEEN.get_or_init(Default::default).lock().expect("operation labels");
    if seen.contains(name) || seen.len() < MAX_OPERATION_LABELS {
        seen.insert(name.to_string());
        name.to_string()
    } else {
        "other".into()
    }
}

/// The proxies whose `X-Forwarded-For` is believed (request extension).
#[derive(Clone)]
struct TrustedProxies(Vec<jsc_app::auth::Cidr>);

/// Who is asking and from where, read from a request's headers and peer.
struct Meta(RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect::<String>())
        };
        let request_id = header("x-request-id")
            .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let trusted = parts.extensions.get::<TrustedProxies>().map_or(&[][..], |t| &t.0[..]);
        // Every X-Forwarded-For line, whole: proxies append on the right, so cutting or
        // taking only the first line would let a client choose what is read.
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
        let client_addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| jsc_app::auth::client_address(ci.0.ip(), forwarded.as_deref(), trusted).to_string());
        Ok(Meta(RequestMeta {
            request_id,
            client_addr,
            user_agent: header("user-agent"),
            receipt: Default::default(),
        }))
    }
}

fn error_body(status: StatusCode, code: Code, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"errors": [{"message": message, "extensions": {"code": code.as_str()}}]}).to_string(),
    )
        .into_response()
}

/// The bearer credential of a request, if any.
fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

fn auth_state(console: &Console, token: Option<&str>) -> AuthState {
    match token {
        None | Some("") => AuthState::Anonymous,
        Some(t) => match console.authenticate(t) {
            Ok(p) => AuthState::Authenticated(p),
            Err(e) => AuthState::Invalid(e),
        },
    }
}

async fn graphql_http(
    State(state): State<HttpState>,
    Meta(meta): Meta,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::Validation,
                &format!(
                    "the request body is larger than {} KiB; send a smaller query and pass large values as variables in several requests",
                    MAX_BODY_BYTES / 1024
                ),
            );
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                Code::Validation,
                &format!(
                    "the body is not a GraphQL request ({e}); send JSON like {{\"query\": \"{{ clusters {{ id }} }}\", \"variables\": {{}}}}"
                ),
            );
        }
    };
    execute(&state, meta, &headers, request).await
}

/// Runs one GraphQL request and answers it as JSON, with our error codes and headers.
async fn execute(
    state: &HttpState,
    meta: RequestMeta,
    headers: &axum::http::HeaderMap,
    request: async_graphql::Request,
) -> Response {
    let request_id = meta.request_id.clone();
    let auth = auth_state(&state.console, bearer(headers).as_deref());
    let operation = operation_label(request.operation_name.as_deref());
    let started = std::time::Instant::now();
    let mut response = state.schema.execute(request.data(meta).data(auth)).await;
    // Parse and validation errors come without a code; give them ours.
    for err in &mut response.errors {
        add_default_code(err);
    }
    let code = response
        .errors
        .first()
        .and_then(|e| e.extensions.as_ref())
        .and_then(|x| x.get("code"))
        .and_then(|v| match v {
            async_graphql::Value::String(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "OK".into());
    metrics::counter!("jsconsole_graphql_operations_total", "operation" => operation.clone(), "code" => code)
        .increment(1);
    metrics::histogram!("jsconsole_graphql_operation_duration_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    let extra_headers = std::mem::take(&mut response.http_headers);
    let mut http = json_body(&response);
    http.headers_mut().extend(extra_headers);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        http.headers_mut().insert("x-request-id", v);
    }
    http
}

/// An answer as JSON. Written into a `Vec` (as `axum::Json` would into a `BytesMut`, whose
/// writer checks capacity for every number): answers of 100,000s of numbers serialize in
/// about two thirds of the time.
fn json_body(response: &async_graphql::Response) -> Response {
    match serde_json::to_vec(response) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => error_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
            &format!("the answer could not be written as JSON ({e}); report this with the query"),
        ),
    }
}

fn add_default_code(err: &mut ServerError) {
    let has_code = err.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
    if !has_code {
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", Code::Validation.as_str());
    }
}

/// Subscriptions. The connection's metadata (address, user agent) is taken from the
/// upgrade request; the credential travels in `connection_init` (`{"authorization":
/// "Bearer <token>"}`, or `token`), or in the upgrade's `Authorization` header. A missing
/// or invalid credential closes the connection at `connection_init` with the reason.
async fn graphql_ws(
    State(state): State<HttpState>,
    Meta(meta): Meta,
    headers: axum::http::HeaderMap,
    protocol: Result<GraphQLProtocol, StatusCode>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    uri: axum::http::Uri,
) -> Response {
    let (Ok(protocol), Ok(upgrade)) = (protocol, upgrade) else {
        // Not an upgrade: a query in the query string (`?query=…` or a persisted query's
        // `?extensions={"persistedQuery":…}`), queries only.
        let Some(query) = uri.query().filter(|q| !q.is_empty()) else {
            return error_body(
                StatusCode::BAD_REQUEST,
                Code::Validation,
                "GET /graphql takes a query (?query=…&variables=…, or a persisted query's ?extensions=…) or a \
                 WebSocket upgrade (graphql-transport-ws or graphql-ws); send mutations with POST",
            );
        };
        if query.len() > MAX_BODY_BYTES {
            return error_body(
                StatusCode::URI_TOO_LONG,
                Code::Validation,
                "the query string is too long; POST the query",
            );
        }
        return match async_graphql::http::parse_query_string(query) {
            Ok(request) => execute(&state, meta, &headers, request.data(jsc_graphql::HttpGet)).await,
            Err(e) => error_body(
                StatusCode::BAD_REQUEST,
                Code::Validation,
                &format!(
                    "the query string is not a GraphQL request ({e}); send ?query=…&variables=<JSON>&extensions=<JSON>"
                ),
            ),
        };
    };
    let schema = state.schema.clone();
    let console = state.console.clone();
    let header_token = bearer(&headers);
    let init_timeout = console.auth_settings().connection_init_timeout;
    let caps = state.caps.clone();
    let slot = match caps.admit_address(meta.client_addr.as_deref().unwrap_or("")) {
        Ok(slot) => slot,
        Err(message) => {
            metrics::counter!("jsconsole_websocket_refused_total", "cap" => "address_or_total").increment(1);
            let mut res = error_body(StatusCode::TOO_MANY_REQUESTS, Code::RateLimited, &message);
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            return res;
        }
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Small buffers that grow for a big message: an idle subscriber costs little. What
        // clients send is small (connection_init, subscribe), read 256 bytes at a time.
        .read_buffer_size(256)
        .write_buffer_size(0)
        .max_message_size(MAX_BODY_BYTES)
        .max_frame_size(MAX_BODY_BYTES)
        .on_upgrade(move |socket| {
            metrics::gauge!("jsconsole_websocket_connections").increment(1.0);
            struct Open;
            impl Drop for Open {
                fn drop(&mut self) {
                    metrics::gauge!("jsconsole_websocket_connections").decrement(1.0);
                }
            }
            let open = Open;
            let mut data = Data::default();
            data.insert(meta);
            data.insert(SubscriptionCount::default());
            data.insert(jsc_graphql::ConnectionOperations::default());
            let (sink, stream) = futures::StreamExt::split(socket);
            let (outbox, writer) = ws::outbox(sink, caps.settings());
            let serve = GraphQLWebSocket::new_with_pair(outbox, init_within(stream, init_timeout), schema, protocol)
            .with_data(data)
            .on_connection_init(move |payload| async move {
                let token = init_token(&payload).or(header_token);
                match auth_state(&console, token.as_deref()) {
                    AuthState::Authenticated(p) | AuthState::Connection(p) => {
                        let user = caps.admit_user(&p.actor).map_err(|message| {
                            metrics::counter!("jsconsole_websocket_refused_total", "cap" => "user").increment(1);
                            async_graphql::Error::new(message)
                        })?;
                        let mut data = Data::default();
                        data.insert(AuthState::Connection(p));
                        data.insert(user);
                        Ok(data)
                    }
                    AuthState::Invalid(e) => Err(async_graphql::Error::new(e.message)),
                    AuthState::Anonymous => Err(async_graphql::Error::new(
                        "sign in first: send {\"authorization\": \"Bearer <token>\"} as the connection_init payload",
                    )),
                }
            })
            .keepalive_timeout(Duration::from_secs(30))
            .serve();
            async move {
                tokio::join!(serve, writer);
                drop(slot);
                drop(open);
            }
        })
}

/// Ends a WebSocket's input (and so the connection) when its first message is not a
/// `connection_init` arriving within `timeout`: an idle socket holds no server resources.
fn init_within<S>(
    stream: S,
    timeout: Duration,
) -> impl futures::Stream<Item = Result<axum::extract::ws::Message, axum::Error>> + Send
where
    S: futures::Stream<Item = Result<axum::extract::ws::Message, axum::Error>> + Send + Unpin + 'static,
{
    use futures::StreamExt;
    // The timer is dropped once connection_init came: an idle connection keeps none.
    let deadline = Some(Box::pin(tokio::time::sleep(timeout)));
    futures::stream::unfold((stream, deadline), |(mut s, deadline)| async move {
        let Some(mut deadline) = deadline else {
            return s.next().await.map(|m| (m, (s, None)));
        };
        tokio::select! {
            m = s.next() => {
                let m = m?;
                let init = matches!(&m, Ok(axum::extract::ws::Message::Text(t)) if t.contains("connection_init"));
                if !init && matches!(&m, Ok(axum::extract::ws::Message::Text(_))) {
                    tracing::info!("WebSocket: the first message was not connection_init; closing");
                    return None;
                }
                Some((m, (s, (!init).then_some(deadline))))
            }
            _ = &mut deadline => {
                tracing::info!("WebSocket: no connection_init in time; closing");
                None
            }
        }
    })
}

/// The token in a `connection_init` payload: `authorization` / `Authorization` (with or
/// without `Bearer `) or `token`.
fn init_token(payload: &serde_json::Value) -> Option<String> {
    let raw = ["authorization", "Authorization", "token"]
        .iter()
        .find_map(|k| payload.get(k).and_then(|v| v.as_str()))?;
    let t = match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t,
        _ => raw,
    };
    Some(t.trim().to_string())
}

async fn bench_clusters(State(state): State<HttpState>) -> Response {
    let clusters: Vec<serde_json::Value> = state
        .console
        .all_clusters()
        .into_iter()
        .map(|c| json!({"id": c.view.id, "name": c.view.name}))
        .collect();
    axum::Json(json!({"data": {"clusters": {"nodes": clusters}}})).into_response()
}

#[derive(serde::Deserialize)]
struct LinkParams {
    expires: i64,
    signature: String,
}

/// Serves an audit export to whoever holds its signed, unexpired link.
async fn download_export(
    State(state): State<HttpState>,
    Path(file): Path<String>,
    params: Result<axum::extract::Query<LinkParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let denied = || {
        error_body(
            StatusCode::FORBIDDEN,
            Code::Forbidden,
            "this download link is invalid or has expired; run the export again for a fresh link",
        )
    };
    let Ok(axum::extract::Query(p)) = params else {
        return denied();
    };
    let Some(got) = state.console.download_export(&file, p.expires, &p.signature).await else {
        return denied();
    };
    let content_type = file
        .rsplit('.')
        .next()
        .and_then(jsc_projections::audit::ExportFormat::parse)
        .map_or("application/octet-stream", |f| f.content_type());
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        Body::from_stream(got.into_stream()),
    )
        .into_response()
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

/// Ready = the home NATS is connected and every projection has applied every event.
async fn readyz(State(state): State<HttpState>) -> Response {
    let r = state.console.readiness().await;
    let projections: Vec<_> = r
        .projections
        .iter()
        .map(|p| json!({"name": p.name, "pending": p.pending, "checkpoint": p.checkpoint}))
        .collect();
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({"ready": r.ready, "nats": r.nats, "projections": projections})),
    )
        .into_response()
}

async fn not_found() -> Response {
    error_body(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        "no such path; the API is POST /graphql (WebSocket on GET /graphql), the console is at / and the explorer at /explorer",
    )
}

/// No third-party origin anywhere: the explorer is served from this binary.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   font-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // The web console's answers carry their own, stricter policy.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    res
}

async fn web_index(headers: axum::http::HeaderMap) -> Response {
    web::index(&headers)
}

async fn web_asset(Path(file): Path<String>, headers: axum::http::HeaderMap) -> Response {
    match web::asset(&format!("/assets/{file}"), &headers) {
        Some(res) => res,
        None => not_found().await,
    }
}

/// A browser opening one of the console's pages gets the app (which routes it); anything else
/// that matched no route gets a 404 that names the routes.
async fn page_or_not_found(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    if web::is_page(&method, &uri, &headers) {
        return web::index(&headers);
    }
    not_found().await
}

async fn explorer_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        explorer::INDEX_HTML,
    )
        .into_response()
}

async fn explorer_asset(Path(file): Path<String>) -> Response {
    match explorer::asset(&file) {
        Some((content_type, body)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            body,
        )
            .into_response(),
        None => not_found().await,
    }
}
