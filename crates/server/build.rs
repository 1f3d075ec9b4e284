//! Bundles the GraphiQL explorer from its npm packages at build time, so the binary serves
//! it itself and the page loads nothing from the internet (and passes a strict CSP).
//!
//! Runs `npm ci` against the pinned `explorer/package-lock.json` in OUT_DIR (once per
//! lock-file change) and copies the few files the page needs next to it.

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
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"])
            .current_dir(&work)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "npm is needed to bundle the GraphQL explorer ({e}); install Node.js 20 and npm, then build again"
                )
            });
        assert!(
            status.success(),
            "`npm ci` for the explorer failed; see its output above"
        );
        std::fs::write(&installed_lock, &lock).unwrap();
    }
    let dest = out.join("explorer");
    std::fs::create_dir_all(&dest).unwrap();
    for (from, to) in FILES {
        copy_if_changed(&work.join("node_modules").join(from), &dest.join(to));
    }
}

fn copy_if_changed(from: &Path, to: &Path) {
    let new = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    if std::fs::read(to).ok().as_deref() != Some(&new[..]) {
        std::fs::write(to, new).unwrap();
    }
}
