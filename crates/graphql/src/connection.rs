//! Relay cursor connections: one `PageInfo`, and `connection!` for a list's
//! `…Connection { edges { cursor node } nodes pageInfo totalCount }` and `…Edge` types.
//! Paging itself (cursors, bounds, counts) is the application's ([`jsc_app::paging`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::{Context, Object};
use jsc_app::paging::{Page, Paging, Position};

use crate::context::console;

/// The `PageInfo` object; the schema's description is the doc comment on its impl.
#[derive(Clone, Debug)]
pub struct PageInfo {
    has_next_page: bool,
    has_previous_page: bool,
    start: Option<Position>,
    end: Option<Position>,
}

/// Where a page sits in its list, and the cursors to page on from it.
#[Object]
impl PageInfo {
    /// Whether items follow the page: page on with `first` and `after: endCursor`.
    async fn has_next_page(&self) -> bool {
        self.has_next_page
    }
    /// Whether items come before the page: page back with `last` and `before: startCursor`.
    async fn has_previous_page(&self) -> bool {
        self.has_previous_page
    }
    /// The cursor of the page's first item; null when the page is empty.
    async fn start_cursor(&self, ctx: &Context<'_>) -> Option<String> {
        self.start.as_ref().map(|p| console(ctx).cursor_at(p))
    }
    /// The cursor of the page's last item; null when the page is empty.
    async fn end_cursor(&self, ctx: &Context<'_>) -> Option<String> {
        self.end.as_ref().map(|p| console(ctx).cursor_at(p))
    }
}

/// The cursor of an item, signed when asked for.
pub fn cursor(ctx: &Context<'_>, position: &Position) -> String {
    console(ctx).cursor_at(position)
}

type Count = Pin<Box<dyn Future<Output = jsc_app::Result<usize>> + Send>>;

/// How many items a whole list holds: known with the page, or counted when asked.
#[derive(Clone)]
pub enum Total {
    Known(usize),
    Later(Arc<dyn Fn() -> Count + Send + Sync>),
}

impl Total {
    pub async fn get(&self) -> async_graphql::Result<usize> {
        Ok(match self {
            Total::Known(n) => *n,
            Total::Later(count) => count().await?,
        })
    }
}

/// The parts of a page a connection type is made of: each item once, with its position
/// (`edges` and `nodes` both borrow them).
pub struct Parts<N> {
    pub items: Vec<(Position, N)>,
    pub page_info: PageInfo,
    pub total: Total,
}

impl<N> Parts<N> {
    /// A connection's parts from a page whose items become `N`, counted with `later` when
    /// the page does not know its total.
    pub fn of<T>(page: Page<T>, node: impl Fn(T) -> N, later: Option<Total>) -> Self {
        let page_info = PageInfo {
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
            start: page.edges.first().map(|e| e.position.clone()),
            end: page.edges.last().map(|e| e.position.clone()),
        };
        let total = match (page.total_count, later) {
            (Some(n), _) => Total::Known(n),
            (None, Some(t)) => t,
            (None, None) => Total::Known(page.edges.len()),
        };
        let items = page.edges.into_iter().map(|e| (e.position, node(e.node))).collect();
        Self {
            items,
            page_info,
            total,
        }
    }
}

/// What the four paging arguments ask for.
pub fn paging(first: Option<i32>, after: Option<String>, last: Option<i32>, before: Option<String>) -> Paging {
    Paging {
        first: first.map(i64::from),
        after,
        last: last.map(i64::from),
        before,
    }
}

/// Complexity of a connection field: itself, and its children once per item it may return.
pub fn per_item(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    // A count no list takes is charged as one: the resolver refuses it with `VALIDATION`
    // naming the argument, which says more than "too complex".
    let n = first.or(last).map_or(jsc_app::paging::DEFAULT_PAGE, |n| {
        if (0..=jsc_app::paging::MAX_EVENT_PAGE as i32).contains(&n) {
            n.max(1) as usize
        } else {
            1
        }
    });
    n.saturating_mul(child).saturating_add(1)
}

/// `$conn` and `$edge` types for a connection of `$node`s (`$items` names them in
/// descriptions, such as "streams").
/// `, $extra { fields }` adds a second part of type `$extra` to the connection (`self.1`)
/// and the resolvers given to its fields.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $items:literal) => {
        $crate::connection::connection!($conn, $edge, $node, $items, () {});

        impl $conn {
            #[allow(
                dead_code,
                reason = "a connection whose total is counted later is built from its parts"
            )]
            pub fn new<T>(page: jsc_app::paging::Page<T>, node: impl Fn(T) -> $node) -> Self {
                Self($crate::connection::Parts::of(page, node, None), ())
            }
        }
    };
    ($conn:ident, $edge:ident, $node:ty, $items:literal, $extra:ty { $($fields:tt)* }) => {
        pub struct $edge<'a> {
            position: &'a jsc_app::paging::Position,
            node: &'a $node,
        }

        #[doc = concat!("One of ", $items, " and its cursor.")]
        #[async_graphql::Object]
        impl<'a> $edge<'a> {
            /// Where the item sits in the list: pass as `after` (or `before`) to page on
            /// from it. Opaque; valid for this list only.
            async fn cursor(&self, ctx: &async_graphql::Context<'_>) -> String {
                $crate::connection::cursor(ctx, self.position)
            }
            /// The item.
            async fn node(&self) -> &$node {
                self.node
            }
        }

        pub struct $conn(pub $crate::connection::Parts<$node>, pub $extra);

        #[doc = concat!("A page of ", $items, ": each with its cursor (`edges`) or alone (`nodes`), \
                         where the page sits (`pageInfo`), and how many there are (`totalCount`).")]
        #[async_graphql::Object]
        impl $conn {
            #[doc = concat!("The ", $items, " of the page, each with its cursor.")]
            async fn edges(&self) -> Vec<$edge<'_>> {
                self.0
                    .items
                    .iter()
                    .map(|(position, node)| $edge { position, node })
                    .collect()
            }
            #[doc = concat!("The ", $items, " of the page, without cursors.")]
            async fn nodes(&self) -> Vec<&$node> {
                self.0.items.iter().map(|(_, n)| n).collect()
            }
            /// Whether more items come before or after the page, and the cursors to get them.
            async fn page_info(&self) -> &$crate::connection::PageInfo {
                &self.0.page_info
            }
            #[doc = concat!("How many ", $items, " the whole list holds (every page, with the same filters).")]
            async fn total_count(&self) -> async_graphql::Result<usize> {
                self.0.total.get().await
            }
            $($fields)*
        }
    };
}
pub(crate) use connection;
