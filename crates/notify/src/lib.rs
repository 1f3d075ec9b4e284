//! Notification channels: what a group of alerts looks like on each (an email, a Slack
//! message, a signed webhook, PagerDuty events, Alertmanager alerts), sending it, and
//! telling a failure worth retrying (a 5xx, a 429, a time-out, a refused connection) from
//! one that is not (a 4xx: the request itself is wrong).
//!
//! Secrets arrive here in clear, from the application, for the time of one send; nothing
//! here logs them or puts them in an error.
#![forbid(unsafe_code)]

pub mod group;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// What happened to an alert, as a notification says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
    /// Someone acknowledged it (sent only where the receiver knows the word: PagerDuty,
    /// webhooks).
    Acknowledged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
            Self::Acknowledged => "acknowledged",
        }
    }
}

/// One alert in a notification.
#[derive(Debug, Clone, Serialize)]
pub struct AlertNote {
    pub id: String,
    pub status: Status,
    pub rule: String,
    pub severity: String,
    pub cluster: String,
    pub stream: Option<String>,
    pub consumer: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
}

impl AlertNote {
    pub fn summary(&self) -> String {
        self.annotations
            .get("summary")
            .cloned()
            .unwrap_or_else(|| format!("{} on {}", self.rule, self.cluster))
    }
}

/// What one send carries: the alerts of one group.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// The group's identity (route, channel and the values of its `group_by` labels).
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    pub alerts: Vec<AlertNote>,
    /// A test notification (`testChannel`), not a real alert.
    pub test: bool,
}

impl Message {
    pub fn firing(&self) -> usize {
        self.alerts.iter().filter(|a| a.status == Status::Firing).count()
    }

    /// `[FIRING:2] consumer lagging (prod)`, as Alertmanager titles its notifications.
    pub fn title(&self) -> String {
        let firing = self.firing();
        let state = if firing > 0 {
            format!("FIRING:{firing}")
        } else if self.alerts.iter().any(|a| a.status == Status::Acknowledged) {
            "ACKNOWLEDGED".to_string()
        } else {
            "RESOLVED".to_string()
        };
        let name = self
            .group_labels
            .get("alertname")
            .or_else(|| self.alerts.first().map(|a| &a.rule))
            .cloned()
            .unwrap_or_default();
        let rest: Vec<&str> = self
            .group_labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(_, v)| v.as_str())
            .collect();
        let test = if self.test { "[TEST] " } else { "" };
        if rest.is_empty() {
            format!("{test}[{state}] {name}")
        } else {
            format!("{test}[{state}] {name} ({})", rest.join(" "))
        }
    }

    /// The alerts as lines of text (for email and Slack).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for a in &self.alerts {
            out.push_str(&format!("[{}] {}\n", a.status.as_str().to_uppercase(), a.summary()));
            if let Some(d) = a.annotations.get("description") {
                out.push_str(&format!("  {d}\n"));
            }
            let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("  labels: {}\n", labels.join(", ")));
            if let Some(v) = a.value {
                out.push_str(&format!("  value: {v}"));
                if let Some(t) = a.threshold {
                    out.push_str(&format!(" (threshold {t})"));
                }
                out.push('\n');
            }
            out.push_str(&format!("  since: {}\n", a.starts_at.to_rfc3339()));
            if let Some(by) = &a.acknowledged_by {
                out.push_str(&format!("  acknowledged by {by}\n"));
            }
        }
        out
    }
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    Tls,
    None,
}

/// Where to send, secrets in clear (for the time of the send).
#[derive(Clone)]
pub enum Target {
    Email {
        host: String,
        port: u16,
        security: SmtpSecurity,
        username: Option<String>,
        password: Option<String>,
        from: String,
        to: Vec<String>,
    },
    Slack {
        url: String,
    },
    Webhook {
        url: String,
        secret: String,
    },
    PagerDuty {
        routing_key: String,
        events_url: String,
    },
    Alertmanager {
        url: String,
    },
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Email { .. } => "email",
            Self::Slack { .. } => "slack",
            Self::Webhook { .. } => "webhook",
            Self::PagerDuty { .. } => "pager_duty",
            Self::Alertmanager { .. } => "alertmanager",
        }
    }

    /// Whether the receiver is told of acknowledgements.
    pub fn takes_acknowledgements(&self) -> bool {
        matches!(self, Self::PagerDuty { .. } | Self::Webhook { .. })
    }
}

/// What a send that worked answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The HTTP status (none for email).
    pub status: Option<u16>,
    /// Requests made (PagerDuty takes one per alert).
    pub requests: u32,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// Worth trying again later: a 5xx or 429, a time-out, a refused connection.
    #[error("{message}")]
    Retryable { status: Option<u16>, message: String },
    /// Not worth trying again as it is: a 4xx (other than 429), a refused address.
    #[error("{message}")]
    Permanent { status: Option<u16>, message: String },
}

impl SendError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Retryable { status, .. } | Self::Permanent { status, .. } => *status,
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }
}

/// The wait before attempt `attempt` (1 for the first retry): `base` doubled each time, at
/// most `cap`, less up to half of it at random (`jitter` in 0..1), so receivers that come
/// back are not hit by every sender at once.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
    let d = exp.min(cap);
    d.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
}

/// The Standard Webhooks signature of a message: `v1,` and the base64 of HMAC-SHA256 over
/// `id.timestamp.body`, keyed with the secret's bytes (`whsec_` then base64). `None` for a
/// secret that is not of that form.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_")?)
        .ok()?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// PagerDuty's `dedup_key` is at most 255 characters; alert ids are 32.
fn dedup_key(id: &str) -> String {
    id.chars().take(255).collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Sends notifications. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    timeout: Duration,
}

impl Notifier {
    /// A notifier whose every send gives up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("jetstream-console/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client builds");
        Self { http, timeout }
    }

    /// Sends `message` to `target`.
    pub async fn send(&self, target: &Target, message: &Message) -> Result<Sent, SendError> {
        match target {
            Target::Slack { url } => {
                let body = json!({
                    "text": format!("*{}*\n{}", message.title(), message.text()),
                });
                self.post(url, &body, &[]).await
            }
            Target::Webhook { url, secret } => {
                let id = format!("msg_{}", uuid_like(&message.group_key, message));
                let ts = Utc::now().timestamp();
                let kind = if message.test {
                    "alert.test"
                } else if message.firing() > 0 {
                    "alert.firing"
                } else if message.alerts.iter().any(|a| a.status == Status::Acknowledged) {
                    "alert.acknowledged"
                } else {
                    "alert.resolved"
                };
                let body = json!({
                    "type": kind,
                    "timestamp": Utc::now().to_rfc3339(),
                    "data": {
                        "title": message.title(),
                        "groupKey": message.group_key,
                        "groupLabels": message.group_labels,
                        "alerts": message.alerts,
                    },
                });
                let bytes = serde_json::to_vec(&body).expect("a notification serializes");
                let signature = sign(secret, &id, ts, &bytes).ok_or_else(|| SendError::Permanent {
                    status: None,
                    message: "the channel's signing secret is not of the form whsec_<base64>; set it again".into(),
                })?;
                let headers = [
                    ("webhook-id", id),
                    ("webhook-timestamp", ts.to_string()),
                    ("webhook-signature", signature),
                ];
                self.post_bytes(url, bytes, &headers).await
            }
            Target::PagerDuty {
                routing_key,
                events_url,
            } => {
                let mut last = None;
                for a in &message.alerts {
                    let action = match a.status {
                        Status::Firing => "trigger",
                        Status::Resolved => "resolve",
                        Status::Acknowledged => "acknowledge",
                    };
                    let severity = match a.severity.as_str() {
                        "critical" => "critical",
                        "info" => "info",
                        _ => "warning",
                    };
                    let component = match (&a.stream, &a.consumer) {
                        (Some(s), Some(c)) => format!("{s}/{c}"),
                        (Some(s), None) => s.clone(),
                        _ => a.cluster.clone(),
                    };
                    let body = json!({
                        "routing_key": routing_key,
                        "event_action": action,
                        "dedup_key": dedup_key(&a.id),
                        "payload": {
                            "summary": truncate(&a.summary(), 1024),
                            "source": a.cluster,
                            "severity": severity,
                            "component": component,
                            "group": a.labels.get("alertname").cloned().unwrap_or_default(),
                            "class": a.rule,
                            "timestamp": a.starts_at.to_rfc3339(),
                            "custom_details": {
                                "labels": a.labels,
                                "annotations": a.annotations,
                                "value": a.value,
                                "threshold": a.threshold,
                                "test": message.test,
                            },
                        },
                        "client": "JetStream Console",
                    });
                    last = Some(self.post(events_url, &body, &[]).await?);
                }
                Ok(Sent {
                    status: last.and_then(|s| s.status),
                    requests: message.alerts.len() as u32,
                })
            }
            Target::Alertmanager { url } => {
                let alerts: Vec<Value> = message
                    .alerts
                    .iter()
                    .filter(|a| a.status != Status::Acknowledged)
                    .map(|a| {
                        let mut labels = a.labels.clone();
                        if message.test {
                            labels.insert("test".into(), "true".into());
                        }
                        let mut alert = json!({
                            "labels": labels,
                            "annotations": a.annotations,
                            "startsAt": a.starts_at.to_rfc3339(),
                        });
                        if let Some(end) = a.ends_at {
                            alert["endsAt"] = json!(end.to_rfc3339());
                        }
                        alert
                    })
                    .collect();
                if alerts.is_empty() {
                    return Ok(Sent {
                        status: None,
                        requests: 0,
                    });
                }
                let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
                self.post(&endpoint, &Value::Array(alerts), &[]).await
            }
            Target::Email {
                host,
                port,
                security,
                username,
                password,
                from,
                to,
            } => {
                self.email(
                    host,
                    *port,
                    *security,
                    username.as_deref(),
                    password.as_deref(),
                    from,
                    to,
                    message,
                )
                .await
            }
        }
    }

    async fn post(&self, url: &str, body: &Value, headers: &[(&str, String)]) -> Result<Sent, SendError> {
        let bytes = serde_json::to_vec(body).expect("a notification serializes");
        self.post_bytes(url, bytes, headers).await
    }

    async fn post_bytes(&self, url: &str, body: Vec<u8>, headers: &[(&str, String)]) -> Result<Sent, SendError> {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        // The URL may hold the credential: errors name the host only.
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "the receiver".into());
        let answer = req.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                format!("{host} did not answer within {:?}", self.timeout)
            } else if e.is_connect() {
                format!("could not connect to {host} (refused or unreachable)")
            } else {
                format!("the request to {host} failed")
            };
            SendError::Retryable {
                status: None,
                message: why,
            }
        })?;
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            return Ok(Sent {
                status: Some(status),
                requests: 1,
            });
        }
        let text: String = answer.text().await.unwrap_or_default().chars().take(300).collect();
        let message = format!("{host} answered {status}: {}", scrub(text.trim(), url));
        if status == 429 || status >= 500 {
            Err(SendError::Retryable {
                status: Some(status),
                message,
            })
        } else {
            Err(SendError::Permanent {
                status: Some(status),
                message,
            })
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn email(
        &self,
        host: &str,
        port: u16,
        security: SmtpSecurity,
        username: Option<&str>,
        password: Option<&str>,
        from: &str,
        to: &[String],
        message: &Message,
    ) -> Result<Sent, SendError> {
        use lettre::message::{Mailbox, header::ContentType};
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::transport::smtp::client::{Tls, TlsParameters};
        use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
        let permanent = |m: String| SendError::Permanent {
            status: None,
            message: m,
        };
        let from: Mailbox = format!("JetStream Console <{from}>")
            .parse()
            .map_err(|e| permanent(format!("the sender address does not parse: {e}")))?;
        let mut builder = lettre::Message::builder()
            .from(from)
            .subject(message.title())
            .header(ContentType::TEXT_PLAIN);
        for t in to {
            let mailbox: Mailbox = t
                .parse()
                .map_err(|e| permanent(format!("the recipient {t} does not parse: {e}")))?;
            builder = builder.to(mailbox);
        }
        let email = builder
            .body(message.text())
            .map_err(|e| permanent(format!("the email could not be built: {e}")))?;
        let tls =
            || TlsParameters::new(host.to_string()).map_err(|e| permanent(format!("TLS settings for {host}: {e}")));
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(self.timeout));
        transport = match security {
            SmtpSecurity::StartTls => transport.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => transport.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::None => transport.tls(Tls::None),
        };
        if let (Some(u), Some(p)) = (username, password) {
            transport = transport.credentials(Credentials::new(u.to_string(), p.to_string()));
        }
        let answer = transport.build().send(email).await.map_err(|e| {
            let message = if e.is_permanent() {
                return permanent(format!(
                    "{host}:{port} refused the email: {}",
                    e.status().map_or_else(String::new, |s| s.to_string())
                ));
            } else {
                format!("{host}:{port}: the email could not be sent ({})", short(&e))
            };
            SendError::Retryable { status: None, message }
        })?;
        Ok(Sent {
            status: Some(u16::from(answer.code())),
            requests: 1,
        })
    }
}

/// A receiver's answer as it may be kept and shown: the URL's path and query (which often
/// are the credential, as in a Slack webhook) taken out wherever the answer echoes them.
fn scrub(text: &str, url: &str) -> String {
    let mut out = text.to_string();
    if let Ok(u) = reqwest::Url::parse(url) {
        let mut secret_parts = vec![u.path().to_string()];
        if let Some(q) = u.query() {
            secret_parts.push(q.to_string());
        }
        for part in secret_parts.into_iter().filter(|p| p.len() > 1) {
            out = out.replace(&part, "<redacted>");
        }
    }
    out
}

/// An SMTP error's kind, without anything the server echoed back.
fn short(e: &lettre::transport::smtp::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_transient() {
        "the server said to try later"
    } else if e.is_tls() {
        "TLS failed"
    } else {
        "connection failed"
    }
}

/// A message id: the group and the alerts' states, hashed, so a retry of the same
/// notification carries the same `webhook-id` (receivers drop duplicates by it).
fn uuid_like(group: &str, message: &Message) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(group.as_bytes());
    for a in &message.alerts {
        h.update(a.id.as_bytes());
        h.update(a.status.as_str().as_bytes());
        h.update(a.starts_at.timestamp_millis().to_le_bytes());
        if let Some(e) = a.ends_at {
            h.update(e.timestamp_millis().to_le_bytes());
        }
    }
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig.as_deref(), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
        assert_eq!(sign("nope", "i", 1, b""), None);
    }

    #[test]
    fn answers_keep_no_secret_the_url_holds() {
        let url = "https://hooks.slack.com/services/T0/B0/secretpath?token=abc";
        let said = scrub("Cannot POST /services/T0/B0/secretpath (token=abc)", url);
        assert!(!said.contains("secretpath") && !said.contains("token=abc"), "{said}");
        assert_eq!(scrub("no_service", url), "no_service");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_less_jitter() {
        let b = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(1, b, cap, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(2, b, cap, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(4, b, cap, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(30, b, cap, 0.0), cap);
        assert_eq!(backoff(4, b, cap, 1.0), Duration::from_secs(4));
    }
}
