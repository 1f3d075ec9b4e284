//! The web console: the single-page app built from `web/` by `build.rs` and embedded, served
//! at `/` and at every page's URL (deep links), its hashed files from `/assets/`, gzipped for
//! clients that accept it, under a CSP that allows nothing but this origin.

use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};

/// `(path, content type, bytes, gzipped bytes)` of every built file.
static FILES: &[(&str, &str, &[u8], &[u8])] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Stricter than the explorer's: no inline style or script, connections to this origin only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; \
                       base-uri 'none'; form-action 'self'";

fn file(path: &str) -> Option<&'static (&'static str, &'static str, &'static [u8], &'static [u8])> {
    FILES.iter().find(|f| f.0 == path)
}

fn send(f: &(&str, &'static str, &'static [u8], &'static [u8]), headers: &HeaderMap, cache: &'static str) -> Response {
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut res = if gzip { f.3.into_response() } else { f.2.into_response() };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(f.1));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    res
}

/// The app's page: the same for every route, so it is never cached (its files are).
pub fn index(headers: &HeaderMap) -> Response {
    let f = file("/index.html").expect("the web console's index.html is built in");
    send(f, headers, "no-cache")
}

/// A built file by its path (`/assets/index-<hash>.js`): cached for a year, as its name
/// changes with its content.
pub fn asset(path: &str, headers: &HeaderMap) -> Option<Response> {
    file(path).map(|f| send(f, headers, "public, max-age=31536000, immutable"))
}

/// Whether a request that matched no route is a browser opening one of the app's pages (a
/// deep link or a reload): a GET for HTML of a path that is not the API's.
pub fn is_page(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    let path = uri.path();
    method == Method::GET
        && ![
            "/graphql",
            "/exports/",
            "/explorer/",
            "/assets/",
            "/metrics",
            "/healthz",
            "/readyz",
        ]
        .iter()
        .any(|p| path.starts_with(p))
        && !path.rsplit('/').next().unwrap_or("").contains('.')
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}
