//! The matrix lists exactly the routes the server registers: the router
//! cannot be listed at run time, so they are read from the server's
//! source, and a route added without a row fails here instead of going
//! unchecked.

use std::collections::BTreeSet;
use std::path::Path;

use super::{ROUTES, Route};

#[test]
fn the_matrix_names_every_registered_route() {
    let registered = registered_routes();
    let listed: BTreeSet<(String, String)> = ROUTES.iter().map(template).collect();
    let missing: Vec<_> = registered.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&registered).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "the matrix must list exactly the server's routes: missing {missing:?}, not served {unknown:?}"
    );
}

/// A row's route as the server registers it: method and path template.
fn template(route: &Route) -> (String, String) {
    let method = if route.method == "WS" {
        "GET"
    } else {
        route.method
    };
    let mut path = route
        .path
        .replace("{me}", "{user}")
        .replace("{mona}", "{user}")
        .replace("{oona}", "{user}")
        .replace("{own_token}", "{token}");
    if path.starts_with("/yjs/{room}/") {
        path = "/yjs/{room}/{doc}".to_owned();
    }
    if let Some((head, _action)) = path.split_once("/ledger/{entry}/") {
        path = format!("{head}/ledger/{{entry}}/{{action}}");
    }
    (method.to_owned(), path)
}

/// Every route the server registers, read from its source: each
/// `.route("path", method(handler)...)` of `server/src/http.rs` (at the
/// root) and of `server/src/http/*.rs` (nested under `/api/v1`). The router
/// cannot be listed at run time, and a route added without a row here must
/// fail this test, not pass unchecked.
fn registered_routes() -> BTreeSet<(String, String)> {
    let http = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src/http");
    let mut routes = BTreeSet::new();
    let root = std::fs::read_to_string(http.with_extension("rs")).expect("server/src/http.rs");
    add_routes(&root, "", &mut routes);
    for file in std::fs::read_dir(&http).expect("server/src/http") {
        let path = file.expect("a directory entry").path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let source = std::fs::read_to_string(&path).expect("a source file");
            add_routes(&source, "/api/v1", &mut routes);
        }
    }
    assert!(routes.len() > 40, "too few routes parsed: {routes:?}");
    routes
}

fn add_routes(source: &str, prefix: &str, routes: &mut BTreeSet<(String, String)>) {
    for (start, call) in source.match_indices(".route(") {
        let rest = &source[start + call.len()..];
        // The call's arguments: up to the parenthesis that closes it.
        let mut depth = 1usize;
        let end = rest
            .char_indices()
            .find_map(|(at, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(at)
            })
            .expect("a closed .route( call");
        let arguments = &rest[..end];
        let path = arguments.split('"').nth(1).expect("a path literal");
        for method in ["get", "post", "put", "delete", "patch"] {
            let called = arguments
                .match_indices(&format!("{method}("))
                .any(|(at, _)| {
                    arguments[..at]
                        .chars()
                        .next_back()
                        .is_none_or(|before| !before.is_alphanumeric() && before != '_')
                });
            if called {
                routes.insert((method.to_uppercase(), format!("{prefix}{path}")));
            }
        }
    }
}
