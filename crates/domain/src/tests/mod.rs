//! Given/when/then tests of the aggregates' rules, with fake services and cqrs-es's
//! `TestFramework` (synchronous: it runs each command on its own current-thread runtime).

mod alerts;
mod cluster;
mod consumer;
mod consumer_rules;
mod identity;
mod stream;
mod stream_rules;
