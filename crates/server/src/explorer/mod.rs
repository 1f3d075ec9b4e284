//! The GraphiQL explorer, bundled into the binary at build time (see `build.rs`).

pub const INDEX_HTML: &str = include_str!("index.html");

macro_rules! bundled {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/explorer/", $name)).as_slice()
    };
}

/// The content type and bytes of an explorer file.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    Some(match name {
        "graphiql.min.js" => (JS, bundled!("graphiql.min.js")),
        "graphiql.min.css" => (CSS, bundled!("graphiql.min.css")),
        "react.production.min.js" => (JS, bundled!("react.production.min.js")),
        "react-dom.production.min.js" => (JS, bundled!("react-dom.production.min.js")),
        "graphql-ws.min.js" => (JS, bundled!("graphql-ws.min.js")),
        "init.js" => (JS, include_bytes!("init.js").as_slice()),
        "page.css" => (CSS, include_bytes!("page.css").as_slice()),
        _ => return None,
    })
}
