//! Global object identification over GraphQL: the `Node` interface and `node(id)` /
//! `nodes(ids)`, resolved by the application ([`jsc_app::nodes`]) with its permission checks.

use async_graphql::{Context, ID, Interface, Object, PathSegment, Result};
use jsc_app::nodes::Node as Found;

use crate::clusters::Cluster;
use crate::context::{caller, console};
use crate::history::AuditEntry;
use crate::identity::{ApiKeyObj, InvitationObj, OrganizationObj, SessionObj, TeamObj, UserObj};
use crate::streams::{ConsumerObj, StreamObj};

/// An object with a global id: unique across every type, stable, and enough to fetch the
/// object again with `node(id)`. Client caches normalize by it.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "The object's global id: unique across every type; pass it to `node(id)` to fetch the object again."
))]
pub enum Node {
    Cluster(Cluster),
    Stream(StreamObj),
    Consumer(ConsumerObj),
    User(UserObj),
    Organization(OrganizationObj),
    Team(TeamObj),
    Session(SessionObj),
    ApiKey(ApiKeyObj),
    Invitation(InvitationObj),
    AuditEntry(AuditEntry),
}

impl From<Found> for Node {
    fn from(f: Found) -> Self {
        match f {
            Found::Cluster(v) => Node::Cluster(Cluster(v)),
            Found::Stream(v) => Node::Stream(StreamObj(v)),
            Found::Consumer(v) => Node::Consumer(ConsumerObj(v)),
            Found::User(v) => Node::User(UserObj(v)),
            Found::Organization(v) => Node::Organization(OrganizationObj(v)),
            Found::Team(t) => Node::Team(TeamObj(t)),
            Found::Session(view, current) => Node::Session(SessionObj { view, current }),
            Found::ApiKey(v) => Node::ApiKey(ApiKeyObj(v)),
            Found::Invitation(v) => Node::Invitation(InvitationObj(v)),
            Found::AuditEntry(r) => Node::AuditEntry(AuditEntry(r)),
        }
    }
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global id, with the permission checks of the object's own query
    /// (a stream needs viewer on its cluster, an invitation admin in its organization...).
    /// `NOT_FOUND` alike for an id that names nothing and for an object you may not see.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id, from any object's `id`.")] id: ID,
    ) -> Result<Node> {
        Ok(console(ctx).node(&caller(ctx)?, &id).await?.into())
    }

    /// Several objects by global id, in the order given (at most 100; `VALIDATION` above).
    /// Each id you may not see, or that names nothing, is null in the list with its own
    /// `NOT_FOUND` error.
    #[graphql(complexity = "ids.len().max(1) * child_complexity")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global ids, from objects' `id`: at most 100.")] ids: Vec<ID>,
    ) -> Result<Vec<Option<Node>>> {
        let ids: Vec<String> = ids.into_iter().map(|i| i.0).collect();
        let found = console(ctx).nodes(&caller(ctx)?, &ids).await?;
        let field = ctx.item.node.response_key().node.to_string();
        Ok(found
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                Ok(n) => Some(n.into()),
                Err(e) => {
                    // Each error says which id it is about: `path` is ["nodes", index].
                    let mut e = async_graphql::Error::from(e).into_server_error(ctx.item.pos);
                    e.path = vec![PathSegment::Field(field.clone()), PathSegment::Index(i)];
                    ctx.add_error(e);
                    None
                }
            })
            .collect())
    }
}
