//! Streams and consumers over GraphQL: configuration and history from the views, live
//! state from the clusters, changes as use cases of the application.

mod inputs;
mod roots;
mod subscriptions;
mod types;

use async_graphql::Enum;

pub use roots::{StreamMutation, StreamQuery};
pub use subscriptions::StreamSubscription;
pub use types::StreamPage;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub fn wire(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
            pub fn from_wire(s: &str) -> Option<Self> {
                match s { $($wire => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

wire_enum!(RetentionPolicy { Limits => "limits", Interest => "interest", WorkQueue => "workqueue" });
wire_enum!(StorageType { File => "file", Memory => "memory" });
wire_enum!(DiscardPolicy { Old => "old", New => "new" });
wire_enum!(Compression { None => "none", S2 => "s2" });
wire_enum!(DeliverPolicy {
    All => "all",
    Last => "last",
    New => "new",
    ByStartSequence => "by_start_sequence",
    ByStartTime => "by_start_time",
    LastPerSubject => "last_per_subject",
});
wire_enum!(AckPolicy { None => "none", All => "all", Explicit => "explicit" });
wire_enum!(ReplayPolicy { Instant => "instant", Original => "original" });
