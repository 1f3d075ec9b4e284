//! Given/when/then tests of the consumer aggregate (moved from `consumer.rs`).

use crate::consumer::*;

#[test]
fn deliver_policies_need_their_options() {
    let mut c = ConsumerConfig::durable("c1");
    c.deliver_policy = DeliverPolicy::ByStartSequence;
    assert!(c.validate().unwrap_err().to_string().starts_with("optStartSeq"));
    c.opt_start_seq = Some(10);
    assert!(c.validate().is_ok());
    c.deliver_policy = DeliverPolicy::All;
    assert!(c.validate().is_err());
}

#[test]
fn push_only_options_need_a_deliver_subject() {
    let mut c = ConsumerConfig::durable("c1");
    c.flow_control = true;
    assert!(c.validate().unwrap_err().to_string().contains("push consumers"));
    c.deliver_subject = Some("deliver.c1".into());
    c.idle_heartbeat = 5_000_000_000;
    assert!(c.validate().is_ok());
}

#[test]
fn backoff_needs_enough_deliveries() {
    let mut c = ConsumerConfig::durable("c1");
    c.backoff = vec![1_000_000_000, 2_000_000_000];
    c.max_deliver = 2;
    assert!(c.validate().unwrap_err().to_string().starts_with("maxDeliver"));
    c.max_deliver = 3;
    assert!(c.validate().is_ok());
}

#[test]
fn ack_policy_is_fixed() {
    let current = ConsumerConfig::durable("c1");
    let mut next = current.clone();
    next.ack_policy = AckPolicy::None;
    assert!(
        next.check_update_from(&current)
            .unwrap_err()
            .to_string()
            .starts_with("ackPolicy")
    );
    next.ack_policy = AckPolicy::Explicit;
    next.description = Some("x".into());
    assert!(next.check_update_from(&current).is_ok());
}
