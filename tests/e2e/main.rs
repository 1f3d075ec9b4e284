//! End-to-end tests: one binary, one module per capability, each test against its own real
//! nats-server (and, for the API, its own console on port 0).

mod alerting;
mod alerts;
mod api;
mod audit;
mod clients;
mod clusters;
mod connections;
mod cost;
mod eventstore;
mod history;
mod home_cluster;
mod identity;
mod leases;
mod live;
mod messages;
mod monitoring;
mod mutations;
mod otel;
mod persisted;
mod projections;
mod readme;
mod relay;
mod replicas;
mod rollups;
mod streams;
mod strict;
mod ui;
