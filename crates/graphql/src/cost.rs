//! Query cost: every query, mutation and subscription is charged its complexity against
//! its caller's budget, a bucket that refills over time (as Shopify's Admin API does), and
//! each answer says what it cost in `extensions.cost`:
//!
//! ```json
//! {"cost": {"requested": 12, "actual": 9, "budget": {"max": 40000, "remaining": 39991, "refillPerSecond": 2000}}}
//! ```
//!
//! `requested` is the operation's complexity, charged before it runs; `actual` is the
//! number of fields it resolved; what was asked for and not used is given back, so an
//! operation never costs more than it requested. A caller whose budget cannot cover an
//! operation gets `RATE_LIMITED` with `retryAfter` (and a `Retry-After` header) and nothing
//! runs. Budgets are kept per replica (the caller's actor, or the client address for a
//! request without a credential); the complexity limit stays in force on top.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextRequest, NextValidation,
};
use async_graphql::{Response, ServerError, ValidationResult, Value};
use jsc_app::{Code, RequestMeta};

use crate::AuthState;

/// A caller's budget: at most `max` points, refilled at `refill_per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max: u64,
    pub refill_per_second: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max: 40_000,
            refill_per_second: 2_000,
        }
    }
}

/// The budgets of every caller, in memory.
pub(crate) struct Budgets {
    budget: Budget,
    levels: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Beyond this many callers, full buckets are forgotten (they hold nothing).
const MAX_TRACKED: usize = 100_000;

impl Budgets {
    pub(crate) fn new(budget: Budget) -> Self {
        Self {
            budget,
            levels: Mutex::new(HashMap::new()),
        }
    }

    fn level(&self, levels: &mut HashMap<String, (f64, Instant)>, key: &str) -> f64 {
        let now = Instant::now();
        let max = self.budget.max as f64;
        if levels.len() > MAX_TRACKED {
            let refill = self.budget.refill_per_second as f64;
            levels.retain(|_, (l, at)| *l + now.duration_since(*at).as_secs_f64() * refill < max);
        }
        let (level, at) = levels.entry(key.to_string()).or_insert((max, now));
        *level = (*level + now.duration_since(*at).as_secs_f64() * self.budget.refill_per_second as f64).min(max);
        *at = now;
        *level
    }

    /// Charges `cost`: the points left, or the seconds to wait until the budget covers it.
    fn take(&self, key: &str, cost: u64) -> Result<u64, u64> {
        let mut levels = self.levels.lock().expect("budget lock");
        let level = self.level(&mut levels, key);
        let cost = cost as f64;
        if cost > level {
            let refill = self.budget.refill_per_second.max(1) as f64;
            return Err(((cost - level) / refill).ceil().max(1.0) as u64);
        }
        levels.get_mut(key).expect("just set").0 = level - cost;
        Ok((level - cost) as u64)
    }

    /// Gives back `points` asked for and not used; the points left.
    fn refund(&self, key: &str, points: u64) -> u64 {
        let mut levels = self.levels.lock().expect("budget lock");
        let level = (self.level(&mut levels, key) + points as f64).min(self.budget.max as f64);
        levels.get_mut(key).expect("just set").0 = level;
        level as u64
    }
}

/// The extension that charges and reports the cost of each operation.
pub(crate) struct Cost(pub(crate) Arc<Budgets>);

impl ExtensionFactory for Cost {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostOfOne {
            budgets: self.0.clone(),
            charged: Mutex::new(None),
            refused: Mutex::new(None),
            actual: AtomicU64::new(0),
        })
    }
}

/// One operation's cost.
struct CostOfOne {
    budgets: Arc<Budgets>,
    /// Who was charged and how much was requested.
    charged: Mutex<Option<(String, u64)>>,
    /// Seconds to wait, when the budget could not cover the operation.
    refused: Mutex<Option<u64>>,
    actual: AtomicU64,
}

/// Whose budget pays: the caller's actor, else the client's address.
fn payer(ctx: &ExtensionContext<'_>) -> String {
    match ctx.data_opt::<AuthState>() {
        Some(AuthState::Authenticated(p) | AuthState::Connection(p)) => p.actor.clone(),
        _ => match ctx.data_opt::<RequestMeta>().and_then(|m| m.client_addr.clone()) {
            Some(addr) => format!("addr:{}", jsc_app::auth::limit_key(Some(&addr))),
            None => "anonymous".into(),
        },
    }
}

impl CostOfOne {
    fn report(&self) -> Option<Value> {
        let (key, requested) = self.charged.lock().expect("cost lock").clone()?;
        let actual = self.actual.load(Ordering::Relaxed);
        let remaining = self.budgets.refund(&key, requested.saturating_sub(actual));
        let b = self.budgets.budget;
        Some(async_graphql::value!({
            "requested": requested,
            "actual": actual,
            "budget": {"max": b.max, "remaining": remaining, "refillPerSecond": b.refill_per_second},
        }))
    }
}

#[async_trait::async_trait]
impl Extension for CostOfOne {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        if let Some(wait) = *self.refused.lock().expect("cost lock")
            && let Ok(v) = wait.to_string().parse()
        {
            response.http_headers.insert("retry-after", v);
        }
        response
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let key = payer(ctx);
        let requested = result.complexity as u64;
        match self.budgets.take(&key, requested) {
            Ok(_) => {
                *self.charged.lock().expect("cost lock") = Some((key, requested));
                Ok(result)
            }
            Err(wait) => {
                *self.refused.lock().expect("cost lock") = Some(wait);
                let mut e = ServerError::new(
                    format!(
                        "this operation costs {requested} points and your budget has fewer left; it refills at {} \
                         points a second: retry in {wait} s, or ask for fewer fields",
                        self.budgets.budget.refill_per_second
                    ),
                    None,
                );
                let ext = e.extensions.get_or_insert_with(Default::default);
                ext.set("code", Code::RateLimited.as_str());
                ext.set("retryAfter", wait);
                Err(vec![e])
            }
        }
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        self.actual.store(fields_in(&response.data), Ordering::Relaxed);
        if let Some(cost) = self.report() {
            response.extensions.insert("cost".into(), cost);
        }
        response
    }
}

/// How many fields an answer holds: what the operation actually cost, counted once from the
/// answer rather than by a hook on every resolver (which costs a boxed future per field).
/// `__typename` is free, as in the complexity (only the real one: a string, not an object or
/// list a client aliased as `__typename`).
fn fields_in(v: &Value) -> u64 {
    match v {
        Value::Object(o) => o
            .iter()
            .filter(|(k, c)| !(k.as_str() == "__typename" && matches!(c, Value::String(_))))
            .map(|(_, c)| 1 + fields_in(c))
            .sum(),
        Value::List(l) => l.iter().map(fields_in).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actual_cost_counts_each_field_of_the_answer_once_per_item() {
        let answer = async_graphql::value!({
            "streams": {"__typename": "StreamConnection", "nodes": [{"name": "A"}, {"name": "B"}], "totalCount": 2},
            "me": null,
        });
        // streams, nodes, 2 × name, totalCount, me; __typename is free.
        assert_eq!(fields_in(&answer), 6);
        // ...but not a list aliased as `__typename` to hide what it cost.
        let aliased = async_graphql::value!({"__typename": {"nodes": [{"payload": "x"}, {"payload": "y"}]}});
        assert_eq!(fields_in(&aliased), 4);
        assert_eq!(fields_in(&Value::Null), 0);
    }

    #[test]
    fn a_budget_is_spent_refused_when_short_and_refunded() {
        let b = Budgets::new(Budget {
            max: 100,
            refill_per_second: 10,
        });
        assert_eq!(b.take("a", 60), Ok(40));
        let wait = b.take("a", 60).unwrap_err();
        assert!((2..=3).contains(&wait), "{wait}");
        assert_eq!(b.take("b", 60), Ok(40), "each caller has a budget of their own");
        assert!(b.refund("a", 50) >= 90);
        assert!(b.refund("a", 500) <= 100, "never above the maximum");
    }
}
