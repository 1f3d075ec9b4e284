//! Identity and access through GraphQL against a real nats-server: sign-in, sessions,
//! refresh rotation and reuse detection, invitations, API keys, organizations, the role ×
//! operation matrix, WebSocket authentication, and the security cases.

use std::collections::BTreeMap;

use base64::Engine;
use futures::StreamExt;
use jsc_testkit::gql::{ACCEPT, INVITE, LOGIN};
use jsc_testkit::{OWNER_EMAIL, OWNER_PASSWORD, TestApp, cli, code, first_error, member_password};
use serde_json::{Value, json};

const ME: &str = "{ me { id email organizations { organization { id } role } } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshSession(input: {refreshToken: $t}) { accessToken refreshToken } }";
const CREATE_KEY: &str = "mutation($o: ID!, $n: String!, $r: Role!, $x: DateTime, $s: String) { createApiKey(input: {organizationId: $o, name: $n, role: $r, expiresAt: $x, serviceAccount: $s}) { key apiKey { id role revoked userId serviceAccount } } }";
const SIGNING_KEY: [u8; 32] = [42; 32];

async fn spawn_with_key() -> TestApp {
    TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.signing_keys = vec![base64::engine::general_purpose::STANDARD.encode(SIGNING_KEY)];
    })
    .await
}

#[tokio::test]
async fn sessions_refresh_once_detect_reuse_and_end_on_logout() {
    let app = TestApp::spawn().await;
    let auth = app.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let (access, refresh) = (
        auth["accessToken"].as_str().unwrap(),
        auth["refreshToken"].as_str().unwrap(),
    );
    let me = app.data_as(Some(access), ME, json!({})).await;
    assert_eq!(me["me"]["email"], OWNER_EMAIL);
    assert_eq!(me["me"]["organizations"][0]["role"], "OWNER");

    // A refresh token works once and yields new tokens that work.
    let next = app.data_as(None, REFRESH, json!({"t": refresh})).await["refreshSession"].clone();
    let (access2, refresh2) = (
        next["accessToken"].as_str().unwrap(),
        next["refreshToken"].as_str().unwrap(),
    );
    assert_ne!(refresh2, refresh);
    assert!(
        app.graphql_as(Some(access2), ME, json!({}))
            .await
            .get("errors")
            .is_none()
    );

    // Presenting the old one again: someone copied it. The whole session ends.
    let reused = app.graphql_as(None, REFRESH, json!({"t": refresh})).await;
    assert_eq!(code(&reused), "UNAUTHENTICATED");
    assert!(first_error(&reused).1.contains("already used"), "{reused}");
    for token in [access, access2] {
        assert_eq!(
            code(&app.graphql_as(Some(token), ME, json!({})).await),
            "UNAUTHENTICATED"
        );
    }
    assert_eq!(
        code(&app.graphql_as(None, REFRESH, json!({"t": refresh2})).await),
        "UNAUTHENTICATED"
    );
    let history = app
        .data(
            "query($id: ID!) { history(aggregateType: SESSION, id: $id) { nodes { eventType payload } } }",
            json!({"id": session_id(refresh)}),
        )
        .await;
    let types: Vec<&str> = history["history"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["SessionStarted", "SessionRefreshed", "SessionRevoked"]);

    // Logout ends a session at once.
    let auth = app.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let access = auth["accessToken"].as_str().unwrap();
    let sessions = app
        .data_as(Some(access), "{ me { sessions { nodes { id } } } }", json!({}))
        .await["me"]["sessions"]["nodes"]
        .to_string();
    let ended = app
        .data_as(Some(access), "mutation { logout { sessionId } }", json!({}))
        .await["logout"]["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sessions.contains(&format!("\"{ended}\"")),
        "logout names the session it ended: {ended} in {sessions}"
    );
    assert_eq!(
        code(&app.graphql_as(Some(access), ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    let refresh = auth["refreshToken"].as_str().unwrap();
    assert_eq!(
        code(&app.graphql_as(None, REFRESH, json!({"t": refresh})).await),
        "UNAUTHENTICATED"
    );
}

/// The session id inside a refresh token (`jscr_<base64 json>.<mac>`).
fn session_id(refresh: &str) -> String {
    let body = refresh.trim_start_matches("jscr_").split('.').next().unwrap();
    let json: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    json["sid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let app = TestApp::spawn().await;
    let other = app.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let changed = app
        .graphql(
            "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { accessToken } }",
            json!({"c": "wrong password here", "n": "a brand new password"}),
        )
        .await;
    assert_eq!(code(&changed), "UNAUTHENTICATED");
    let short = app
        .graphql(
            "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { accessToken } }",
            json!({"c": OWNER_PASSWORD, "n": "short"}),
        )
        .await;
    assert_eq!(code(&short), "VALIDATION");
    let changed = app
        .data(
            "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { accessToken } }",
            json!({"c": OWNER_PASSWORD, "n": "a brand new password"}),
        )
        .await;
    let fresh = changed["changePassword"]["accessToken"].as_str().unwrap();
    assert!(app.graphql_as(Some(fresh), ME, json!({})).await.get("errors").is_none());
    for old in [app.token.as_deref().unwrap(), other["accessToken"].as_str().unwrap()] {
        assert_eq!(code(&app.graphql_as(Some(old), ME, json!({})).await), "UNAUTHENTICATED");
    }
    let again = app.try_login(OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(code(&again), "UNAUTHENTICATED");
    app.login(OWNER_EMAIL, "a brand new password").await;
}

#[tokio::test]
async fn forged_none_expired_disabled_revoked_and_foreign_credentials_are_refused_and_change_nothing() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let app = spawn_with_key().await;
    let (bob, bob_token) = app.invite_member("default", "bob@example.com", "ADMIN").await;
    let register =
        "mutation { registerCluster(input: {name: \"x\", urls: [\"nats://127.0.0.1:4222\"]}) { cluster { id } } }";
    let before = app.event_count().await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| json!({"sub": bob, "sid": "s", "iat": now - 100, "exp": exp, "iss": "jsconsole", "jti": "j", "typ": "access"});
    // The key id is the first 12 hex digits of the key's SHA-256.
    let kid = jsc_eventstore::verify::sha256_hex(&SIGNING_KEY)[..12].to_string();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.clone());
    // Signed with another key.
    let forged = encode(&header, &claims(now + 600), &EncodingKey::from_secret(&[1; 32])).unwrap();
    // `alg: none`, no signature.
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(claims(now + 600))
    );
    // Right key, but expired.
    let expired = encode(&header, &claims(now - 1), &EncodingKey::from_secret(&SIGNING_KEY)).unwrap();
    // The body of a real token with another payload.
    let mut parts: Vec<String> = bob_token.split('.').map(str::to_string).collect();
    parts[1] = b64(claims(now + 6000));
    let tampered = parts.join(".");
    for (what, token) in [
        ("forged signature", forged.as_str()),
        ("alg none", none.as_str()),
        ("expired", expired.as_str()),
        ("tampered payload", tampered.as_str()),
        ("garbage", "not-a-token"),
    ] {
        let body = app.graphql_as(Some(token), register, json!({})).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{what}: {body}");
        if what == "expired" {
            assert!(first_error(&body).1.contains("expired"), "{body}");
        }
    }
    // No token at all.
    assert_eq!(
        code(&app.graphql_as(None, register, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&app.graphql_as(None, "{ clusters { nodes { id } } }", json!({})).await),
        "UNAUTHENTICATED"
    );

    // A disabled user's token stops working at once; enabled again, it works.
    assert!(
        app.graphql_as(Some(&bob_token), ME, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    let key = app
        .data_as(
            Some(&bob_token),
            CREATE_KEY,
            json!({"o": "default", "n": "bob-ci", "r": "OPERATOR"}),
        )
        .await["createApiKey"]
        .clone();
    let bob_key = key["key"].as_str().unwrap().to_string();
    let mid = app.event_count().await;
    app.data(
        "mutation($id: ID!) { disableUser(input: {id: $id}) { user { disabled } } }",
        json!({"id": bob}),
    )
    .await;
    let after_disable = app.event_count().await;
    for t in [bob_token.as_str(), bob_key.as_str()] {
        let body = app.graphql_as(Some(t), register, json!({})).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    }
    let login = app
        .try_login("bob@example.com", &member_password("bob@example.com"))
        .await;
    assert_eq!(code(&login), "UNAUTHENTICATED");
    assert_eq!(app.event_count().await, after_disable, "refused calls wrote nothing");
    // Nor can a disabled account sign in by accepting an invitation.
    let invite = app.invite("default", "bob@example.com", "VIEWER").await;
    let before_accept = app.event_count().await;
    let accepted = app
        .graphql_as(
            None,
            ACCEPT,
            json!({"t": invite.token, "p": member_password("bob@example.com"), "n": ""}),
        )
        .await;
    assert_eq!(code(&accepted), "UNAUTHENTICATED");
    assert_eq!(app.event_count().await, before_accept);
    app.data(
        "mutation($id: ID!) { enableUser(input: {id: $id}) { user { disabled } } }",
        json!({"id": bob}),
    )
    .await;
    assert!(
        app.graphql_as(Some(&bob_token), ME, json!({}))
            .await
            .get("errors")
            .is_none()
    );

    // A revoked API key stops working at once.
    app.data(
        "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { revoked } } }",
        json!({"id": key["apiKey"]["id"]}),
    )
    .await;
    let body = app
        .graphql_as(Some(&bob_key), "{ clusters { nodes { id } } }", json!({}))
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(first_error(&body).1.contains("revoked"), "{body}");
    // A made-up key with a real id is refused too.
    let fake = format!("jsck_{}_AAAA", key["apiKey"]["id"].as_str().unwrap());
    assert_eq!(
        code(
            &app.graphql_as(Some(&fake), "{ clusters { nodes { id } } }", json!({}))
                .await
        ),
        "UNAUTHENTICATED"
    );
    assert!(app.event_count().await > mid);
    assert!(before < mid);
}

#[tokio::test]
async fn brute_force_logins_are_rate_limited_without_revealing_accounts() {
    let app = TestApp::spawn().await;
    // Unknown address and wrong password: the same answer.
    let unknown = app.try_login("nobody@example.com", "whatever-password").await;
    let wrong = app.try_login(OWNER_EMAIL, "not the password").await;
    assert_eq!(first_error(&unknown), first_error(&wrong));
    assert_eq!(
        first_error(&wrong),
        ("UNAUTHENTICATED".into(), "wrong email or password".into())
    );
    for _ in 0..4 {
        let body = app.try_login(OWNER_EMAIL, "not the password").await;
        assert_eq!(code(&body), "UNAUTHENTICATED");
    }
    // Five failures: locked, even with the right password, with a Retry-After.
    let res = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({"query": LOGIN, "variables": {"e": OWNER_EMAIL, "p": OWNER_PASSWORD}}))
        .send()
        .await
        .unwrap();
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(code(&body), "RATE_LIMITED");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], retry);
    assert!(first_error(&body).1.contains("wait"), "{body}");
    // The other account from the same address still signs in; the owner's session still works.
    assert!(app.graphql(ME, json!({})).await.get("errors").is_none());
}

#[tokio::test]
async fn per_address_limits_apply_across_accounts() {
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| c.auth.attempts_per_minute = 4).await;
    // The spawn's own login was the first attempt from 127.0.0.1.
    for i in 0..3 {
        let body = app.try_login(&format!("u{i}@example.com"), "guess-guess-guess").await;
        assert_eq!(code(&body), "UNAUTHENTICATED");
    }
    let body = app.try_login(OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
}

#[tokio::test]
async fn invitations_answer_alike_for_new_and_existing_addresses_and_work_once() {
    let app = TestApp::spawn().await;
    let org = create_org(&app, "Acme").await;
    let fresh = app
        .data(INVITE, json!({"o": org, "e": "new@example.com", "r": "VIEWER"}))
        .await;
    let existing = app
        .data(
            INVITE,
            json!({"o": org, "e": OWNER_EMAIL.to_uppercase(), "r": "VIEWER"}),
        )
        .await;
    let shape = |v: &Value| {
        let i = &v["inviteUser"];
        (
            i["invitation"]["status"].clone(),
            i["invitation"]["role"].clone(),
            i["token"].as_str().unwrap().len() > 20,
        )
    };
    assert_eq!(
        shape(&fresh),
        shape(&existing),
        "no hint whether the address has an account"
    );

    // A new address gets an account; a weak password is refused first.
    let token = fresh["inviteUser"]["token"].as_str().unwrap();
    let weak = app
        .graphql_as(None, ACCEPT, json!({"t": token, "p": "short", "n": "New"}))
        .await;
    assert_eq!(code(&weak), "VALIDATION");
    let auth = app
        .data_as(
            None,
            ACCEPT,
            json!({"t": token, "p": "a good long password", "n": "New"}),
        )
        .await["acceptInvitation"]
        .clone();
    let me = app.data_as(auth["accessToken"].as_str(), ME, json!({})).await;
    assert_eq!(me["me"]["email"], "new@example.com");
    assert_eq!(me["me"]["organizations"][0]["role"], "VIEWER");
    // Used once, it is spent.
    let again = app
        .graphql_as(
            None,
            ACCEPT,
            json!({"t": token, "p": "a good long password", "n": "New"}),
        )
        .await;
    assert_eq!(code(&again), "UNAUTHENTICATED");
    // A token with a changed signature is nothing.
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(
        code(
            &app.graphql_as(
                None,
                ACCEPT,
                json!({"t": forged, "p": "a good long password", "n": "x"})
            )
            .await
        ),
        "UNAUTHENTICATED"
    );

    // An existing account joins only with its own password.
    let token = existing["inviteUser"]["token"].as_str().unwrap();
    let wrong = app
        .graphql_as(
            None,
            ACCEPT,
            json!({"t": token, "p": "someone else's password", "n": ""}),
        )
        .await;
    assert_eq!(code(&wrong), "UNAUTHENTICATED");
    app.data_as(None, ACCEPT, json!({"t": token, "p": OWNER_PASSWORD, "n": ""}))
        .await;
    let orgs = app.data("{ organizations { id myRole } }", json!({})).await;
    assert_eq!(
        orgs["organizations"].as_array().unwrap().len(),
        2,
        "the owner is in both organizations: {orgs}"
    );
    // Revoked invitations cannot be accepted.
    let third = app.invite(&org, "third@example.com", "ADMIN").await;
    app.data(
        "mutation($id: ID!) { revokeInvitation(input: {id: $id}) { invitation { status } } }",
        json!({"id": third.id}),
    )
    .await;
    assert_eq!(
        code(
            &app.graphql_as(
                None,
                ACCEPT,
                json!({"t": third.token, "p": "a good long password", "n": "T"})
            )
            .await
        ),
        "UNAUTHENTICATED"
    );
    let invitations = app
        .data(
            "query($o: ID!) { organization(id: $o) { invitations { nodes { email status } } } }",
            json!({"o": org}),
        )
        .await;
    let statuses: BTreeMap<String, String> = invitations["organization"]["invitations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["email"].as_str().unwrap().into(),
                i["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(statuses["new@example.com"], "ACCEPTED");
    assert_eq!(statuses["third@example.com"], "REVOKED");
}

#[tokio::test]
async fn api_keys_are_shown_once_act_with_their_role_and_record_the_key_as_actor() {
    let app = TestApp::spawn().await;
    let created = app
        .data(
            CREATE_KEY,
            json!({"o": "default", "n": "ci", "r": "OPERATOR", "s": "deployer"}),
        )
        .await["createApiKey"]
        .clone();
    let key = created["key"].as_str().unwrap();
    let id = created["apiKey"]["id"].as_str().unwrap();
    assert!(key.starts_with("jsck_"));
    assert_eq!(created["apiKey"]["serviceAccount"], "deployer");
    // Listed later without the key.
    let listed = app
        .graphql(
            "{ organization(id: \"default\") { apiKeys { nodes { id name role lastUsedAt } } } }",
            json!({}),
        )
        .await;
    assert!(!listed.to_string().contains(key));
    assert!(listed["data"]["organization"]["apiKeys"]["nodes"][0]["lastUsedAt"].is_null());
    // An operator key can change streams but not clusters.
    let cluster = app
        .register_cluster(json!({"name": "k", "urls": [app.nats.url()]}))
        .await;
    let made = app
        .data_as(
            Some(key),
            "mutation($c: ID!) { createStream(input: {clusterId: $c, config: {name: \"KEYED\", subjects: [\"keyed.>\"]}}) { stream { provenance { createdBy } } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(
        made["createStream"]["stream"]["provenance"]["createdBy"],
        format!("apikey:{id}")
    );
    let denied = app
        .graphql_as(
            Some(key),
            "mutation($c: ID!) { removeCluster(input: {id: $c}) { clusterId } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code(&denied), "FORBIDDEN");
    // Keys cannot mint keys.
    let minted = app
        .graphql_as(Some(key), CREATE_KEY, json!({"o": "default", "n": "x", "r": "VIEWER"}))
        .await;
    assert_eq!(code(&minted), "FORBIDDEN");
    let used = app
        .data(
            "{ organization(id: \"default\") { apiKeys { nodes { lastUsedAt } } } }",
            json!({}),
        )
        .await;
    assert!(
        used["organization"]["apiKeys"]["nodes"][0]["lastUsedAt"].is_string(),
        "{used}"
    );
    // A key never has more rights than its creator.
    let (_, viewer) = app.invite_member("default", "v@example.com", "VIEWER").await;
    let too_much = app
        .graphql_as(
            Some(&viewer),
            CREATE_KEY,
            json!({"o": "default", "n": "x", "r": "ADMIN"}),
        )
        .await;
    assert_eq!(code(&too_much), "FORBIDDEN");
    let past = app
        .graphql(
            CREATE_KEY,
            json!({"o": "default", "n": "old", "r": "VIEWER", "x": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(code(&past), "VALIDATION");
}

#[tokio::test]
async fn events_name_the_actor_organization_address_agent_and_request() {
    let app = TestApp::spawn().await;
    let (admin, token) = app.invite_member("default", "ann@example.com", "ADMIN").await;
    let auth = format!("Bearer {token}");
    app.graphql_with_headers(
        "mutation($u: String!) { registerCluster(input: {name: \"who\", urls: [$u]}) { cluster { id } } }",
        json!({"u": app.nats.url()}),
        &[
            ("authorization", auth.as_str()),
            ("x-request-id", "req-42"),
            ("user-agent", "ops-script/1.0"),
        ],
    )
    .await;
    let trail = app
        .data(
            "{ auditTrail(filter: {eventType: \"ClusterRegistered\"}) { nodes { actor organization clientAddr correlationId } } }",
            json!({}),
        )
        .await;
    let e = &trail["auditTrail"]["nodes"][0];
    assert_eq!(e["actor"], format!("user:{admin}"));
    assert_eq!(e["organization"], "default");
    assert_eq!(e["clientAddr"], "127.0.0.1");
    assert_eq!(e["correlationId"], "req-42");
    let events = app.events(Some("cluster")).await;
    assert_eq!(events[0].metadata["user_agent"], "ops-script/1.0");
    // The console's own commands name the component.
    let first = app.events(None).await;
    assert_eq!(first[0].metadata["actor"], "system:bootstrap");
}

#[tokio::test]
async fn the_first_start_generates_an_owner_password_shown_once() {
    let nats = jsc_testkit::NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = jsc_cli::Config::new(data.path());
        c.listen = "127.0.0.1:0".parse().unwrap();
        c.nats_url = Some(nats.url().to_string());
        c
    };
    let mut app = jsc_cli::Application::build(config()).await.unwrap();
    let (email, password) = app.take_generated_admin().expect("a generated password");
    assert_eq!(email, "admin@localhost");
    assert!(password.len() >= 20, "{password}");
    let addr = app.local_addr();
    let token = app.shutdown_token();
    let run = tokio::spawn(app.run_until_stopped());
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({"query": LOGIN, "variables": {"e": email, "p": password}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["data"]["login"]["accessToken"].is_string(), "{body}");
    token.cancel();
    run.await.unwrap().unwrap();
    let mut again = jsc_cli::Application::build(config()).await.unwrap();
    assert_eq!(again.take_generated_admin(), None, "shown once");
    // A configured password that is too weak is refused with a clear error.
    let fresh = jsc_testkit::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut weak = jsc_cli::Config::new(dir.path());
    weak.listen = "127.0.0.1:0".parse().unwrap();
    weak.nats_url = Some(fresh.url().to_string());
    weak.admin_password = Some("short".into());
    let err = jsc_cli::Application::build(weak).await.err().expect("refused");
    assert!(err.to_string().contains("at least 12 characters"), "{err}");
}

// ---------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------

const WATCH: &str = "subscription { clusterChanged { kind clusterId } }";

#[tokio::test]
async fn websocket_needs_a_token_in_connection_init_and_ends_when_the_session_does() {
    let app = TestApp::spawn().await;
    for payload in [json!({}), json!({"authorization": "Bearer nope"})] {
        let mut sub = jsc_testkit::Subscription::connect(app.addr, "graphql-transport-ws", payload.clone()).await;
        let frame = sub.next_frame_raw().await;
        assert_eq!(frame["type"], "close", "{payload}: {frame}");
        let reason = frame["frame"].as_str().unwrap();
        assert!(reason.contains("sign in"), "the close says what to do: {frame}");
    }
    // With a token: live changes; after logout (over HTTP) the subscription ends.
    let auth = app.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let access = auth["accessToken"].as_str().unwrap();
    let mut sub = app
        .subscribe_as(Some(access), "graphql-transport-ws", WATCH, json!({}))
        .await;
    app.register_cluster(json!({"name": "ws", "urls": [app.nats.url()]}))
        .await;
    assert_eq!(sub.next_data().await["clusterChanged"]["kind"], "REGISTERED");
    app.data_as(Some(access), "mutation { logout { sessionId } }", json!({}))
        .await;
    let frame = sub.next_frame_raw().await;
    assert_eq!(frame["type"], "next", "{frame}");
    assert_eq!(code(&frame["payload"]), "UNAUTHENTICATED", "{frame}");
    assert_eq!(sub.next_frame_raw().await["type"], "complete");
}

/// A subscription made with an API key ends when the key is revoked, and one of a user who
/// is then disabled ends too: each says why, then completes.
#[tokio::test]
async fn subscriptions_end_when_their_key_is_revoked_or_their_user_disabled() {
    let app = TestApp::spawn().await;
    let (bob, bob_token) = app.invite_member("default", "bob@example.com", "ADMIN").await;
    let key = app
        .data_as(
            Some(&bob_token),
            CREATE_KEY,
            json!({"o": "default", "n": "watcher", "r": "VIEWER"}),
        )
        .await["createApiKey"]
        .clone();
    let mut by_key = app
        .subscribe_as(key["key"].as_str(), "graphql-transport-ws", WATCH, json!({}))
        .await;
    let mut by_user = app
        .subscribe_as(Some(&bob_token), "graphql-transport-ws", WATCH, json!({}))
        .await;
    // Both are live.
    app.register_cluster(json!({"name": "watched", "urls": [app.nats.url()]}))
        .await;
    assert_eq!(by_key.next_data().await["clusterChanged"]["kind"], "REGISTERED");
    assert_eq!(by_user.next_data().await["clusterChanged"]["kind"], "REGISTERED");

    app.data(
        "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { revoked } } }",
        json!({"id": key["apiKey"]["id"]}),
    )
    .await;
    let frame = by_key.next_frame_raw().await;
    assert_eq!(code(&frame["payload"]), "UNAUTHENTICATED", "{frame}");
    assert!(first_error(&frame["payload"]).1.contains("revoked"), "{frame}");
    assert_eq!(by_key.next_frame_raw().await["type"], "complete");

    app.data(
        "mutation($id: ID!) { disableUser(input: {id: $id}) { user { disabled } } }",
        json!({"id": bob}),
    )
    .await;
    let frame = by_user.next_frame_raw().await;
    assert_eq!(code(&frame["payload"]), "UNAUTHENTICATED", "{frame}");
    assert!(first_error(&frame["payload"]).1.contains("disabled"), "{frame}");
    assert_eq!(by_user.next_frame_raw().await["type"], "complete");
}

#[tokio::test]
async fn a_subscription_ends_when_its_access_token_expires() {
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.auth.access_ttl = std::time::Duration::from_secs(2);
    })
    .await;
    let started = std::time::Instant::now();
    let mut sub = app.subscribe("graphql-transport-ws", WATCH, json!({})).await;
    let frame = sub.next_frame_raw().await;
    assert_eq!(code(&frame["payload"]), "UNAUTHENTICATED", "{frame}");
    assert!(
        frame["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{frame}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(sub.next_frame_raw().await["type"], "complete");
}

#[tokio::test]
async fn subscriptions_only_carry_what_the_caller_may_see() {
    let app = TestApp::spawn().await;
    let org = create_org(&app, "Other").await;
    let (_, stranger) = app.invite_member(&org, "s@example.com", "OWNER").await;
    let mut sub = app
        .subscribe_as(Some(&stranger), "graphql-transport-ws", WATCH, json!({}))
        .await;
    let register =
        |o: &str, n: &str| app.register_cluster(json!({"organizationId": o, "name": n, "urls": [app.nats.url()]}));
    register("default", "hidden").await;
    let seen = register(&org, "visible").await;
    let change = sub.next_data().await;
    assert_eq!(
        change["clusterChanged"]["clusterId"],
        seen.as_str(),
        "the other organization's cluster never arrived"
    );
    // The audit trail over WebSocket is for admins.
    let mut audit = app
        .subscribe_as(
            Some(&stranger),
            "graphql-transport-ws",
            "subscription { auditEvents { organization eventType } }",
            json!({}),
        )
        .await;
    register("default", "hidden2").await;
    register(&org, "visible2").await;
    let e = audit.next_data().await;
    assert_eq!(e["auditEvents"]["organization"], org.as_str());
}

// ---------------------------------------------------------------------------------------
// No secret anywhere
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn no_password_token_key_or_hash_reaches_an_event_a_log_line_or_a_response() {
    let logs = jsc_testkit::capture_logs();
    let app = TestApp::spawn().await;
    let mut secrets: Vec<String> = vec![OWNER_PASSWORD.into(), app.token.clone().unwrap()];
    let auth = app.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    secrets.push(auth["accessToken"].as_str().unwrap().into());
    secrets.push(auth["refreshToken"].as_str().unwrap().into());
    let next = app.data_as(None, REFRESH, json!({"t": auth["refreshToken"]})).await["refreshSession"].clone();
    secrets.push(next["refreshToken"].as_str().unwrap().into());
    let inv = app.invite("default", "sec@example.com", "OPERATOR").await.token;
    secrets.push(inv.clone());
    let invitee_password = "invitee's secret passphrase";
    secrets.push(invitee_password.into());
    let accepted = app
        .data_as(None, ACCEPT, json!({"t": inv, "p": invitee_password, "n": "Sec"}))
        .await["acceptInvitation"]
        .clone();
    secrets.push(accepted["accessToken"].as_str().unwrap().into());
    let key = app
        .data(CREATE_KEY, json!({"o": "default", "n": "scan", "r": "VIEWER"}))
        .await["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    // `jsck_<id>_<secret>`: the id has no `_`, the secret (base64url) may.
    let key_secret = key.splitn(3, '_').nth(2).unwrap().to_string();
    let key_hash = jsc_eventstore::verify::sha256_hex(key_secret.as_bytes());
    assert_eq!(
        jsc_secrets::parse_api_key(&key).map(|(_, h)| h).as_deref(),
        Some(key_hash.as_str()),
        "the secret is what the console hashes"
    );
    assert!(key_secret.len() >= 40, "the whole secret: {key_secret}");
    secrets.extend([key.clone(), key_secret, key_hash]);
    app.data_as(Some(&key), "{ clusters { nodes { id } } }", json!({}))
        .await;
    let changed_password = "the owner's second passphrase";
    secrets.push(changed_password.into());
    let changed = app
        .data(
            "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { accessToken } }",
            json!({"c": OWNER_PASSWORD, "n": changed_password}),
        )
        .await;
    let fresh = changed["changePassword"]["accessToken"].as_str().unwrap().to_string();
    secrets.push(fresh.clone());
    // Failed attempts log nothing secret either.
    app.try_login(OWNER_EMAIL, "a wrong guess at it").await;
    secrets.push("a wrong guess at it".into());

    // What the API shows of the history and the trail.
    let mut responses = String::new();
    let trail = app
        .graphql_as(
            Some(&fresh),
            "{ auditTrail(first: 500) { nodes { aggregateType aggregateId payload summary } } }",
            json!({}),
        )
        .await;
    responses.push_str(&trail.to_string());
    for node in trail["data"]["auditTrail"]["nodes"].as_array().unwrap() {
        if let (Some(t), Some(id)) = (node["aggregateType"].as_str(), node["aggregateId"].as_str()) {
            let h = app
                .graphql_as(
                    Some(&fresh),
                    "query($t: AggregateType!, $id: ID!) { history(aggregateType: $t, id: $id, first: 1000) { nodes { payload changes { path before after } } } stateAt(aggregateType: $t, id: $id, sequence: 100000) { state } }",
                    json!({"t": t, "id": id}),
                )
                .await;
            responses.push_str(&h.to_string());
        }
    }
    assert!(responses.contains("<redacted>"), "sealed values are shown as redacted");
    assert!(!responses.contains("$argon2"), "no password hash in a response");

    // Every message of the event stream, headers and bodies.
    let mut raw = String::new();
    for event in app.raw_events().await {
        raw.push_str(&format!("{:?}", event.headers));
        raw.push_str(&String::from_utf8_lossy(&event.payload));
    }
    assert!(
        raw.contains("UserPasswordChanged") && raw.contains("ApiKeyCreated"),
        "the scan saw the events"
    );
    assert!(!raw.contains("$argon2"), "no password hash in clear in the stream");
    let log_text = logs.text();
    assert!(
        log_text.contains("login") || log_text.contains("request"),
        "logs were captured"
    );
    for s in &secrets {
        assert!(!raw.contains(s.as_str()), "a secret is in the event stream: {s}");
        assert!(!log_text.contains(s.as_str()), "a secret is in the logs: {s}");
        assert!(!responses.contains(s.as_str()), "a secret is in a response: {s}");
    }
}

// ---------------------------------------------------------------------------------------
// The role × operation matrix
// ---------------------------------------------------------------------------------------

/// What each role gets for each operation on its own organization's resources, and what
/// any of them gets for the same operation on another organization's ("other org"; `-`
/// where the operation names no resource of an organization). `OK` is a successful answer.
/// Session mutations (login, refreshSession, logout, changePassword, acceptInvitation)
/// act on the caller's own session and are covered by the session tests above.
const MATRIX: &str = "
operation                 viewer     operator   admin      owner      other-org
me                        OK         OK         OK         OK         -
organizations             OK         OK         OK         OK         -
organization              OK         OK         OK         OK         NOT_FOUND
organizationMembers       OK         OK         OK         OK         NOT_FOUND
organizationInvitations   FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
organizationApiKeys       OK         OK         OK         OK         NOT_FOUND
clusters                  OK         OK         OK         OK         -
cluster                   OK         OK         OK         OK         NOT_FOUND
streams                   OK         OK         OK         OK         NOT_FOUND
stream                    OK         OK         OK         OK         NOT_FOUND
consumer                  OK         OK         OK         OK         NOT_FOUND
history                   OK         OK         OK         OK         NOT_FOUND
stateAt                   OK         OK         OK         OK         NOT_FOUND
organizationHistory       FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
auditTrail                FORBIDDEN  FORBIDDEN  OK         OK         -
exportAudit               FORBIDDEN  FORBIDDEN  OK         OK         -
createOrganization        FORBIDDEN  FORBIDDEN  FORBIDDEN  OK         -
inviteUser                FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
inviteOwner               FORBIDDEN  FORBIDDEN  FORBIDDEN  OK         NOT_FOUND
revokeInvitation          FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
setMemberRole             FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
removeMember              FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
user                      OK         OK         OK         OK         NOT_FOUND
userSessions              FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
revokeSession             FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
disableUser               FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
enableUser                FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
createTeam                FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
deleteTeam                FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
addTeamMember             FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
removeTeamMember          FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
setTeamClusterRole        FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
createPersonalApiKey      OK         OK         OK         OK         NOT_FOUND
createServiceApiKey       FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
revokeApiKey              FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
registerCluster           FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
updateCluster             FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
removeCluster             FORBIDDEN  FORBIDDEN  OK         OK         NOT_FOUND
testClusterConnection     FORBIDDEN  OK         OK         OK         NOT_FOUND
createStream              FORBIDDEN  OK         OK         OK         NOT_FOUND
updateStream              FORBIDDEN  OK         OK         OK         NOT_FOUND
deleteStream              FORBIDDEN  OK         OK         OK         NOT_FOUND
purgeStream               FORBIDDEN  OK         OK         OK         NOT_FOUND
sealStream                FORBIDDEN  OK         OK         OK         NOT_FOUND
publishMessage            FORBIDDEN  OK         OK         OK         NOT_FOUND
createConsumer            FORBIDDEN  OK         OK         OK         NOT_FOUND
updateConsumer            FORBIDDEN  OK         OK         OK         NOT_FOUND
deleteConsumer            FORBIDDEN  OK         OK         OK         NOT_FOUND
pauseConsumer             FORBIDDEN  OK         OK         OK         NOT_FOUND
resumeConsumer            FORBIDDEN  OK         OK         OK         NOT_FOUND
";

/// One organization's fixtures: its owner's token, a cluster and a member to act on.
struct Org {
    id: String,
    owner: String,
    cluster: String,
    pawn: String,
    pawn_email: String,
}

async fn as_owner(app: &TestApp, org: &Org, query: &str, vars: Value) -> Value {
    app.data_as(Some(&org.owner), query, vars).await
}

/// The request for `op` against `org`'s resources, after creating what it acts on.
async fn prepare(app: &TestApp, org: &Org, op: &str) -> (String, Value) {
    let n = jsc_testkit::unique("m").replace('_', "").to_uppercase();
    let (o, c) = (org.id.as_str(), org.cluster.as_str());
    let owner = Some(org.owner.as_str());
    let stream = || async {
        let subjects = format!("{}.>", n.to_lowercase());
        app.create_stream_as(owner, c, &n, &[&subjects]).await;
    };
    let consumer = || async {
        stream().await;
        app.create_consumer_as(owner, c, &n, "work").await;
    };
    let team = |with_pawn: bool| async move {
        let t = as_owner(
            app,
            org,
            "mutation($o: ID!, $n: String!) { createTeam(input: {organizationId: $o, name: $n}) { team { id } } }",
            json!({"o": o, "n": jsc_testkit::unique("team")}),
        )
        .await["createTeam"]["team"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        if with_pawn {
            as_owner(
                app,
                org,
                "mutation($o: ID!, $t: ID!, $u: ID!) { addTeamMember(input: {organizationId: $o, teamId: $t, userId: $u}) { team { id } } }",
                json!({"o": o, "t": t, "u": org.pawn}),
            )
            .await;
        }
        t
    };
    let q = |s: &str| s.to_string();
    match op {
        "me" => (q("{ me { id } }"), json!({})),
        "organizations" => (q("{ organizations { id } }"), json!({})),
        "organization" => (
            q("query($o: ID!) { organization(id: $o) { id name myRole } }"),
            json!({"o": o}),
        ),
        "organizationMembers" => (
            q("query($o: ID!) { organization(id: $o) { members { nodes { role user { email } } } } }"),
            json!({"o": o}),
        ),
        "organizationInvitations" => (
            q("query($o: ID!) { organization(id: $o) { invitations { nodes { email } } } }"),
            json!({"o": o}),
        ),
        "organizationApiKeys" => (
            q("query($o: ID!) { organization(id: $o) { apiKeys { nodes { id } } } }"),
            json!({"o": o}),
        ),
        "clusters" => (q("{ clusters { nodes { id } } }"), json!({})),
        "cluster" => (q("query($c: ID!) { cluster(id: $c) { id name } }"), json!({"c": c})),
        "streams" => (
            q("query($c: ID!) { streams(clusterId: $c) { totalCount } }"),
            json!({"c": c}),
        ),
        "stream" => {
            stream().await;
            (
                q("query($c: ID!, $n: String!) { stream(clusterId: $c, name: $n) { name } }"),
                json!({"c": c, "n": n}),
            )
        }
        "consumer" => {
            consumer().await;
            (
                q("query($c: ID!, $n: String!) { consumer(clusterId: $c, stream: $n, name: \"work\") { name } }"),
                json!({"c": c, "n": n}),
            )
        }
        "history" => (
            q("query($c: ID!) { history(aggregateType: CLUSTER, id: $c) { nodes { eventType } } }"),
            json!({"c": c}),
        ),
        "stateAt" => (
            q("query($c: ID!) { stateAt(aggregateType: CLUSTER, id: $c, sequence: 1000000) { version } }"),
            json!({"c": c}),
        ),
        "organizationHistory" => (
            q("query($o: ID!) { history(aggregateType: ORGANIZATION, id: $o) { nodes { eventType } } }"),
            json!({"o": o}),
        ),
        "auditTrail" => (q("{ auditTrail(first: 5) { nodes { sequence } } }"), json!({})),
        "exportAudit" => (
            q("mutation { exportAudit(input: {format: JSONL}) { rows } }"),
            json!({}),
        ),
        "createOrganization" => (
            q("mutation { createOrganization(input: {name: \"New\"}) { organization { id } } }"),
            json!({}),
        ),
        "inviteUser" | "inviteOwner" => (
            q(INVITE),
            json!({"o": o, "e": format!("{n}@example.com").to_lowercase(), "r": if op == "inviteUser" { "VIEWER" } else { "OWNER" }}),
        ),
        "revokeInvitation" => {
            let email = format!("{n}@example.com").to_lowercase();
            let inv = app.invite_as(owner, o, &email, "VIEWER").await;
            (
                q("mutation($id: ID!) { revokeInvitation(input: {id: $id}) { invitation { status } } }"),
                json!({"id": inv.id}),
            )
        }
        "setMemberRole" => (
            q(
                "mutation($o: ID!, $u: ID!) { setMemberRole(input: {organizationId: $o, userId: $u, role: OPERATOR}) { organization { id } } }",
            ),
            json!({"o": o, "u": org.pawn}),
        ),
        "removeMember" => {
            let email = format!("{n}@example.com").to_lowercase();
            let (user, _) = app.invite_member_as(owner, o, &email, "VIEWER").await;
            (
                q(
                    "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) { organization { id } } }",
                ),
                json!({"o": o, "u": user}),
            )
        }
        "disableUser" => (
            q("mutation($u: ID!) { disableUser(input: {id: $u}) { user { id } } }"),
            json!({"u": org.pawn}),
        ),
        "user" => (q("query($u: ID!) { user(id: $u) { email } }"), json!({"u": org.pawn})),
        "userSessions" => (
            q("query($u: ID!) { user(id: $u) { sessions { nodes { id } } } }"),
            json!({"u": org.pawn}),
        ),
        "revokeSession" => {
            let auth = app.login(&org.pawn_email, &member_password(&org.pawn_email)).await;
            let sid = session_id(auth["refreshToken"].as_str().unwrap());
            (
                q("mutation($s: ID!) { revokeSession(input: {id: $s}) { sessionId } }"),
                json!({"s": sid}),
            )
        }
        "enableUser" => (
            q("mutation($u: ID!) { enableUser(input: {id: $u}) { user { id } } }"),
            json!({"u": org.pawn}),
        ),
        "createTeam" => (
            q("mutation($o: ID!, $n: String!) { createTeam(input: {organizationId: $o, name: $n}) { team { id } } }"),
            json!({"o": o, "n": n}),
        ),
        "deleteTeam" => {
            let t = team(false).await;
            (
                q("mutation($o: ID!, $t: ID!) { deleteTeam(input: {organizationId: $o, teamId: $t}) { teamId } }"),
                json!({"o": o, "t": t}),
            )
        }
        "addTeamMember" => {
            let t = team(false).await;
            (
                q(
                    "mutation($o: ID!, $t: ID!, $u: ID!) { addTeamMember(input: {organizationId: $o, teamId: $t, userId: $u}) { team { id } } }",
                ),
                json!({"o": o, "t": t, "u": org.pawn}),
            )
        }
        "removeTeamMember" => {
            let t = team(true).await;
            (
                q(
                    "mutation($o: ID!, $t: ID!, $u: ID!) { removeTeamMember(input: {organizationId: $o, teamId: $t, userId: $u}) { team { id } } }",
                ),
                json!({"o": o, "t": t, "u": org.pawn}),
            )
        }
        "setTeamClusterRole" => {
            let t = team(false).await;
            (
                q(
                    "mutation($o: ID!, $t: ID!, $c: ID!) { setTeamClusterRole(input: {organizationId: $o, teamId: $t, clusterId: $c, role: OPERATOR}) { team { id } } }",
                ),
                json!({"o": o, "t": t, "c": c}),
            )
        }
        "createPersonalApiKey" => (q(CREATE_KEY), json!({"o": o, "n": n, "r": "VIEWER"})),
        "createServiceApiKey" => (q(CREATE_KEY), json!({"o": o, "n": n, "r": "VIEWER", "s": "robot"})),
        "revokeApiKey" => {
            let k = as_owner(
                app,
                org,
                CREATE_KEY,
                json!({"o": o, "n": n, "r": "VIEWER", "s": "robot"}),
            )
            .await;
            (
                q("mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { revoked } } }"),
                json!({"id": k["createApiKey"]["apiKey"]["id"]}),
            )
        }
        "registerCluster" => (
            q(
                "mutation($o: ID!, $n: String!, $u: String!) { registerCluster(input: {organizationId: $o, name: $n, urls: [$u]}) { cluster { id } } }",
            ),
            json!({"o": o, "n": n, "u": app.nats.url()}),
        ),
        "updateCluster" => (
            q("mutation($c: ID!, $n: String!) { updateCluster(input: {id: $c, description: $n}) { cluster { id } } }"),
            json!({"c": c, "n": n}),
        ),
        "removeCluster" => {
            let id = app
                .register_cluster_as(owner, json!({"organizationId": o, "name": n, "urls": [app.nats.url()]}))
                .await;
            (
                q("mutation($c: ID!) { removeCluster(input: {id: $c}) { clusterId } }"),
                json!({"c": id}),
            )
        }
        "testClusterConnection" => (
            q("mutation($c: ID!) { testClusterConnection(input: {id: $c}) { test { ok } } }"),
            json!({"c": c}),
        ),
        "createStream" => (
            q(
                "mutation($c: ID!, $n: String!, $s: String!) { createStream(input: {clusterId: $c, config: {name: $n, subjects: [$s]}}) { stream { name } } }",
            ),
            json!({"c": c, "n": n, "s": format!("{}.>", n.to_lowercase())}),
        ),
        "updateStream" => {
            stream().await;
            (
                q(
                    "mutation($c: ID!, $n: String!) { updateStream(input: {clusterId: $c, name: $n, config: {description: \"changed\"}}) { stream { name } } }",
                ),
                json!({"c": c, "n": n}),
            )
        }
        "deleteStream" => {
            stream().await;
            (
                q(
                    "mutation($c: ID!, $n: String!) { deleteStream(input: {clusterId: $c, name: $n, confirmName: $n}) { name } }",
                ),
                json!({"c": c, "n": n}),
            )
        }
        "purgeStream" => {
            stream().await;
            (
                q("mutation($c: ID!, $n: String!) { purgeStream(input: {clusterId: $c, name: $n}) { purged } }"),
                json!({"c": c, "n": n}),
            )
        }
        "sealStream" => {
            stream().await;
            (
                q(
                    "mutation($c: ID!, $n: String!) { sealStream(input: {clusterId: $c, name: $n}) { stream { sealed: name } } }",
                ),
                json!({"c": c, "n": n}),
            )
        }
        "publishMessage" => {
            stream().await;
            (
                q(
                    "mutation($c: ID!, $n: String!, $s: String!) { publishMessage(input: {clusterId: $c, stream: $n, subject: $s, payload: \"hi\"}) { ack { sequence } } }",
                ),
                json!({"c": c, "n": n, "s": format!("{}.x", n.to_lowercase())}),
            )
        }
        "createConsumer" => {
            stream().await;
            (
                q(
                    "mutation($c: ID!, $n: String!) { createConsumer(input: {clusterId: $c, stream: $n, config: {durableName: \"new\"}}) { consumer { name } } }",
                ),
                json!({"c": c, "n": n}),
            )
        }
        "updateConsumer" => {
            consumer().await;
            (
                q(
                    "mutation($c: ID!, $n: String!) { updateConsumer(input: {clusterId: $c, stream: $n, name: \"work\", config: {description: \"d\"}}) { consumer { name } } }",
                ),
                json!({"c": c, "n": n}),
            )
        }
        "deleteConsumer" => {
            consumer().await;
            (
                q(
                    "mutation($c: ID!, $n: String!) { deleteConsumer(input: {clusterId: $c, stream: $n, name: \"work\"}) { name } }",
                ),
                json!({"c": c, "n": n}),
            )
        }
        "pauseConsumer" => {
            consumer().await;
            (
                q(
                    "mutation($c: ID!, $n: String!) { pauseConsumer(input: {clusterId: $c, stream: $n, name: \"work\", until: \"2099-01-01T00:00:00Z\"}) { consumer { name } } }",
                ),
                json!({"c": c, "n": n}),
            )
        }
        "resumeConsumer" => {
            consumer().await;
            (
                q(
                    "mutation($c: ID!, $n: String!) { resumeConsumer(input: {clusterId: $c, stream: $n, name: \"work\"}) { consumer { name } } }",
                ),
                json!({"c": c, "n": n}),
            )
        }
        other => panic!("the matrix names an operation the test does not know: {other}"),
    }
}

/// Runs `query` as `token` under a fresh request id; the outcome, and whether any event
/// names that request (the console's own observers write events meanwhile).
async fn attempt(app: &TestApp, token: &str, query: &str, vars: Value) -> (String, bool) {
    let before = app.last_sequence().await;
    let rid = uuid::Uuid::new_v4().simple().to_string();
    let auth = format!("Bearer {token}");
    let body = app
        .graphql_with_headers(
            query,
            vars,
            &[("authorization", auth.as_str()), ("x-request-id", rid.as_str())],
        )
        .await;
    let events = app.events_since(before).await;
    let wrote = events.iter().any(|e| e.metadata.get("correlation_id") == Some(&rid));
    (outcome(&body), wrote)
}

fn outcome(body: &Value) -> String {
    match body.get("errors") {
        None => "OK".into(),
        Some(_) => code(body),
    }
}

#[tokio::test]
async fn the_role_by_operation_matrix_across_two_organizations_matches_the_table() {
    let app = TestApp::spawn().await;
    let owner = app.token.clone().unwrap();
    // Organization A: the default one, with one member per role and a member to act on.
    let cluster_a = app
        .register_cluster(json!({"organizationId": "default", "name": "cluster-a", "urls": [app.nats.url()]}))
        .await;
    let (pawn_a, _) = app.invite_member("default", "pawn-a@example.com", "VIEWER").await;
    let mut tokens = Vec::new();
    for role in ["VIEWER", "OPERATOR", "ADMIN"] {
        tokens.push(
            app.invite_member("default", &format!("{}-a@example.com", role.to_lowercase()), role)
                .await
                .1,
        );
    }
    tokens.push(owner.clone());
    // Organization B: its own owner; A's owner leaves it after creating it.
    let b = create_org(&app, "B").await;
    let (_, owner_b) = app.invite_member(&b, "owner-b@example.com", "OWNER").await;
    let me = app.data(ME, json!({})).await["me"]["id"].clone();
    app.data_as(
        Some(&owner_b),
        "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) { organization { id } } }",
        json!({"o": b, "u": me}),
    )
    .await;
    let cluster_b = app
        .register_cluster_as(
            Some(&owner_b),
            json!({"organizationId": b, "name": "cluster-b", "urls": [app.nats.url()]}),
        )
        .await;
    let (pawn_b, _) = app
        .invite_member_as(Some(&owner_b), &b, "pawn-b@example.com", "VIEWER")
        .await;
    let org_a = Org {
        id: "default".into(),
        owner: owner.clone(),
        cluster: cluster_a,
        pawn: pawn_a,
        pawn_email: "pawn-a@example.com".into(),
    };
    let org_b = Org {
        id: b,
        owner: owner_b,
        cluster: cluster_b.clone(),
        pawn: pawn_b,
        pawn_email: "pawn-b@example.com".into(),
    };

    let mut mismatches = Vec::new();
    let mut rows = 0;
    for line in MATRIX.lines().map(str::trim).filter(|l| !l.is_empty()).skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (op, expected) = (cols[0], &cols[1..]);
        rows += 1;
        for (i, token) in tokens.iter().enumerate() {
            let (query, vars) = prepare(&app, &org_a, op).await;
            let (got, wrote) = attempt(&app, token, &query, vars).await;
            assert!(got == "OK" || !wrote, "{op} refused but wrote an event");
            if got != expected[i] {
                mismatches.push(format!("{op} as role #{i}: expected {}, got {got}", expected[i]));
            }
            if expected[4] != "-" {
                let (query, vars) = prepare(&app, &org_b, op).await;
                let (got, wrote) = attempt(&app, token, &query, vars).await;
                assert!(!wrote, "{op} across organizations wrote an event");
                if got != expected[4] {
                    mismatches.push(format!(
                        "{op} on the other organization as role #{i}: expected {}, got {got}",
                        expected[4]
                    ));
                }
            }
        }
    }
    assert!(rows >= 45, "the table covers the API");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // Lists never show the other organization's resources.
    for token in &tokens {
        let list = app
            .data_as(
                Some(token),
                "{ clusters { nodes { id } } organizations { id } }",
                json!({}),
            )
            .await;
        assert!(!list.to_string().contains(&cluster_b), "{list}");
        assert!(!list.to_string().contains(&org_b.id), "{list}");
    }
}

#[tokio::test]
async fn a_team_raises_a_role_on_one_cluster_only() {
    let app = TestApp::spawn().await;
    let one = app
        .register_cluster(json!({"name": "one", "urls": [app.nats.url()]}))
        .await;
    let two = app
        .register_cluster(json!({"name": "two", "urls": [app.nats.url()]}))
        .await;
    let (viewer, token) = app.invite_member("default", "t@example.com", "VIEWER").await;
    let team = app
        .data(
            "mutation { createTeam(input: {organizationId: \"default\", name: \"payments\"}) { team { id } } }",
            json!({}),
        )
        .await["createTeam"]["team"]["id"]
        .clone();
    app.data(
        "mutation($t: ID!, $u: ID!) { addTeamMember(input: {organizationId: \"default\", teamId: $t, userId: $u}) { team { id } } }",
        json!({"t": team, "u": viewer}),
    )
    .await;
    let granted = app
        .data(
            "mutation($t: ID!, $c: ID!) { setTeamClusterRole(input: {organizationId: \"default\", teamId: $t, clusterId: $c, role: OPERATOR}) { team { clusterRoles { clusterId role } members { nodes { email } } } } }",
            json!({"t": team, "c": one}),
        )
        .await;
    assert_eq!(
        granted["setTeamClusterRole"]["team"]["clusterRoles"],
        json!([{"clusterId": one, "role": "OPERATOR"}])
    );
    let create = "mutation($c: ID!, $n: String!, $s: String!) { createStream(input: {clusterId: $c, config: {name: $n, subjects: [$s]}}) { stream { name } } }";
    let ok = app
        .graphql_as(
            Some(&token),
            create,
            json!({"c": one, "n": "TEAM_ONE", "s": "team.one.>"}),
        )
        .await;
    assert!(ok.get("errors").is_none(), "{ok}");
    let denied = app
        .graphql_as(
            Some(&token),
            create,
            json!({"c": two, "n": "TEAM_TWO", "s": "team.two.>"}),
        )
        .await;
    assert_eq!(code(&denied), "FORBIDDEN");
    // `Cluster.myRole` says so beforehand, for each cluster and each caller.
    let my_role = "query($c: ID!) { cluster(id: $c) { myRole } }";
    let role_of = |token: Option<String>, c: String| {
        let app = &app;
        async move { app.data_as(token.as_deref(), my_role, json!({"c": c})).await["cluster"]["myRole"].clone() }
    };
    assert_eq!(role_of(Some(token.clone()), one.clone()).await, "OPERATOR");
    assert_eq!(role_of(Some(token.clone()), two.clone()).await, "VIEWER");
    assert_eq!(role_of(app.token.clone(), one.clone()).await, "OWNER");
    // Taking the grant away takes the right away.
    app.data(
        "mutation($t: ID!, $c: ID!) { setTeamClusterRole(input: {organizationId: \"default\", teamId: $t, clusterId: $c, role: null}) { team { id } } }",
        json!({"t": team, "c": one}),
    )
    .await;
    let denied = app
        .graphql_as(
            Some(&token),
            create,
            json!({"c": one, "n": "TEAM_THREE", "s": "team.three.>"}),
        )
        .await;
    assert_eq!(code(&denied), "FORBIDDEN");
    assert_eq!(role_of(Some(token.clone()), one.clone()).await, "VIEWER");
}

#[tokio::test]
async fn websocket_limits_subscriptions_per_connection_and_closes_sockets_that_never_init() {
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.auth.max_subscriptions_per_connection = 2;
        c.auth.connection_init_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    // A socket that never says connection_init is closed.
    let (mut ws, _) = {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{}/graphql", app.addr).into_client_request().unwrap();
        req.headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        tokio_tungstenite::connect_async(req).await.unwrap()
    };
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the idle socket was closed");

    // Two subscriptions on one connection; the third is refused with a clear error.
    let token = app.token.clone().unwrap();
    let mut sub = jsc_testkit::Subscription::connect(
        app.addr,
        "graphql-transport-ws",
        json!({"authorization": format!("Bearer {token}")}),
    )
    .await;
    assert_eq!(sub.next_frame_raw().await["type"], "connection_ack");
    for id in ["1", "2", "3"] {
        sub.start_with_id(id, WATCH, json!({})).await;
    }
    // They start concurrently: one of them (any) is refused.
    let frame = sub.next_frame_raw().await;
    assert_eq!(code(&frame["payload"]), "VALIDATION", "{frame}");
    assert!(
        frame.to_string().contains("at most 2 subscriptions per connection"),
        "{frame}"
    );
    assert_eq!(
        sub.next_frame_raw().await["type"],
        "complete",
        "only the refused one ends"
    );
    // Completing one frees its slot for the next.
    let refused = frame["id"].as_str().unwrap().to_string();
    let running = ["1", "2", "3"].into_iter().find(|i| *i != refused).unwrap();
    sub.send_raw(json!({"id": running, "type": "complete"})).await;
    sub.start_with_id("4", WATCH, json!({})).await;
    app.register_cluster(json!({"name": "slots", "urls": [app.nats.url()]}))
        .await;
    let mut ids = std::collections::BTreeSet::new();
    while ids.len() < 2 {
        let f = sub.next_frame_raw().await;
        if f["type"] == "complete" && f["id"] == running {
            continue;
        }
        assert_eq!(f["type"], "next", "{f}");
        assert!(f["payload"].get("errors").is_none(), "{f}");
        ids.insert(f["id"].as_str().unwrap().to_string());
    }
    assert!(ids.contains("4") && !ids.contains(running), "{ids:?}");
}

#[tokio::test]
async fn rotating_the_signing_key_keeps_issued_tokens_valid_until_the_old_key_is_dropped() {
    let b64 = |k: [u8; 32]| base64::engine::general_purpose::STANDARD.encode(k);
    let (old, new) = (b64([1; 32]), b64([2; 32]));
    let keys = |signing: Vec<String>| {
        let secret = b64([3; 32]);
        move |c: &mut jsc_cli::Config| {
            c.signing_keys = signing;
            c.secret_keys = vec![secret];
        }
    };
    let mut app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), keys(vec![old.clone()])).await;
    let issued = app.token.clone().unwrap();
    let refresh = app.login(OWNER_EMAIL, OWNER_PASSWORD).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    app.shutdown().await;
    let nats = std::mem::replace(&mut app.nats, jsc_testkit::NatsServer::start());

    // New key first, old one still listed: old tokens work, new ones are signed by the new key.
    let mut app = TestApp::spawn_with(nats, keys(vec![new.clone(), old.clone()])).await;
    assert!(
        app.graphql_as(Some(&issued), ME, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    let traded = app.data_as(None, REFRESH, json!({"t": refresh})).await;
    assert!(traded["refreshSession"]["accessToken"].is_string());
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(
        kid(app.token.as_deref().unwrap()),
        kid(&issued),
        "new tokens use the new key"
    );
    app.shutdown().await;
    let nats = std::mem::replace(&mut app.nats, jsc_testkit::NatsServer::start());

    // The old key dropped: what it signed is refused.
    let app = TestApp::spawn_with(nats, keys(vec![new])).await;
    assert_eq!(
        code(&app.graphql_as(Some(&issued), ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert!(app.graphql(ME, json!({})).await.get("errors").is_none());
}

#[tokio::test]
async fn a_user_sees_and_ends_their_own_sessions() {
    let app = TestApp::spawn().await;
    let other = app.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let sessions = app
        .data("{ me { sessions { nodes { id current refreshes } } } }", json!({}))
        .await["me"]["sessions"]["nodes"]
        .clone();
    let list = sessions.as_array().unwrap();
    assert_eq!(list.len(), 2, "{sessions}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let theirs = list.iter().find(|s| s["current"] == false).unwrap()["id"].clone();
    app.data(
        "mutation($s: ID!) { revokeSession(input: {id: $s}) { sessionId } }",
        json!({"s": theirs}),
    )
    .await;
    assert_eq!(
        code(&app.graphql_as(other["accessToken"].as_str(), ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert!(
        app.graphql(ME, json!({})).await.get("errors").is_none(),
        "this session goes on"
    );
}

#[tokio::test]
async fn expired_sessions_end_and_leave_the_view() {
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.auth.refresh_ttl = std::time::Duration::from_secs(1);
        c.session_sweep_interval = std::time::Duration::from_millis(100);
    })
    .await;
    let auth = app.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let sid = session_id(auth["refreshToken"].as_str().unwrap());
    use futures::StreamExt;
    let sessions = jsc_projections::Projection::Sessions;
    let mut changes = app.console.view_changed(sessions);
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while app.console.view_len(sessions) > 0 {
            let _ = changes.next().await;
        }
    })
    .await
    .expect("the sweeper ended both sessions");
    assert_eq!(
        code(&app.graphql_as(None, REFRESH, json!({"t": auth["refreshToken"]})).await),
        "UNAUTHENTICATED"
    );
    let history = app.events_of("session", &sid).await;
    let last = history.last().unwrap();
    assert_eq!(last.event_type, "SessionRevoked");
    assert_eq!(last.payload["Revoked"]["reason"], "expired");
    assert_eq!(last.actor(), "system:session-sweeper");
}

#[tokio::test]
async fn an_operator_resets_a_locked_out_owner_from_the_command_line() {
    let app = TestApp::spawn().await;
    let old_token = app.token.clone().unwrap();
    let data_dir = app.data_dir.path().display().to_string();
    let base = ["users", "reset-password", "--nats-url", app.nats.url()];
    let (code, _, err) = cli(&[&base[..], &["--data-dir", &data_dir, "--email", "nobody@example.com"]].concat()).await;
    assert_eq!(code, 2);
    assert!(err.contains("no account with the email nobody@example.com"), "{err}");

    let (code, out, err) = cli(&[&base[..], &["--data-dir", &data_dir, "--email", OWNER_EMAIL]].concat()).await;
    assert_eq!(code, 0, "{err}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("new password (shown once): "))
        .expect("the new password is printed")
        .to_string();
    app.login(OWNER_EMAIL, &password).await;
    // `code` is the exit code here.
    let old = app.try_login(OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(jsc_testkit::code(&old), "UNAUTHENTICATED");
    assert_eq!(
        jsc_testkit::code(&app.graphql_as(Some(&old_token), ME, json!({})).await),
        "UNAUTHENTICATED"
    );

    // A data directory without the console's secret key (removed as soon as it is made).
    let wrong_dir = tempfile::tempdir().unwrap().path().display().to_string();
    let (code, _, err) = cli(&[&base[..], &["--data-dir", &wrong_dir, "--email", OWNER_EMAIL]].concat()).await;
    assert_eq!(code, 2);
    assert!(err.contains("no secret key at"), "{err}");
}

#[tokio::test]
async fn identity_views_replay_into_scratch_identically() {
    let app = TestApp::spawn().await;
    app.invite_member("default", "replayed@example.com", "OPERATOR").await;
    app.data(CREATE_KEY, json!({"o": "default", "n": "k", "r": "VIEWER"}))
        .await;
    for projection in ["users", "organizations", "invitations", "sessions", "api_keys"] {
        let (code, out, err) = cli(&["replay", "--nats-url", app.nats.url(), "--projection", projection]).await;
        assert_eq!(code, 0, "{projection}: {out}{err}");
        assert!(out.contains("identical to the live view"), "{projection}: {out}");
    }
}

#[tokio::test]
async fn an_api_key_stops_working_when_it_expires() {
    let app = TestApp::spawn().await;
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let key = app
        .data(
            CREATE_KEY,
            json!({"o": "default", "n": "short-lived", "r": "VIEWER", "x": expires.to_rfc3339()}),
        )
        .await["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        app.graphql_as(Some(&key), "{ clusters { nodes { id } } }", json!({}))
            .await
            .get("errors")
            .is_none()
    );
    // Expiry is a moment, not an event: wait it out.
    let left = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + std::time::Duration::from_millis(50)).await;
    let body = app
        .graphql_as(Some(&key), "{ clusters { nodes { id } } }", json!({}))
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(first_error(&body).1.contains("expired"), "{body}");
}

#[tokio::test]
async fn a_member_removed_mid_subscription_stops_receiving() {
    let app = TestApp::spawn().await;
    let (member_id, token) = app.invite_member("default", "watcher@example.com", "VIEWER").await;
    let mut sub = app
        .subscribe_as(Some(&token), "graphql-transport-ws", WATCH, json!({}))
        .await;
    let register = |n: &str| app.register_cluster(json!({"name": n, "urls": [app.nats.url()]}));
    app.data(
        "mutation($u: ID!) { removeMember(input: {organizationId: \"default\", userId: $u}) { organization { id } } }",
        json!({"u": member_id}),
    )
    .await;
    let hidden = register("while-out").await;
    // Back in the organization (invited again, joining with the same account): the next
    // change arrives, the one made while out never did.
    app.invite_member("default", "watcher@example.com", "VIEWER").await;
    let seen = register("back-in").await;
    let change = sub.next_data().await;
    assert_eq!(change["clusterChanged"]["clusterId"], seen.as_str());
    assert_ne!(change["clusterChanged"]["clusterId"], hidden.as_str());
}

#[tokio::test]
async fn behind_a_trusted_proxy_limits_and_events_use_the_forwarded_client_address() {
    let attempt = |app: &TestApp, forwarded: &'static str| {
        let req = app
            .http
            .post(app.url("/graphql"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"query": LOGIN, "variables": {"e": "x@example.com", "p": "not the password"}}));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // Without trusting anyone, the header is ignored: every attempt is 127.0.0.1's.
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| c.auth.attempts_per_minute = 3).await;
    for forwarded in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(code(&attempt(&app, forwarded).await), "UNAUTHENTICATED");
    }
    assert_eq!(
        code(&attempt(&app, "198.51.100.3").await),
        "RATE_LIMITED",
        "spoofing the header gains nothing"
    );

    // Trusting the proxy (here: loopback), each forwarded client has its own allowance,
    // and events name the client, not the proxy.
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.auth.attempts_per_minute = 3;
        c.auth.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for _ in 0..3 {
        assert_eq!(code(&attempt(&app, "198.51.100.1").await), "UNAUTHENTICATED");
    }
    assert_eq!(code(&attempt(&app, "198.51.100.1").await), "RATE_LIMITED");
    assert_eq!(
        code(&attempt(&app, "198.51.100.2").await),
        "UNAUTHENTICATED",
        "another client is not limited"
    );
    let auth = format!("Bearer {}", app.token.as_deref().unwrap());
    app.graphql_with_headers(
        "mutation($u: String!) { registerCluster(input: {name: \"proxied\", urls: [$u]}) { cluster { id } } }",
        json!({"u": app.nats.url()}),
        &[
            ("authorization", auth.as_str()),
            ("x-forwarded-for", "192.0.2.44, 127.0.0.1"),
        ],
    )
    .await;
    assert_eq!(registered_from(&app).await, "192.0.2.44");
}

// ---------------------------------------------------------------------------------------
// Findings of the security review, each shown fixed
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_websocket_cannot_run_queries_after_its_session_ends() {
    let app = TestApp::spawn().await;
    let auth = app.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let access = auth["accessToken"].as_str().unwrap();
    let mut ws = jsc_testkit::Subscription::connect(
        app.addr,
        "graphql-transport-ws",
        json!({"authorization": format!("Bearer {access}")}),
    )
    .await;
    assert_eq!(ws.next_frame_raw().await["type"], "connection_ack");
    ws.start_with_id("q1", "{ clusters { nodes { id } } }", json!({})).await;
    let frame = ws.next_frame_raw().await;
    assert!(
        frame["payload"].get("errors").is_none(),
        "works while signed in: {frame}"
    );
    app.data_as(Some(access), "mutation { logout { sessionId } }", json!({}))
        .await;
    // Queries and mutations over the same socket are refused from then on.
    ws.start_with_id(
        "q2",
        "mutation { createOrganization(input: {name: \"late\"}) { organization { id } } }",
        json!({}),
    )
    .await;
    let frame = loop {
        let f = ws.next_frame_raw().await;
        if f["id"] == "q2" && f["type"] != "complete" {
            break f;
        }
    };
    assert_eq!(code(&frame["payload"]), "UNAUTHENTICATED", "{frame}");
}

#[tokio::test]
async fn an_admin_of_one_organization_cannot_lock_a_user_out_of_another() {
    let app = TestApp::spawn().await;
    let (x, _) = app.invite_member("default", "x@example.com", "ADMIN").await;
    let b = create_org(&app, "B").await;
    // The same account joins B too.
    app.invite_member(&b, "x@example.com", "VIEWER").await;
    let (_, admin_b) = app.invite_member(&b, "y@example.com", "ADMIN").await;
    let disable = "mutation($u: ID!) { disableUser(input: {id: $u}) { user { disabled } } }";
    let body = app.graphql_as(Some(&admin_b), disable, json!({"u": x})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    // B's admin can still take the user out of B.
    app.data_as(
        Some(&admin_b),
        "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) { organization { id } } }",
        json!({"o": b, "u": x}),
    )
    .await;
    // The installation's owners can act on any account.
    assert_eq!(
        app.data(disable, json!({"u": x})).await["disableUser"]["user"]["disabled"],
        true
    );
}

#[tokio::test]
async fn a_burst_of_concurrent_guesses_is_limited_like_a_sequence() {
    let app = TestApp::spawn().await;
    let guesses: Vec<String> = (0..12).map(|i| format!("guess number {i}")).collect();
    let bodies = futures::future::join_all(guesses.iter().map(|p| app.try_login(OWNER_EMAIL, p))).await;
    let wrong = bodies.iter().filter(|b| code(b) == "UNAUTHENTICATED").count();
    let limited = bodies.iter().filter(|b| code(b) == "RATE_LIMITED").count();
    assert_eq!((wrong, limited), (5, 7), "five guesses are checked, the rest refused");
}

#[tokio::test]
async fn the_client_address_is_read_from_the_right_of_every_forwarded_line() {
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.auth.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let register =
        "mutation($n: String!, $u: String!) { registerCluster(input: {name: $n, urls: [$u]}) { cluster { id } } }";
    let auth = format!("Bearer {}", app.token.as_deref().unwrap());
    // A client pads its own header so that a cut would leave its chosen address last…
    let padded = format!("{}1.2.3.4, 203.0.113.5", " ".repeat(300));
    let res = app
        .http
        .post(app.url("/graphql"))
        .header("authorization", &auth)
        .header("x-forwarded-for", "1.1.1.1")
        .header("x-forwarded-for", padded)
        .json(&json!({"query": register, "variables": {"n": "fwd", "u": app.nats.url()}}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    // …but the proxy's own, last entry is what counts.
    assert_eq!(registered_from(&app).await, "203.0.113.5");
}

#[tokio::test]
async fn a_personal_api_key_dies_when_its_users_password_changes() {
    let app = TestApp::spawn().await;
    let key = app
        .data(CREATE_KEY, json!({"o": "default", "n": "mine", "r": "VIEWER"}))
        .await["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let service = app
        .data(
            CREATE_KEY,
            json!({"o": "default", "n": "robot", "r": "VIEWER", "s": "robot"}),
        )
        .await["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        app.graphql_as(Some(&key), "{ clusters { nodes { id } } }", json!({}))
            .await
            .get("errors")
            .is_none()
    );
    // The key and the change can fall in the same second; make sure they do not.
    let created = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(
        1000 - u64::from(created.timestamp_subsec_millis()) + 10,
    ))
    .await;
    app.data(
        "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { accessToken } }",
        json!({"c": OWNER_PASSWORD, "n": "a completely new passphrase"}),
    )
    .await;
    let body = app
        .graphql_as(Some(&key), "{ clusters { nodes { id } } }", json!({}))
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    assert!(
        app.graphql_as(Some(&service), "{ clusters { nodes { id } } }", json!({}))
            .await
            .get("errors")
            .is_none(),
        "a service account's key is nobody's password"
    );
}

#[tokio::test]
async fn moving_a_cluster_to_other_servers_needs_its_credentials_again() {
    let app = TestApp::spawn().await;
    let id = app
        .register_cluster(
            json!({"name": "creds", "urls": [app.nats.url()], "auth": {"kind": "TOKEN", "token": "s3cr3t-token"}}),
        )
        .await;
    let moved = app
        .graphql(
            "mutation($id: ID!) { updateCluster(input: {id: $id, urls: [\"nats://attacker.example:4222\"]}) { cluster { id } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(code(&moved), "VALIDATION", "{moved}");
    assert!(first_error(&moved).1.contains("needs the credentials again"), "{moved}");
    let with_creds = app
        .graphql(
            "mutation($id: ID!) { updateCluster(input: {id: $id, urls: [\"nats://elsewhere.example:4222\"], auth: {kind: TOKEN, token: \"another-token\"}}) { cluster { urls } } }",
            json!({"id": id}),
        )
        .await;
    assert!(with_creds.get("errors").is_none(), "{with_creds}");
}

/// The client address recorded on the newest cluster registration.
async fn registered_from(app: &TestApp) -> Value {
    app.data(
        "{ auditTrail(filter: {eventType: \"ClusterRegistered\"}) { nodes { clientAddr } } }",
        json!({}),
    )
    .await["auditTrail"]["nodes"][0]["clientAddr"]
        .clone()
}

/// Creates an organization as the owner and returns its id.
async fn create_org(app: &TestApp, name: &str) -> String {
    app.data(
        "mutation($n: String!) { createOrganization(input: {name: $n}) { organization { id } } }",
        json!({"n": name}),
    )
    .await["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn two_invitations_for_one_new_address_accepted_at_once_make_one_account() {
    let app = TestApp::spawn().await;
    let other = create_org(&app, "Other").await;
    let tokens: Vec<String> =
        futures::future::join_all(["default", other.as_str()].map(|o| app.invite(o, "twice@example.com", "VIEWER")))
            .await
            .into_iter()
            .map(|invitation| invitation.token)
            .collect();
    let accepted = futures::future::join_all(tokens.iter().map(|t| {
        app.graphql_as(
            None,
            ACCEPT,
            json!({"t": t, "p": "the same good password", "n": "Twice"}),
        )
    }))
    .await;
    let ids: std::collections::BTreeSet<String> = accepted
        .iter()
        .map(|b| {
            assert!(b.get("errors").is_none(), "{b}");
            b["data"]["acceptInvitation"]["userId"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one account, member of both organizations");
    let orgs = app
        .data_as(
            accepted[0]["data"]["acceptInvitation"]["accessToken"].as_str(),
            "{ organizations { id } }",
            json!({}),
        )
        .await;
    assert_eq!(orgs["organizations"].as_array().unwrap().len(), 2, "{orgs}");
}

#[tokio::test]
async fn a_bad_name_does_not_use_up_an_invitation() {
    let app = TestApp::spawn().await;
    let invite = app.invite("default", "newcomer@example.com", "VIEWER").await;
    let password = jsc_testkit::member_password("newcomer@example.com");
    let bad = app
        .graphql_as(
            None,
            jsc_testkit::gql::ACCEPT,
            json!({"t": invite.token, "p": password, "n": "bad\u{7}name"}),
        )
        .await;
    assert_eq!(jsc_testkit::code(&bad), "VALIDATION", "{bad}");
    assert!(
        bad["errors"][0]["message"].as_str().unwrap().starts_with("name:"),
        "{bad}"
    );
    // The same invitation still works with a good name.
    let good = app
        .data_as(
            None,
            jsc_testkit::gql::ACCEPT,
            json!({"t": invite.token, "p": password, "n": "New Comer"}),
        )
        .await;
    assert!(good["acceptInvitation"]["accessToken"].is_string(), "{good}");
}
