//! Typed helpers for what many tests do through GraphQL on the way to what they check:
//! sign in, register and change a cluster, create a stream or a consumer, invite a member.
//! Each asks as the owner; the `_as` variants ask with another token.

use serde_json::{Value, json};

use crate::TestApp;

/// The GraphQL documents the helpers send, for tests that send them themselves (to see
/// them refused).
pub mod gql {
    pub const LOGIN: &str = "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken refreshToken userId accessTokenExpiresAt } }";
    pub const INVITE: &str = "mutation($o: ID!, $e: String!, $r: Role!) { inviteUser(input: {organizationId: $o, email: $e, role: $r}) { token invitation { id email role status } } }";
    pub const ACCEPT: &str = "mutation($t: String!, $p: String!, $n: String!) { acceptInvitation(input: {token: $t, password: $p, name: $n}) { accessToken refreshToken userId } }";
    pub const REGISTER_CLUSTER: &str =
        "mutation($input: RegisterClusterInput!) { registerCluster(input: $input) { cluster { id } } }";
    pub const UPDATE_CLUSTER: &str =
        "mutation($input: UpdateClusterInput!) { updateCluster(input: $input) { cluster { id } } }";
    pub const REMOVE_CLUSTER: &str = "mutation($id: ID!) { removeCluster(input: {id: $id}) { clusterId } }";
    pub const CREATE_STREAM: &str = "mutation($c: ID!, $cfg: StreamConfigInput!) { createStream(input: {clusterId: $c, config: $cfg}) { stream { name } } }";
    pub const CREATE_CONSUMER: &str = "mutation($c: ID!, $s: String!, $cfg: ConsumerConfigInput!) { createConsumer(input: {clusterId: $c, stream: $s, config: $cfg}) { consumer { name } } }";
}

/// An invitation as [`TestApp::invite`] made it.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: String,
    /// What the invitee accepts it with.
    pub token: String,
}

/// The password [`TestApp::invite_member`] gives the account it creates for `email`.
pub fn member_password(email: &str) -> String {
    format!("{email}-password")
}

fn string(v: &Value, what: &str) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} in the answer: {v}"))
        .to_string()
}

impl TestApp {
    /// Signs in and returns the whole answer, for a sign-in that may be refused.
    pub async fn try_login(&self, email: &str, password: &str) -> Value {
        self.graphql_as(None, gql::LOGIN, json!({"e": email, "p": password}))
            .await
    }

    /// Registers a cluster (`input` is a `RegisterClusterInput`) and returns its id.
    pub async fn register_cluster(&self, input: Value) -> String {
        self.register_cluster_as(self.token.as_deref(), input).await
    }

    pub async fn register_cluster_as(&self, token: Option<&str>, input: Value) -> String {
        let data = self
            .data_as(token, gql::REGISTER_CLUSTER, json!({"input": input}))
            .await;
        string(&data["registerCluster"]["cluster"]["id"], "a cluster id")
    }

    /// Changes a cluster (`input` is an `UpdateClusterInput`).
    pub async fn update_cluster(&self, id: &str, mut input: Value) {
        input["id"] = json!(id);
        self.data(gql::UPDATE_CLUSTER, json!({"input": input})).await;
    }

    /// Removes a cluster; returns the id the console answers with.
    pub async fn remove_cluster(&self, id: &str) -> String {
        let data = self.data(gql::REMOVE_CLUSTER, json!({"id": id})).await;
        string(&data["removeCluster"]["clusterId"], "the removed cluster's id")
    }

    /// Creates the stream `name` on `cluster`, on `subjects` (none: the server's default).
    pub async fn create_stream(&self, cluster: &str, name: &str, subjects: &[&str]) {
        self.create_stream_as(self.token.as_deref(), cluster, name, subjects)
            .await
    }

    pub async fn create_stream_as(&self, token: Option<&str>, cluster: &str, name: &str, subjects: &[&str]) {
        let mut config = json!({"name": name});
        if !subjects.is_empty() {
            config["subjects"] = json!(subjects);
        }
        self.data_as(token, gql::CREATE_STREAM, json!({"c": cluster, "cfg": config}))
            .await;
    }

    /// Creates the durable consumer `durable` (defaults otherwise) on `stream`.
    pub async fn create_consumer(&self, cluster: &str, stream: &str, durable: &str) {
        self.create_consumer_as(self.token.as_deref(), cluster, stream, durable)
            .await
    }

    pub async fn create_consumer_as(&self, token: Option<&str>, cluster: &str, stream: &str, durable: &str) {
        self.data_as(
            token,
            gql::CREATE_CONSUMER,
            json!({"c": cluster, "s": stream, "cfg": {"durableName": durable}}),
        )
        .await;
    }

    /// Invites `email` into `org` with `role` (`VIEWER`, `OPERATOR`, `ADMIN`, `OWNER`).
    pub async fn invite(&self, org: &str, email: &str, role: &str) -> Invitation {
        self.invite_as(self.token.as_deref(), org, email, role).await
    }

    pub async fn invite_as(&self, token: Option<&str>, org: &str, email: &str, role: &str) -> Invitation {
        let data = self
            .data_as(token, gql::INVITE, json!({"o": org, "e": email, "r": role}))
            .await;
        let invite = &data["inviteUser"];
        Invitation {
            id: string(&invite["invitation"]["id"], "an invitation id"),
            token: string(&invite["token"], "an invitation token"),
        }
    }

    /// Invites `email` into `org` with `role` and accepts with [`member_password`] (the
    /// account's own password, when it already has one); returns (user id, access token).
    pub async fn invite_member(&self, org: &str, email: &str, role: &str) -> (String, String) {
        self.invite_member_as(self.token.as_deref(), org, email, role).await
    }

    pub async fn invite_member_as(&self, token: Option<&str>, org: &str, email: &str, role: &str) -> (String, String) {
        let invitation = self.invite_as(token, org, email, role).await;
        let data = self
            .data_as(
                None,
                gql::ACCEPT,
                json!({"t": invitation.token, "p": member_password(email), "n": email}),
            )
            .await;
        let auth = &data["acceptInvitation"];
        (
            string(&auth["userId"], "a user id"),
            string(&auth["accessToken"], "an access token"),
        )
    }
}
