//! The trace a commit belongs to (OpenTelemetry, W3C Trace Context).
//!
//! When the console exports traces (`--otlp-endpoint`), a commit records the id of the
//! trace it ran in as the events' `trace_id` metadata and sends a `traceparent` header on
//! each of its messages, naming the commit's span; whoever reads the event later (the
//! projector) continues that trace from the header. Without an exporter there is no
//! recorded span, and so neither.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The NATS header (and HTTP header) that carries the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// The event metadata key holding the trace id (32 lowercase hex digits).
pub const TRACE_ID: &str = "trace_id";

/// The OpenTelemetry context of the current span, when one is being recorded.
pub fn current() -> Option<SpanContext> {
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// `00-<trace id>-<span id>-<flags>`.
pub fn traceparent(sc: &SpanContext) -> String {
    format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8())
}

/// Parses a `traceparent` value; `None` for anything the W3C format does not allow.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let sc = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()? & 1),
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// Makes `span` a child of the remote span `parent` (a no-op when `span` is not recorded).
pub fn follow(span: &tracing::Span, parent: SpanContext) {
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
}

/// Makes `span` a child of the span a `traceparent` value names, if it names one.
pub fn follow_header(span: &tracing::Span, value: Option<&str>) {
    if let Some(parent) = value.and_then(parse_traceparent) {
        follow(span, parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_refuses_what_w3c_does_not_allow() {
        let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sc = parse_traceparent(v).expect("valid");
        assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(sc.is_sampled());
        assert_eq!(traceparent(&sc), v);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        // A later version may add fields after the flags.
        assert!(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x").is_some());
    }

    #[test]
    fn without_an_exporter_nothing_is_recorded() {
        assert!(current().is_none());
    }
}
