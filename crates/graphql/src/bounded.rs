//! Bounded answers: however many errors an operation makes, an answer holds at most
//! [`MAX_ERRORS`] of them, each message at most [`MAX_MESSAGE`] characters. A small request
//! cannot make a large answer by repeating a failing field under many aliases, or by
//! having a long value echoed back in many messages.

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest, NextSubscribe};
use async_graphql::{Response, ServerError};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::Arc;

/// The most errors one answer holds; the last place says how many more there were.
pub const MAX_ERRORS: usize = 20;
/// The longest error message, in characters; a longer one is cut and says so.
pub const MAX_MESSAGE: usize = 1_000;

pub(crate) struct BoundedErrors;

impl ExtensionFactory for BoundedErrors {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(BoundedErrors)
    }
}

#[async_trait::async_trait]
impl Extension for BoundedErrors {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        bound(next.run(ctx).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).map(bound).boxed()
    }
}

/// The answer with at most [`MAX_ERRORS`] errors of at most [`MAX_MESSAGE`] characters.
pub(crate) fn bound(mut response: Response) -> Response {
    if response.errors.len() > MAX_ERRORS {
        let omitted = response.errors.split_off(MAX_ERRORS - 1);
        let mut e = ServerError::new(
            format!(
                "{} more errors are not shown (an answer holds at most {MAX_ERRORS}); fix the ones above and send \
                 the request again",
                omitted.len()
            ),
            None,
        );
        // The code of the first one left out, so that a client handling codes sees its kind.
        let code = omitted[0].extensions.as_ref().and_then(|x| x.get("code")).cloned();
        let ext = e.extensions.get_or_insert_with(Default::default);
        if let Some(code) = code {
            ext.set("code", code);
        }
        ext.set("omitted", omitted.len());
        response.errors.push(e);
    }
    for e in &mut response.errors {
        if let Some((cut, _)) = e.message.char_indices().nth(MAX_MESSAGE) {
            let rest = e.message[cut..].chars().count();
            e.message.truncate(cut);
            e.message.push_str(&format!("… ({rest} more characters)"));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(message: &str, code: &str) -> ServerError {
        let mut e = ServerError::new(message, None);
        e.extensions.get_or_insert_with(Default::default).set("code", code);
        e
    }

    #[test]
    fn at_most_twenty_errors_and_the_last_says_how_many_more() {
        let mut r = Response::default();
        r.errors = (0..50)
            .map(|i| error(&format!("no cluster 'c{i}'"), "NOT_FOUND"))
            .collect();
        let r = bound(r);
        assert_eq!(r.errors.len(), MAX_ERRORS);
        assert_eq!(r.errors[18].message, "no cluster 'c18'");
        let last = &r.errors[19];
        assert!(
            last.message.starts_with("31 more errors are not shown"),
            "{}",
            last.message
        );
        let ext = last.extensions.as_ref().unwrap();
        assert_eq!(ext.get("code"), Some(&async_graphql::Value::from("NOT_FOUND")));
        assert_eq!(ext.get("omitted"), Some(&async_graphql::Value::from(31)));
        // Twenty or fewer: as they were.
        let mut r = Response::default();
        r.errors = (0..MAX_ERRORS).map(|_| error("x", "VALIDATION")).collect();
        assert_eq!(bound(r).errors.len(), MAX_ERRORS);
    }

    #[test]
    fn a_long_message_is_cut_and_says_by_how_much() {
        let mut r = Response::default();
        r.errors = vec![error(&format!("no stream '{}'", "é".repeat(5_000)), "NOT_FOUND")];
        let message = &bound(r).errors[0].message;
        assert!(
            message.ends_with("… (4012 more characters)"),
            "{}",
            &message[message.len() - 40..]
        );
        assert_eq!(
            message.chars().count(),
            MAX_MESSAGE + "… (4012 more characters)".chars().count()
        );
    }
}
