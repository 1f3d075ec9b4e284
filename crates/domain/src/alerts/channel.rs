//! Notification channels: where an organization's alerts are sent. Email over SMTP, a Slack
//! incoming webhook, a generic webhook signed per Standard Webhooks, PagerDuty Events v2, or
//! an existing Alertmanager. Secrets are sealed before they reach the aggregate and are
//! never shown again: people see a hint (the URL's host, the last characters of a key).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{AlertError, check_name, invalid};
use crate::Sealed;

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, refused if the server does not offer it
    /// (port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS at all: only for a relay on the same host or network.
    None,
}

/// A channel's settings, secrets sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelConfig {
    Email {
        host: String,
        port: u16,
        tls: SmtpTls,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<Sealed>,
        from: String,
        to: Vec<String>,
    },
    Slack {
        /// The incoming webhook's URL (it is the credential).
        webhook_url: Sealed,
    },
    Webhook {
        webhook_url: Sealed,
        /// The Standard Webhooks signing secret (`whsec_` and base64 of 24 to 64 bytes).
        signing_secret: Sealed,
    },
    PagerDuty {
        routing_key: Sealed,
        /// The Events v2 endpoint; PagerDuty's own by default.
        events_url: String,
    },
    Alertmanager {
        /// The Alertmanager's base URL (`http://alertmanager:9093`); alerts go to
        /// `<url>/api/v2/alerts`.
        url: String,
    },
}

/// PagerDuty's Events v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

impl ChannelConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Email { .. } => "email",
            Self::Slack { .. } => "slack",
            Self::Webhook { .. } => "webhook",
            Self::PagerDuty { .. } => "pager_duty",
            Self::Alertmanager { .. } => "alertmanager",
        }
    }

    /// The sealed secrets in the config, for the aggregate to keep ([`Sealed::keep`]).
    fn secrets_mut(&mut self) -> Vec<&mut Sealed> {
        match self {
            Self::Email { password, .. } => password.iter_mut().collect(),
            Self::Slack { webhook_url } => vec![webhook_url],
            Self::Webhook {
                webhook_url,
                signing_secret,
            } => vec![webhook_url, signing_secret],
            Self::PagerDuty { routing_key, .. } => vec![routing_key],
            Self::Alertmanager { .. } => vec![],
        }
    }

    fn check(&self) -> Result<(), AlertError> {
        match self {
            Self::Email {
                host, port, from, to, ..
            } => {
                if host.trim().is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
                    return Err(invalid("email.host", "give the SMTP server's host name or address"));
                }
                if *port == 0 {
                    return Err(invalid(
                        "email.port",
                        "give the SMTP port (587 for STARTTLS, 465 for TLS)",
                    ));
                }
                check_address("email.from", from)?;
                if to.is_empty() || to.len() > 50 {
                    return Err(invalid("email.to", "give 1 to 50 addresses"));
                }
                for (i, a) in to.iter().enumerate() {
                    check_address(&format!("email.to[{i}]"), a)?;
                }
                Ok(())
            }
            Self::PagerDuty { events_url, .. } => check_url("pagerDuty.eventsUrl", events_url).map(drop),
            Self::Alertmanager { url } => check_url("alertmanager.url", url).map(drop),
            Self::Slack { .. } | Self::Webhook { .. } => Ok(()),
        }
    }
}

/// An email address: something, `@`, a domain; no spaces, no angle brackets (the display
/// name is the console's).
pub fn check_address(field: &str, a: &str) -> Result<(), AlertError> {
    let ok = a.len() <= 254
        && a.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.starts_with('.') && !d.ends_with('.'))
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("'{a}' is not an email address (name@example.com)"),
        ))
    }
}

/// An http(s) URL with a host, checked before it is sealed; answers what may be shown of it
/// (scheme and host, never the path, which often is the credential).
pub fn check_url(field: &str, raw: &str) -> Result<String, AlertError> {
    let u = url::Url::parse(raw.trim()).map_err(|e| {
        invalid(
            field,
            format!("not a URL ({e}); give one such as https://example.com/hook"),
        )
    })?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(invalid(field, "use an http:// or https:// URL"));
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid(field, "the URL has no host"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid(field, "put no user or password in the URL"));
    }
    Ok(match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    })
}

/// A Standard Webhooks signing secret: `whsec_` then base64 of 24 to 64 random bytes.
pub fn check_webhook_secret(field: &str, secret: &str) -> Result<(), AlertError> {
    use base64::Engine;
    let bytes = secret
        .strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    match bytes {
        Some(b) if (24..=64).contains(&b.len()) => Ok(()),
        _ => Err(invalid(
            field,
            "give a secret of the form whsec_<base64 of 24 to 64 bytes>, or leave it out to have one made",
        )),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSpec {
    pub name: String,
    pub config: ChannelConfig,
    /// What may be shown of the secret parts (`https://hooks.slack.com`, `…a1b2`).
    #[serde(default)]
    pub hint: String,
    /// Whether resolved alerts are sent too.
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NotificationChannel {
    pub id: String,
    pub organization: String,
    pub spec: Option<ChannelSpec>,
    pub deleted: bool,
}

impl NotificationChannel {
    pub fn exists(&self) -> bool {
        self.spec.is_some() && !self.deleted
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelCommand {
    Create {
        id: String,
        organization: String,
        spec: ChannelSpec,
    },
    /// Replaces the channel; a secret given as [`Sealed::keep`] keeps the stored one (of
    /// the same kind of channel).
    Update {
        spec: ChannelSpec,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelEvent {
    Created {
        id: String,
        organization: String,
        spec: ChannelSpec,
    },
    Updated {
        spec: ChannelSpec,
    },
    Deleted,
}

impl DomainEvent for ChannelEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "NotificationChannelCreated",
            Self::Updated { .. } => "NotificationChannelUpdated",
            Self::Deleted => "NotificationChannelDeleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Aggregate for NotificationChannel {
    const TYPE: &'static str = "notification_channel";
    type Command = ChannelCommand;
    type Event = ChannelEvent;
    type Error = AlertError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        let event = match command {
            ChannelCommand::Create { id, organization, spec } => {
                if self.spec.is_some() {
                    return Err(AlertError::Conflict("the channel already exists".into()));
                }
                let mut spec = spec;
                if spec.config.secrets_mut().iter().any(|s| s.is_keep()) {
                    return Err(invalid(spec.config.kind(), "a new channel needs its secrets"));
                }
                spec.name = check_name("name", &spec.name)?;
                spec.config.check()?;
                ChannelEvent::Created { id, organization, spec }
            }
            ChannelCommand::Update { mut spec } => {
                let current = self.spec.as_ref().filter(|_| !self.deleted);
                let current = current.ok_or(AlertError::NotFound("notification channel"))?;
                spec.name = check_name("name", &spec.name)?;
                spec.config.check()?;
                let mut stored = current.config.clone();
                let same_kind = stored.kind() == spec.config.kind();
                let kind = spec.config.kind();
                let mut kept_hint = false;
                for (i, s) in spec.config.secrets_mut().into_iter().enumerate() {
                    if s.is_keep() {
                        let old = same_kind.then(|| stored.secrets_mut().into_iter().nth(i)).flatten();
                        *s = old
                            .ok_or_else(|| invalid(kind, "the channel has no such secret yet; give it"))?
                            .clone();
                        kept_hint = true;
                    }
                }
                if kept_hint && spec.hint.is_empty() {
                    spec.hint = current.hint.clone();
                }
                if &spec == current {
                    return Ok(());
                }
                ChannelEvent::Updated { spec }
            }
            ChannelCommand::Delete => {
                if !self.exists() {
                    return Err(AlertError::NotFound("notification channel"));
                }
                ChannelEvent::Deleted
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ChannelEvent::Created { id, organization, spec } => {
                self.id = id;
                self.organization = organization;
                self.spec = Some(spec);
            }
            ChannelEvent::Updated { spec } => self.spec = Some(spec),
            ChannelEvent::Deleted => self.deleted = true,
        }
    }
}
