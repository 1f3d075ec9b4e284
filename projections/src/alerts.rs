//! The alerting views: rules, notification channels, routing policies, silences and
//! alerts, each the aggregate's own state folded with its `apply` (see [`crate::identity`]).
//! Deleted rules and channels leave their views; silences and alerts stay (their history
//! is what people look for).

use jsc_domain::alerts::{Alert, AlertPolicy, AlertRule, NotificationChannel, Silence};

use crate::identity::{StateProjection, StateView};

pub type AlertRuleView = StateView<AlertRule>;
pub type ChannelView = StateView<NotificationChannel>;
pub type AlertPolicyView = StateView<AlertPolicy>;
pub type SilenceView = StateView<Silence>;
pub type AlertView = StateView<Alert>;

pub const ALERT_RULES: StateProjection<AlertRule> = StateProjection::new("alert_rules", |r| !r.deleted);
pub const CHANNELS: StateProjection<NotificationChannel> =
    StateProjection::new("notification_channels", |c| !c.deleted);
pub const ALERT_POLICIES: StateProjection<AlertPolicy> = StateProjection::new("alert_policies", |_| true);
pub const SILENCES: StateProjection<Silence> = StateProjection::new("silences", |_| true);
pub const ALERTS: StateProjection<Alert> = StateProjection::new("alerts", |_| true);
