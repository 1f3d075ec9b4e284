//! Relay conventions through the public API: every list is a cursor connection that pages
//! forward and backward to the same items, cursors cannot be forged or carried to another
//! list, and every object has a global id that `node`/`nodes` fetch again — never across
//! organizations.

use jsc_testkit::{TestApp, code, unique};
use serde_json::{Value, json};

const PAGE_INFO: &str = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount";

/// The connection at `path` of an answer.
fn at<'a>(data: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(data, |v, p| &v[*p])
}

/// Keys of a page's edges (by the JSON pointer `key` into each node), checking that `nodes`
/// holds the same items and `pageInfo` points at the first and last edge.
fn keys_of(conn: &Value, key: &str) -> Vec<Value> {
    let edges = conn["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no edges in {conn:#}"));
    let nodes = conn["nodes"].as_array().expect("nodes");
    assert_eq!(edges.len(), nodes.len(), "{conn:#}");
    let keys: Vec<Value> = edges.iter().map(|e| e["node"].pointer(key).cloned().unwrap()).collect();
    let node_keys: Vec<Value> = nodes.iter().map(|n| n.pointer(key).cloned().unwrap()).collect();
    assert_eq!(keys, node_keys, "edges and nodes disagree: {conn:#}");
    let info = &conn["pageInfo"];
    assert_eq!(
        info["startCursor"],
        edges.first().map_or(Value::Null, |e| e["cursor"].clone())
    );
    assert_eq!(
        info["endCursor"],
        edges.last().map_or(Value::Null, |e| e["cursor"].clone())
    );
    keys
}

/// Pages through the connection at `path` of `query` (which passes `$first $after $last
/// $before` to it) forward and then backward, a few items at a time, and checks both walks
/// against the whole list read in one page of `max`. Returns the whole list's keys.
async fn walk(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    vars: Value,
    path: &[&str],
    key: &str,
    max: u64,
) -> Vec<Value> {
    let ask = |paging: Value| {
        let mut v = vars.clone();
        v.as_object_mut().unwrap().extend(paging.as_object().unwrap().clone());
        v
    };
    let whole = app.data_as(token, query, ask(json!({"first": max}))).await;
    let whole_conn = at(&whole, path);
    let all = keys_of(whole_conn, key);
    assert!(
        all.len() >= 3,
        "set up at least three items at {path:?}: {whole_conn:#}"
    );
    assert_eq!(whole_conn["totalCount"], json!(all.len()), "{whole_conn:#}");
    assert_eq!(whole_conn["pageInfo"]["hasNextPage"], false);
    assert_eq!(whole_conn["pageInfo"]["hasPreviousPage"], false);
    let size = all.len().div_ceil(3).max(2) as u64;

    let (mut forward, mut after, mut pages) = (Vec::new(), Value::Null, 0);
    loop {
        let page = app
            .data_as(token, query, ask(json!({"first": size, "after": after})))
            .await;
        let conn = at(&page, path);
        assert_eq!(
            conn["totalCount"],
            json!(all.len()),
            "the total is the whole list's on every page"
        );
        assert_eq!(
            conn["pageInfo"]["hasPreviousPage"],
            json!(pages > 0),
            "{path:?} page {pages}: {conn:#}"
        );
        forward.extend(keys_of(conn, key));
        pages += 1;
        assert!(pages <= all.len(), "{path:?} does not end paging forward");
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(forward, all, "{path:?} paged forward by {size}");
    assert!(pages >= 2, "{path:?}: more than one page");

    let (mut backward, mut before, mut pages) = (Vec::new(), Value::Null, 0);
    loop {
        let page = app
            .data_as(token, query, ask(json!({"last": size, "before": before})))
            .await;
        let conn = at(&page, path);
        assert_eq!(
            conn["pageInfo"]["hasNextPage"],
            json!(pages > 0),
            "{path:?} back page {pages}: {conn:#}"
        );
        let mut keys = keys_of(conn, key);
        keys.append(&mut backward);
        backward = keys;
        pages += 1;
        assert!(pages <= all.len(), "{path:?} does not end paging backward");
        if conn["pageInfo"]["hasPreviousPage"] == false {
            break;
        }
        before = conn["pageInfo"]["startCursor"].clone();
    }
    assert_eq!(backward, all, "{path:?} paged backward by {size}");
    all
}

const PAGING_VARS: &str = "$first: Int, $after: String, $last: Int, $before: String";
const PAGING_ARGS: &str = "first: $first, after: $after, last: $last, before: $before";

fn connection_query(head: &str, field: &str, node: &str, tail: &str) -> String {
    format!(
        "{head} {{ {field}({PAGING_ARGS}) {{ edges {{ cursor node {{ {node} }} }} nodes {{ {node} }} {PAGE_INFO} }} {tail}"
    )
}

/// A console with several of everything: clusters, streams, consumers, members, teams,
/// invitations, sessions and API keys.
struct Fleet {
    app: TestApp,
    cluster: String,
    other_cluster: String,
    /// A member of the default organization only.
    member: String,
    team: String,
    invitation: String,
    api_key: String,
}

async fn fleet() -> Fleet {
    let app = TestApp::spawn().await;
    let url = app.nats.url().to_string();
    let mut clusters = Vec::new();
    for name in ["Delta", "alpha", "Charlie", "bravo"] {
        clusters.push(app.register_cluster(json!({"name": name, "urls": [url]})).await);
    }
    let cluster = clusters[1].clone();
    for (i, name) in ["ORDERS", "AUDIT", "EVENTS", "BILLING", "METRICS"].iter().enumerate() {
        app.create_stream(&cluster, name, &[&format!("s{i}.>")]).await;
    }
    for durable in ["worker-b", "worker-a", "worker-c"] {
        app.create_consumer(&cluster, "ORDERS", durable).await;
    }
    for d in ["one", "two", "three"] {
        app.update_cluster(&cluster, json!({"description": d})).await;
    }
    let mut members = Vec::new();
    for who in ["zoe", "adam", "mia"] {
        members.push(
            app.invite_member("default", &format!("{who}@example.com"), "VIEWER")
                .await
                .0,
        );
    }
    let mut team = String::new();
    for name in ["Platform", "data", "Edge"] {
        let t = app
            .data(
                "mutation($o: ID!, $n: String!) { createTeam(input: {organizationId: $o, name: $n}) { team { id } } }",
                json!({"o": "default", "n": name}),
            )
            .await;
        team = t["createTeam"]["team"]["id"].as_str().unwrap().to_string();
    }
    for m in &members {
        app.data(
            "mutation($o: ID!, $t: ID!, $u: ID!) { addTeamMember(input: {organizationId: $o, teamId: $t, userId: $u}) { team { id } } }",
            json!({"o": "default", "t": team, "u": m}),
        )
        .await;
    }
    let invitation = app.invite("default", "pending-1@example.com", "VIEWER").await.id;
    app.invite("default", "pending-2@example.com", "OPERATOR").await;
    for _ in 0..3 {
        app.login(jsc_testkit::OWNER_EMAIL, jsc_testkit::OWNER_PASSWORD).await;
    }
    let mut api_key = String::new();
    for name in ["ci", "deploy", "backup"] {
        let k = app
            .data(
                "mutation($o: ID!, $n: String!) { createApiKey(input: {organizationId: $o, name: $n, role: VIEWER}) { apiKey { id } } }",
                json!({"o": "default", "n": name}),
            )
            .await;
        api_key = k["createApiKey"]["apiKey"]["id"].as_str().unwrap().to_string();
    }
    Fleet {
        app,
        other_cluster: clusters[0].clone(),
        member: members[0].clone(),
        cluster,
        team,
        invitation,
        api_key,
    }
}

#[tokio::test]
async fn every_connection_pages_forward_and_backward_to_the_whole_list() {
    let f = fleet().await;
    let (app, t) = (&f.app, f.app.token.as_deref());
    let q =
        |head: &str, field: &str, node: &str| connection_query(&format!("query({PAGING_VARS}{head})"), field, node, "");

    let names = walk(
        app,
        t,
        &format!("{} }}", q("", "clusters", "id name")),
        json!({}),
        &["clusters"],
        "/name",
        500,
    )
    .await;
    let ours: Vec<&str> = names
        .iter()
        .filter_map(Value::as_str)
        .filter(|n| ["alpha", "bravo", "Charlie", "Delta"].contains(n))
        .collect();
    assert_eq!(
        ours,
        ["alpha", "bravo", "Charlie", "Delta"],
        "by name, ignoring case: {names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.as_str().unwrap().to_lowercase());
    assert_eq!(names, sorted);

    let streams = walk(
        app,
        t,
        &format!(
            "{} }}",
            q(", $c: ID!", "streams", "id name").replace("streams(", "streams(clusterId: $c, ")
        ),
        json!({"c": f.cluster}),
        &["streams"],
        "/name",
        500,
    )
    .await;
    assert_eq!(
        streams,
        json!(["AUDIT", "BILLING", "EVENTS", "METRICS", "ORDERS"])
            .as_array()
            .unwrap()
            .clone()
    );

    // Filtered, the list pages the same way over what the filter keeps.
    let filtered = walk(
        app,
        t,
        &format!(
            "{} }}",
            q(", $c: ID!", "streams", "id name").replace("streams(", "streams(clusterId: $c, nameContains: \"i\", ")
        ),
        json!({"c": f.cluster}),
        &["streams"],
        "/name",
        500,
    )
    .await;
    assert_eq!(
        filtered,
        json!(["AUDIT", "BILLING", "METRICS"]).as_array().unwrap().clone()
    );

    // The same list under its cluster.
    let nested = connection_query(
        &format!("query({PAGING_VARS}, $id: ID!) {{ cluster(id: $id)"),
        "streams",
        "name",
        "}",
    );
    walk(
        app,
        t,
        &format!("{nested} }}"),
        json!({"id": f.cluster}),
        &["cluster", "streams"],
        "/name",
        500,
    )
    .await;

    let consumers = connection_query(
        &format!("query({PAGING_VARS}, $c: ID!) {{ stream(clusterId: $c, name: \"ORDERS\")"),
        "consumers",
        "id name",
        "}",
    );
    let names = walk(
        app,
        t,
        &format!("{consumers} }}"),
        json!({"c": f.cluster}),
        &["stream", "consumers"],
        "/name",
        500,
    )
    .await;
    assert_eq!(
        names,
        json!(["worker-a", "worker-b", "worker-c"]).as_array().unwrap().clone()
    );

    let history = q(", $id: ID!", "history", "sequence eventType")
        .replace("history(", "history(aggregateType: CLUSTER, id: $id, ");
    let seqs = walk(
        app,
        t,
        &format!("{history} }}"),
        json!({"id": f.cluster}),
        &["history"],
        "/sequence",
        1000,
    )
    .await;
    assert!(
        seqs.windows(2).all(|w| w[0].as_u64() < w[1].as_u64()),
        "oldest first: {seqs:?}"
    );

    let audit = q("", "auditTrail", "id sequence");
    let seqs = walk(
        app,
        t,
        &format!("{audit} }}"),
        json!({}),
        &["auditTrail"],
        "/sequence",
        1000,
    )
    .await;
    assert!(
        seqs.windows(2).all(|w| w[0].as_u64() > w[1].as_u64()),
        "newest first: {seqs:?}"
    );

    let org = |field: &str, node: &str| {
        format!(
            "{} }} }}",
            connection_query(
                &format!("query({PAGING_VARS}) {{ organization(id: \"default\")"),
                field,
                node,
                ""
            )
            .trim_end_matches(' ')
        )
    };
    let members = walk(
        app,
        t,
        &org("members", "role user { id name }"),
        json!({}),
        &["organization", "members"],
        "/user/name",
        500,
    )
    .await;
    assert_eq!(members.len(), 4, "the owner and three members: {members:?}");
    let teams = walk(
        app,
        t,
        &org("teams", "id name"),
        json!({}),
        &["organization", "teams"],
        "/name",
        500,
    )
    .await;
    assert_eq!(teams, json!(["data", "Edge", "Platform"]).as_array().unwrap().clone());
    let invitations = walk(
        app,
        t,
        &org("invitations", "id email createdAt"),
        json!({}),
        &["organization", "invitations"],
        "/id",
        500,
    )
    .await;
    assert_eq!(invitations.len(), 5);
    assert_eq!(
        invitations[1],
        json!(f.invitation),
        "newest first: the last invitation made comes first"
    );
    let keys = walk(
        app,
        t,
        &org("apiKeys", "id name"),
        json!({}),
        &["organization", "apiKeys"],
        "/id",
        500,
    )
    .await;
    assert_eq!(keys[0], json!(f.api_key), "newest first");

    let sessions = connection_query(&format!("query({PAGING_VARS}) {{ me"), "sessions", "id startedAt", "}");
    let s = walk(
        app,
        t,
        &format!("{sessions} }}"),
        json!({}),
        &["me", "sessions"],
        "/id",
        500,
    )
    .await;
    assert!(s.len() >= 4, "the owner's four sign-ins: {s:?}");

    let team = connection_query(
        &format!("query({PAGING_VARS}, $id: ID!) {{ node(id: $id) {{ ... on Team"),
        "members",
        "id name",
        "} }",
    );
    let users = walk(
        app,
        t,
        &format!("{team} }}"),
        json!({"id": f.team}),
        &["node", "members"],
        "/name",
        500,
    )
    .await;
    assert_eq!(users.len(), 3);
}

#[tokio::test]
async fn a_connection_over_websocket_pages_like_over_http() {
    let f = fleet().await;
    let query = format!(
        "{} }}",
        connection_query(
            &format!("query({PAGING_VARS}, $c: ID!) {{ stream(clusterId: $c, name: \"ORDERS\")"),
            "consumers",
            "name",
            "}"
        )
    );
    let http = f.app.data(&query, json!({"c": f.cluster, "first": 2})).await;
    let mut ws = f
        .app
        .subscribe("graphql-transport-ws", &query, json!({"c": f.cluster, "first": 2}))
        .await;
    let over_ws = ws.next_data().await;
    assert_eq!(
        over_ws["stream"]["consumers"]["nodes"],
        http["stream"]["consumers"]["nodes"]
    );
    let after = over_ws["stream"]["consumers"]["pageInfo"]["endCursor"].clone();
    let next = f
        .app
        .data(&query, json!({"c": f.cluster, "first": 2, "after": after}))
        .await;
    assert_eq!(
        next["stream"]["consumers"]["nodes"],
        json!([{"name": "worker-c"}]),
        "a WebSocket cursor pages over HTTP"
    );
}

#[tokio::test]
async fn bad_cursors_and_page_sizes_are_refused_with_validation() {
    let f = fleet().await;
    let app = &f.app;
    let clusters = format!(
        "{} }}",
        connection_query(&format!("query({PAGING_VARS})"), "clusters", "name", "")
    );
    let streams = format!(
        "{} }}",
        connection_query(&format!("query({PAGING_VARS}, $c: ID!)"), "streams", "name", "")
            .replace("streams(", "streams(clusterId: $c, ")
    );
    let page = app.data(&clusters, json!({"first": 2})).await;
    let cursor = page["clusters"]["pageInfo"]["endCursor"].as_str().unwrap().to_string();

    let refused = |body: &Value| {
        (
            code(body),
            body["errors"][0]["message"].as_str().unwrap_or_default().to_string(),
        )
    };
    // Forged: changed by a character, made up, or a plain number.
    let (body_part, mac) = cursor.rsplit_once('.').unwrap();
    let mut chars: Vec<char> = body_part.chars().collect();
    let i = chars.len() - 3;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let edited = format!("{}.{mac}", chars.into_iter().collect::<String>());
    for bad in [edited.as_str(), "bm90IGEgY3Vyc29y", "42", ""] {
        for arg in ["after", "before"] {
            let body = app.graphql(&clusters, json!({"first": 2, arg: bad})).await;
            let (c, m) = refused(&body);
            assert_eq!(c, "VALIDATION", "{arg}: {bad:?}: {body}");
            assert!(
                m.contains(arg) && m.contains("cursor"),
                "the message names the argument: {m}"
            );
        }
    }
    // A real cursor of another list: the clusters' cursor on a stream list.
    let body = app.graphql(&streams, json!({"c": f.cluster, "after": cursor})).await;
    assert_eq!(refused(&body).0, "VALIDATION", "{body}");
    // ...and a stream cursor of one cluster on another cluster's streams.
    let page = app.data(&streams, json!({"c": f.cluster, "first": 1})).await;
    let stream_cursor = page["streams"]["pageInfo"]["endCursor"].clone();
    let body = app
        .graphql(&streams, json!({"c": f.other_cluster, "after": stream_cursor}))
        .await;
    assert_eq!(
        refused(&body).0,
        "VALIDATION",
        "a cursor is bound to its cluster: {body}"
    );

    // Page sizes: over the maximum, negative, or both ends.
    for (vars, says) in [
        (json!({"first": 501}), "500"),
        (json!({"last": 501}), "500"),
        (json!({"first": -1}), "first"),
        (json!({"first": 1, "last": 1}), "not both"),
    ] {
        let body = app.graphql(&clusters, vars.clone()).await;
        let (c, m) = refused(&body);
        assert_eq!(c, "VALIDATION", "{vars}: {body}");
        assert!(m.contains(says), "{vars}: {m}");
    }
    let audit = format!(
        "{} }}",
        connection_query(&format!("query({PAGING_VARS})"), "auditTrail", "sequence", "")
    );
    assert_eq!(code(&app.graphql(&audit, json!({"first": 1001})).await), "VALIDATION");
    let ok = app.data(&audit, json!({"first": 1000})).await;
    assert!(ok["auditTrail"]["nodes"].as_array().unwrap().len() > 10);
    // Zero is a page with no items that still says where the list goes.
    let none = app.data(&clusters, json!({"first": 0})).await;
    assert_eq!(none["clusters"]["nodes"], json!([]));
    assert_eq!(none["clusters"]["pageInfo"]["hasNextPage"], true);
}

const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id } }";

#[tokio::test]
async fn node_fetches_every_type_again_and_nothing_across_organizations() {
    let f = fleet().await;
    let app = &f.app;
    let stream = app
        .data(
            "query($c: ID!) { stream(clusterId: $c, name: \"ORDERS\") { id consumers(first: 1) { nodes { id } } } }",
            json!({"c": f.cluster}),
        )
        .await;
    let me = app
        .data(
            "{ me { id sessions(first: 1) { nodes { id } } } auditTrail(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let ids = [
        ("Cluster", json!(f.cluster)),
        ("Stream", stream["stream"]["id"].clone()),
        ("Consumer", stream["stream"]["consumers"]["nodes"][0]["id"].clone()),
        ("User", json!(f.member)),
        ("Organization", json!("default")),
        ("Team", json!(f.team)),
        ("Session", me["me"]["sessions"]["nodes"][0]["id"].clone()),
        ("ApiKey", json!(f.api_key)),
        ("Invitation", json!(f.invitation)),
        ("AuditEntry", me["auditTrail"]["nodes"][0]["id"].clone()),
    ];
    for (typename, id) in &ids {
        assert!(id.is_string(), "{typename} has an id");
        let got = app.data(NODE, json!({"id": id})).await;
        assert_eq!(got["node"]["__typename"], *typename, "{id}: {got}");
        assert_eq!(got["node"]["id"], *id);
    }
    let stream_id = ids[1].1.clone();
    let fields = app
        .data(
            "query($id: ID!) { node(id: $id) { ... on Stream { name clusterId config { subjects } } } }",
            json!({"id": stream_id}),
        )
        .await;
    assert_eq!(fields["node"]["name"], "ORDERS");
    assert_eq!(fields["node"]["clusterId"], json!(f.cluster));

    // nodes: in the order asked, with a null and its own error for what names nothing.
    let all: Vec<Value> = ids.iter().map(|(_, id)| id.clone()).collect();
    let mut asked = all.clone();
    asked.insert(2, json!("no-such-id"));
    let body = app
        .graphql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({"ids": asked}))
        .await;
    let got = body["data"]["nodes"].as_array().unwrap();
    assert_eq!(got.len(), asked.len());
    assert_eq!(got[2], Value::Null);
    let back: Vec<Value> = got.iter().filter(|n| !n.is_null()).map(|n| n["id"].clone()).collect();
    assert_eq!(back, all);
    assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert_eq!(
        body["errors"][0]["path"],
        json!(["nodes", 2]),
        "the error names the id it is about"
    );
    let many: Vec<Value> = (0..101).map(|_| json!(f.cluster)).collect();
    assert_eq!(
        code(
            &app.graphql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({"ids": many}))
                .await
        ),
        "VALIDATION"
    );

    // An admin of another organization sees none of the default organization's objects.
    let org = app
        .data(
            "mutation($n: String!) { createOrganization(input: {name: $n}) { organization { id } } }",
            json!({"n": unique("other")}),
        )
        .await["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, outsider) = app.invite_member(&org, "outsider@example.com", "ADMIN").await;
    for (typename, id) in &ids {
        let body = app.graphql_as(Some(&outsider), NODE, json!({"id": id})).await;
        assert_eq!(code(&body), "NOT_FOUND", "{typename} {id} across organizations: {body}");
        assert!(body["data"]["node"].is_null() || body["data"].is_null());
    }
    // And the same id that names nothing reads the same as one that is hidden.
    let hidden = app.graphql_as(Some(&outsider), NODE, json!({"id": f.cluster})).await;
    let nothing = app
        .graphql_as(
            Some(&outsider),
            NODE,
            json!({"id": "0193a7c2-0000-7000-8000-000000000000"}),
        )
        .await;
    assert_eq!(code(&hidden), code(&nothing));
    // A viewer (admin nowhere) reads no audit entry: NOT_FOUND, as for anything hidden.
    let (_, viewer) = app.invite_member("default", "viewer-only@example.com", "VIEWER").await;
    let entry = &ids.iter().find(|(t, _)| *t == "AuditEntry").unwrap().1;
    let body = app.graphql_as(Some(&viewer), NODE, json!({"id": entry})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    // A session that ended is gone, as from `User.sessions`.
    let fresh = app.login(jsc_testkit::OWNER_EMAIL, jsc_testkit::OWNER_PASSWORD).await;
    let fresh = fresh["accessToken"].as_str().unwrap().to_string();
    let mine = app
        .data_as(
            Some(&fresh),
            "{ me { sessions(first: 1) { nodes { id current } } } }",
            json!({}),
        )
        .await;
    let session = mine["me"]["sessions"]["nodes"][0].clone();
    assert_eq!(session["current"], true, "{mine}");
    assert_eq!(
        app.data(NODE, json!({"id": session["id"]})).await["node"]["__typename"],
        "Session"
    );
    app.data(
        "mutation($id: ID!) { revokeSession(input: {id: $id}) { sessionId } }",
        json!({"id": session["id"]}),
    )
    .await;
    assert_eq!(
        code(&app.graphql(NODE, json!({"id": session["id"]})).await),
        "NOT_FOUND"
    );
    // Without credentials, node says to sign in.
    assert_eq!(
        code(&app.graphql_as(None, NODE, json!({"id": f.cluster})).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn the_audit_trail_pages_both_ways_across_parquet_files_and_the_stream_tail() {
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.audit_max_rows = 3;
        c.audit_max_age = std::time::Duration::from_secs(3600);
    })
    .await;
    let url = app.nats.url().to_string();
    let id = app.register_cluster(json!({"name": "trail", "urls": [url]})).await;
    for d in ["a", "b", "c", "d", "e", "f", "g"] {
        app.update_cluster(&id, json!({"description": d})).await;
    }
    let total = app.last_sequence().await;
    let flushed = total / 3 * 3;
    app.wait_kv("audit_state", "flushed", |v| {
        v.and_then(Value::as_u64).unwrap_or(0) >= flushed
    })
    .await;
    let audit = format!(
        "{} }}",
        connection_query(&format!("query({PAGING_VARS})"), "auditTrail", "id sequence", "")
    );
    let seqs = walk(
        &app,
        app.token.as_deref(),
        &audit,
        json!({}),
        &["auditTrail"],
        "/sequence",
        1000,
    )
    .await;
    let all: Vec<Value> = (1..=total).rev().map(|s| json!(s)).collect();
    assert_eq!(seqs, all, "every event, from the files and from the tail, newest first");
}
