//! Bundles the two pages the binary serves, so nothing is loaded from the internet and both
//! pass a strict CSP:
//! - the GraphiQL explorer, from its npm packages: `npm ci` against the pinned
//!   `explorer/package-lock.json` in OUT_DIR (once per lock-file change), then the few files the
//!   page needs copied next to it;
//! - the web console (`web/` at the top of the repository): `npm ci` there (once per lock-file
//!   change), then `npm run build` (typed operations generated from `schema/console.graphql`,
//!   type-checked, bundled by Vite) into OUT_DIR, each file also gzipped, and a table of them
//!   written for `web.rs` to include.

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: [(&str, &str); 5] = [
    ("graphiql/graphiql.min.js", "graphiql.min.js"),
    ("graphiql/graphiql.min.css", "graphiql.min.css"),
    ("react/umd/react.production.min.js", "react.production.min.js"),
    (
        "react-dom/umd/react-dom.production.min.js",
        "react-dom.production.min.js",
    ),
    ("graphql-ws/umd/graphql-ws.min.js", "graphql-ws.min.js"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let src = manifest.join("explorer");
    println!("cargo:rerun-if-changed=explorer/package.json");
    println!("cargo:rerun-if-changed=explorer/package-lock.json");

    let work = out.join("explorer-npm");
    std::fs::create_dir_all(&work).unwrap();
    let lock = std::fs::read(src.join("package-lock.json")).expect("explorer/package-lock.json");
    let installed_lock = work.join("installed-lock.json");
    let up_to_date = std::fs::read(&installed_lock).is_ok_and(|l| l == lock)
        && FILES
            .iter()
            .all(|(from, _)| work.join("node_modules").join(from).is_file());
    if !up_to_date {
        std::fs::copy(src.join("package.json"), work.join("package.json")).unwrap();
        std::fs::write(work.join("package-lock.json"), &lock).unwrap();
        npm(
            &work,
            &["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            &[],
            "install the GraphQL explorer's packages",
        );
        std::fs::write(&installed_lock, &lock).unwrap();
    }
    let dest = out.join("explorer");
    std::fs::create_dir_all(&dest).unwrap();
    for (from, to) in FILES {
        copy_if_changed(&work.join("node_modules").join(from), &dest.join(to));
    }
    build_web(&manifest.join("../../web"), &out);
}

/// Builds the web console into `OUT_DIR/web` and writes `OUT_DIR/web_assets.rs`: a table of
/// `(path, content type, bytes, gzipped bytes)`.
fn build_web(web: &Path, out: &Path) {
    // Every input but the generated operations (`src/gql`, written by the build itself).
    for f in [
        "package.json",
        "package-lock.json",
        "index.html",
        "vite.config.ts",
        "codegen.ts",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(f).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        web.join("../schema/console.graphql").display()
    );
    let mut sources = Vec::new();
    walk(&web.join("src"), &mut sources);
    for f in &sources {
        if !f.components().any(|c| c.as_os_str() == "gql") {
            println!("cargo:rerun-if-changed={}", f.display());
        }
    }

    let lock = std::fs::read(web.join("package-lock.json")).expect("web/package-lock.json");
    let stamp = web.join("node_modules/.installed-lock.json");
    if std::fs::read(&stamp).ok().as_deref() != Some(&lock[..]) {
        npm(
            web,
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
            &[],
            "install the web console's packages",
        );
        std::fs::write(&stamp, &lock).unwrap();
    }
    let dist = out.join("web");
    npm(
        web,
        &["run", "--silent", "build"],
        &[("JSC_WEB_OUT", dist.as_os_str())],
        "build the web console (a GraphQL operation that no longer matches schema/console.graphql, or a \
         type error in web/src)",
    );

    let mut files = Vec::new();
    walk(&dist, &mut files);
    files.sort();
    let mut table = String::from("&[\n");
    for f in files {
        let rel = f.strip_prefix(&dist).unwrap().to_string_lossy().replace('\\', "/");
        let bytes = std::fs::read(&f).unwrap();
        let gz = out.join("web-gz").join(&rel);
        std::fs::create_dir_all(gz.parent().unwrap()).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &bytes).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let ty = match f.extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("png") => "image/png",
            Some("woff2") => "font/woff2",
            Some("json") => "application/json",
            _ => "application/octet-stream",
        };
        table.push_str(&format!(
            "    (\"/{rel}\", \"{ty}\", include_bytes!({:?}).as_slice(), include_bytes!({:?}).as_slice()),\n",
            f.display().to_string(),
            gz.display().to_string()
        ));
    }
    table.push(']');
    std::fs::write(out.join("web_assets.rs"), table).unwrap();
}

fn npm(dir: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)], what: &str) {
    let status = Command::new("npm")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("npm is needed to {what} ({e}); install Node.js 20 and npm, then build again"));
    assert!(status.success(), "npm could not {what}; see its output above");
}

fn walk(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, into);
        } else {
            into.push(p);
        }
    }
}

fn copy_if_changed(from: &Path, to: &Path) {
    let new = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    if std::fs::read(to).ok().as_deref() != Some(&new[..]) {
        std::fs::write(to, new).unwrap();
    }
}
