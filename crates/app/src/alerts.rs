//! Alerting use cases: rules, notification channels, the routing policy and silences of an
//! organization, and its alerts. Viewers see them all (secrets never: a channel shows a
//! hint); operators acknowledge alerts and make silences; admins manage rules, channels and
//! the policy.

use chrono::Utc;
use jsc_domain::alerts::{
    AlertCommand, AlertPolicy, AlertPolicyCommand, AlertRule, AlertRuleCommand, AlertStatus, ChannelCommand,
    ChannelConfig, ChannelSpec, Matcher, NotificationChannel, PAGERDUTY_EVENTS_URL, PolicySpec, RuleSpec, Severity,
    Silence, SilenceCommand, SilenceSpec, SmtpTls, all_match, check_url, check_webhook_secret,
};
use jsc_domain::identity::Role;
use jsc_domain::{Sealed, alerts};
use jsc_projections::alerts::{AlertPolicyView, AlertRuleView, AlertView, ChannelView, SilenceView};
use jsc_projections::identity::StateView;

use crate::identity::get;
use crate::paging::{List, MAX_PAGE, Page, Paging, by_name, newest_first};
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, Result};

/// A channel's settings as given, secrets in clear. On update a secret left out keeps the
/// stored one.
pub enum ChannelSettings {
    Email {
        host: String,
        port: u16,
        tls: SmtpTls,
        username: Option<String>,
        password: Option<String>,
        from: String,
        to: Vec<String>,
    },
    Slack {
        webhook_url: Option<String>,
    },
    Webhook {
        url: Option<String>,
        /// Left out on create: one is made and answered once.
        signing_secret: Option<String>,
    },
    PagerDuty {
        routing_key: Option<String>,
        events_url: Option<String>,
    },
    Alertmanager {
        url: String,
    },
}

pub struct ChannelInput {
    pub name: String,
    pub send_resolved: bool,
    pub settings: ChannelSettings,
}

/// Which alerts to list.
#[derive(Default)]
pub struct AlertFilter {
    pub status: Option<Vec<AlertStatus>>,
    pub severity: Option<Severity>,
    /// Labels every alert listed has, Alertmanager's matchers.
    pub matchers: Vec<Matcher>,
    pub rule_id: Option<String>,
}

/// The last characters of a secret, for people to tell keys apart.
fn tail_hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// What the alerting views hold in common: an organization, an id, a name to sort by,
/// and whether the item is still there.
trait OrgItem {
    fn org(&self) -> Option<&str>;
    fn id(&self) -> &str;
    fn name(&self) -> &str {
        ""
    }
    fn live(&self) -> bool {
        true
    }
}

impl OrgItem for AlertRule {
    fn org(&self) -> Option<&str> {
        Some(&self.organization)
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        self.spec.as_ref().map_or("", |s| &s.name)
    }
    fn live(&self) -> bool {
        self.exists()
    }
}

impl OrgItem for NotificationChannel {
    fn org(&self) -> Option<&str> {
        Some(&self.organization)
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        self.spec.as_ref().map_or("", |s| &s.name)
    }
    fn live(&self) -> bool {
        self.exists()
    }
}

impl OrgItem for Silence {
    fn org(&self) -> Option<&str> {
        Some(&self.organization)
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl OrgItem for alerts::Alert {
    fn org(&self) -> Option<&str> {
        self.organization()
    }
    fn id(&self) -> &str {
        &self.id
    }
}

type View<T> = jsc_projector::ViewCache<jsc_projections::identity::StateView<T>>;

impl Console {
    /// One item of a view, if it is there and the caller belongs to its organization;
    /// `NOT_FOUND` alike for what does not exist and what is another organization's.
    fn visible<T>(&self, caller: &Caller, view: &View<T>, id: &str, what: &str) -> Result<StateView<T>>
    where
        T: OrgItem + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        get(view, id)
            .map(|v| v.view)
            .filter(|v| {
                v.state.live()
                    && v.state
                        .org()
                        .is_some_and(|o| self.org_role(&caller.principal, o).is_some())
            })
            .ok_or_else(|| Error::not_found(format!("no {what} with id '{id}'")))
    }

    /// A page of an organization's items, by name (viewer).
    fn by_name_page<T>(
        &self,
        caller: &Caller,
        org: &str,
        view: &View<T>,
        list: &'static str,
        paging: &Paging,
    ) -> Result<Page<StateView<T>>>
    where
        T: OrgItem + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.require_org(&caller.principal, org, Role::Viewer)?;
        let all = view.filter(|v| v.state.org() == Some(org) && v.state.live());
        let page = self.page(
            List::new(list, org),
            all,
            |v| by_name(v.view.state.name(), v.view.state.id()),
            paging,
            MAX_PAGE,
        )?;
        Ok(page.map(|v| v.view))
    }

    fn new_alerting_id() -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }

    // ---- rules ------------------------------------------------------------------------

    /// An organization's alert rules, by name.
    pub fn alert_rules(&self, caller: &Caller, org: &str, paging: &Paging) -> Result<Page<AlertRuleView>> {
        self.by_name_page(caller, org, &self.views.alert_rules, "alert_rules", paging)
    }

    /// One rule, if the caller may see it.
    pub fn alert_rule(&self, caller: &Caller, id: &str) -> Result<AlertRuleView> {
        self.visible(caller, &self.views.alert_rules, id, "alert rule")
    }

    /// Every enabled rule of every organization (for the evaluator).
    pub fn enabled_alert_rules(&self) -> Vec<AlertRuleView> {
        self.views
            .alert_rules
            .filter(|r| r.state.exists() && r.state.spec.as_ref().is_some_and(|s| s.enabled))
            .into_iter()
            .map(|v| v.view)
            .collect()
    }

    pub async fn create_alert_rule(&self, caller: &Caller, org: &str, spec: RuleSpec) -> Result<AlertRuleView> {
        let id = Self::new_alerting_id();
        let cmd = AlertRuleCommand::Create {
            id: id.clone(),
            organization: org.to_string(),
            spec,
        };
        self.run::<AlertRule>(Actor::Caller(caller), Access::Organization(org, Role::Admin), &id, cmd)
            .await?;
        Ok(get(&self.views.alert_rules, &id).expect("awaited").view)
    }

    /// Replaces a rule (`spec`), or turns it on or off (`enabled`).
    pub async fn update_alert_rule(
        &self,
        caller: &Caller,
        id: &str,
        spec: Option<RuleSpec>,
        enabled: Option<bool>,
    ) -> Result<AlertRuleView> {
        let org = self.alert_rule(caller, id)?.state.organization;
        let access = Access::Organization(&org, Role::Admin);
        if spec.is_none() && enabled.is_none() {
            return Err(Error::validation("give the rule's new `spec`, `enabled`, or both"));
        }
        if let Some(spec) = spec {
            self.run::<AlertRule>(Actor::Caller(caller), access, id, AlertRuleCommand::Update { spec })
                .await?;
        }
        if let Some(enabled) = enabled {
            self.run::<AlertRule>(
                Actor::Caller(caller),
                access,
                id,
                AlertRuleCommand::SetEnabled { enabled },
            )
            .await?;
        }
        Ok(get(&self.views.alert_rules, id).expect("awaited").view)
    }

    pub async fn delete_alert_rule(&self, caller: &Caller, id: &str) -> Result<AlertRuleView> {
        let rule = self.alert_rule(caller, id)?;
        let org = rule.state.organization.clone();
        self.run::<AlertRule>(
            Actor::Caller(caller),
            Access::Organization(&org, Role::Admin),
            id,
            AlertRuleCommand::Delete,
        )
        .await?;
        Ok(rule)
    }

    // ---- channels -----------------------------------------------------------------------

    /// An organization's notification channels, by name.
    pub fn channels(&self, caller: &Caller, org: &str, paging: &Paging) -> Result<Page<ChannelView>> {
        self.by_name_page(caller, org, &self.views.channels, "channels", paging)
    }

    pub fn channel(&self, caller: &Caller, id: &str) -> Result<ChannelView> {
        self.visible(caller, &self.views.channels, id, "notification channel")
    }

    /// Seals what `input` gives; a secret left out is kept (`Sealed::keep`) or, for a new
    /// channel, refused, except a webhook's signing secret, which is made and answered.
    fn channel_spec(&self, input: ChannelInput, new: bool) -> Result<(ChannelSpec, Option<String>)> {
        let seal = |s: &str| self.fleet.secrets().seal(s);
        let required = |field: &str, v: Option<String>| -> Result<Sealed> {
            match v.filter(|v| !v.trim().is_empty()) {
                Some(v) => Ok(seal(v.trim())),
                None if new => Err(Error::validation(format!("{field}: required for a new channel"))),
                None => Ok(Sealed::keep()),
            }
        };
        let url_hint = |field: &str, v: &Option<String>| -> Result<String> {
            match v {
                Some(u) => check_url(field, u).map_err(|e| Error::validation(e.to_string())),
                None => Ok(String::new()),
            }
        };
        let mut made = None;
        let (config, hint) = match input.settings {
            ChannelSettings::Email {
                host,
                port,
                tls,
                username,
                password,
                from,
                to,
            } => {
                let username = username.filter(|u| !u.trim().is_empty());
                let password = match (&username, password) {
                    (None, Some(_)) => {
                        return Err(Error::validation("email.password: give the username it belongs to"));
                    }
                    (None, None) => None,
                    (Some(_), p) => Some(required("email.password", p)?),
                };
                let hint = format!("{}:{port}", host.trim());
                let config = ChannelConfig::Email {
                    host: host.trim().to_string(),
                    port,
                    tls,
                    username,
                    password,
                    from: from.trim().to_string(),
                    to: to.into_iter().map(|a| a.trim().to_string()).collect(),
                };
                (config, hint)
            }
            ChannelSettings::Slack { webhook_url } => {
                let hint = url_hint("slack.webhookUrl", &webhook_url)?;
                let webhook_url = required("slack.webhookUrl", webhook_url)?;
                (ChannelConfig::Slack { webhook_url }, hint)
            }
            ChannelSettings::Webhook { url, signing_secret } => {
                let hint = url_hint("webhook.url", &url)?;
                let webhook_url = required("webhook.url", url)?;
                let signing_secret = match signing_secret {
                    Some(s) => {
                        check_webhook_secret("webhook.signingSecret", s.trim())
                            .map_err(|e| Error::validation(e.to_string()))?;
                        seal(s.trim())
                    }
                    None if new => {
                        use base64::Engine;
                        let secret = format!(
                            "whsec_{}",
                            base64::engine::general_purpose::STANDARD.encode(jsc_secrets::random_bytes::<32>())
                        );
                        let sealed = seal(&secret);
                        made = Some(secret);
                        sealed
                    }
                    None => Sealed::keep(),
                };
                let config = ChannelConfig::Webhook {
                    webhook_url,
                    signing_secret,
                };
                (config, hint)
            }
            ChannelSettings::PagerDuty {
                routing_key,
                events_url,
            } => {
                let hint = routing_key.as_deref().map(tail_hint).unwrap_or_default();
                let routing_key = required("pagerDuty.routingKey", routing_key)?;
                let events_url = events_url.unwrap_or_else(|| PAGERDUTY_EVENTS_URL.to_string());
                (
                    ChannelConfig::PagerDuty {
                        routing_key,
                        events_url,
                    },
                    hint,
                )
            }
            ChannelSettings::Alertmanager { url } => {
                let url = url.trim().trim_end_matches('/').to_string();
                (ChannelConfig::Alertmanager { url: url.clone() }, url)
            }
        };
        let spec = ChannelSpec {
            name: input.name,
            config,
            hint,
            send_resolved: input.send_resolved,
        };
        Ok((spec, made))
    }

    /// Creates a channel; answers it and, for a webhook made without a signing secret, the
    /// secret that was made (shown this once).
    pub async fn create_channel(
        &self,
        caller: &Caller,
        org: &str,
        input: ChannelInput,
    ) -> Result<(ChannelView, Option<String>)> {
        let ctx = self.authorize(Actor::Caller(caller), Access::Organization(org, Role::Admin))?;
        let (spec, made) = self.channel_spec(input, true)?;
        let id = Self::new_alerting_id();
        let cmd = ChannelCommand::Create {
            id: id.clone(),
            organization: org.to_string(),
            spec,
        };
        self.run_in::<NotificationChannel>(&ctx, &id, cmd).await?;
        Ok((get(&self.views.channels, &id).expect("awaited").view, made))
    }

    pub async fn update_channel(&self, caller: &Caller, id: &str, input: ChannelInput) -> Result<ChannelView> {
        let org = self.channel(caller, id)?.state.organization;
        let ctx = self.authorize(Actor::Caller(caller), Access::Organization(&org, Role::Admin))?;
        let (spec, _) = self.channel_spec(input, false)?;
        self.run_in::<NotificationChannel>(&ctx, id, ChannelCommand::Update { spec })
            .await?;
        Ok(get(&self.views.channels, id).expect("awaited").view)
    }

    /// Deletes a channel that the routing policy no longer names.
    pub async fn delete_channel(&self, caller: &Caller, id: &str) -> Result<ChannelView> {
        let channel = self.channel(caller, id)?;
        let org = channel.state.organization.clone();
        let ctx = self.authorize(Actor::Caller(caller), Access::Organization(&org, Role::Admin))?;
        if self.alert_policy_spec(&org).uses_channel(id) {
            return Err(Error::new(
                crate::Code::Conflict,
                "the routing policy sends alerts to this channel; take it out of the policy first",
            ));
        }
        self.run_in::<NotificationChannel>(&ctx, id, ChannelCommand::Delete)
            .await?;
        Ok(channel)
    }

    /// A channel's settings with its secrets, for sending (never for a caller).
    pub fn channel_for_delivery(&self, id: &str) -> Option<ChannelSpec> {
        get(&self.views.channels, id).and_then(|v| v.view.state.spec.filter(|_| !v.view.state.deleted))
    }

    // ---- policy -------------------------------------------------------------------------

    /// The routing policy in force for `org` (the defaults until one is set).
    pub fn alert_policy_spec(&self, org: &str) -> PolicySpec {
        get(&self.views.alert_policies, org).map_or_else(PolicySpec::default, |v| v.view.state.current())
    }

    pub fn alert_policy(&self, caller: &Caller, org: &str) -> Result<(PolicySpec, Option<AlertPolicyView>)> {
        self.require_org(&caller.principal, org, Role::Viewer)?;
        let view = get(&self.views.alert_policies, org).map(|v| v.view);
        Ok((self.alert_policy_spec(org), view))
    }

    pub async fn set_alert_policy(&self, caller: &Caller, org: &str, spec: PolicySpec) -> Result<PolicySpec> {
        let ctx = self.authorize(Actor::Caller(caller), Access::Organization(org, Role::Admin))?;
        let spec = spec
            .checked(|id| {
                get(&self.views.channels, id).is_some_and(|c| c.view.state.exists() && c.view.state.organization == org)
            })
            .map_err(|e| Error::validation(e.to_string()))?;
        let cmd = AlertPolicyCommand::Set {
            organization: org.to_string(),
            spec,
        };
        self.run_in::<AlertPolicy>(&ctx, org, cmd).await?;
        Ok(self.alert_policy_spec(org))
    }

    // ---- silences -----------------------------------------------------------------------

    /// An organization's silences, newest first; `active` keeps those in force now.
    pub fn silences(&self, caller: &Caller, org: &str, active: bool, paging: &Paging) -> Result<Page<SilenceView>> {
        self.require_org(&caller.principal, org, Role::Viewer)?;
        let now = Utc::now();
        let all = self
            .views
            .silences
            .filter(|s| s.state.organization == org && (!active || s.state.active_at(now)));
        let page = self.page(
            List::new("silences", org),
            all,
            |v| newest_first(v.view.created_at, &v.view.state.id),
            paging,
            MAX_PAGE,
        )?;
        Ok(page.map(|v| v.view))
    }

    fn silence(&self, caller: &Caller, id: &str) -> Result<SilenceView> {
        self.visible(caller, &self.views.silences, id, "silence")
    }

    /// The silences of `org` in force now that match `labels`.
    pub fn silences_matching(&self, org: &str, labels: &std::collections::BTreeMap<String, String>) -> Vec<String> {
        let now = Utc::now();
        self.views
            .silences
            .filter(|s| {
                s.state.organization == org
                    && s.state.active_at(now)
                    && s.state.spec.as_ref().is_some_and(|sp| all_match(&sp.matchers, labels))
            })
            .into_iter()
            .map(|v| v.view.state.id)
            .collect()
    }

    pub async fn create_silence(&self, caller: &Caller, org: &str, spec: SilenceSpec) -> Result<SilenceView> {
        let ctx = self.authorize(Actor::Caller(caller), Access::Organization(org, Role::Operator))?;
        let id = Self::new_alerting_id();
        let cmd = SilenceCommand::Create {
            id: id.clone(),
            organization: org.to_string(),
            created_by: caller.principal.actor.clone(),
            spec,
            now: Utc::now(),
        };
        self.run_in::<Silence>(&ctx, &id, cmd).await?;
        Ok(get(&self.views.silences, &id).expect("awaited").view)
    }

    pub async fn update_silence(&self, caller: &Caller, id: &str, spec: SilenceSpec) -> Result<SilenceView> {
        let org = self.silence(caller, id)?.state.organization;
        let ctx = self.authorize(Actor::Caller(caller), Access::Organization(&org, Role::Operator))?;
        self.run_in::<Silence>(&ctx, id, SilenceCommand::Update { spec, now: Utc::now() })
            .await?;
        Ok(get(&self.views.silences, id).expect("awaited").view)
    }

    pub async fn expire_silence(&self, caller: &Caller, id: &str) -> Result<SilenceView> {
        let org = self.silence(caller, id)?.state.organization;
        let ctx = self.authorize(Actor::Caller(caller), Access::Organization(&org, Role::Operator))?;
        self.run_in::<Silence>(&ctx, id, SilenceCommand::Expire { now: Utc::now() })
            .await?;
        Ok(get(&self.views.silences, id).expect("awaited").view)
    }

    // ---- alerts -------------------------------------------------------------------------

    /// An organization's alerts (by default those pending or firing), most recent change
    /// first.
    pub fn alerts(&self, caller: &Caller, org: &str, filter: &AlertFilter, paging: &Paging) -> Result<Page<AlertView>> {
        self.require_org(&caller.principal, org, Role::Viewer)?;
        alerts::check_matchers("labels", &filter.matchers).map_err(|e| Error::validation(e.to_string()))?;
        let statuses = filter
            .status
            .clone()
            .unwrap_or_else(|| vec![AlertStatus::Pending, AlertStatus::Firing]);
        let all = self.views.alerts.filter(|a| {
            let Some(o) = &a.state.origin else { return false };
            o.organization == org
                && statuses.contains(&a.state.status)
                && filter.severity.is_none_or(|s| o.severity == s)
                && filter.rule_id.as_ref().is_none_or(|r| &o.rule_id == r)
                && all_match(&filter.matchers, &o.labels)
        });
        let page = self.page(
            List::new("alerts", org),
            all,
            |v| newest_first(v.view.updated_at, &v.view.state.id),
            paging,
            MAX_PAGE,
        )?;
        Ok(page.map(|v| v.view))
    }

    pub fn alert(&self, caller: &Caller, id: &str) -> Result<AlertView> {
        self.visible(caller, &self.views.alerts, id, "alert")
    }

    /// Acknowledges a firing alert (operator): someone is on it. PagerDuty hears of it.
    pub async fn acknowledge_alert(&self, caller: &Caller, id: &str, comment: String) -> Result<AlertView> {
        let alert = self.alert(caller, id)?;
        let org = alert.state.organization().unwrap_or_default().to_string();
        let ctx = self.authorize(Actor::Caller(caller), Access::Organization(&org, Role::Operator))?;
        let cmd = AlertCommand::Acknowledge {
            by: caller.principal.actor.clone(),
            comment,
            at: Utc::now(),
        };
        let committed = self.run_in::<alerts::Alert>(&ctx, id, cmd).await?;
        if !committed.events.is_empty() {
            self.notify_acknowledged(&committed.state).await;
        }
        Ok(get(&self.views.alerts, id).expect("awaited").view)
    }
}
