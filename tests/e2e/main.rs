//! End-to-end tests: one binary, one module per capability, each test against its own real
//! nats-server.

mod eventstore;
