//! Records the console keeps in streams of its home NATS (dead letters, alert deliveries):
//! every record on one subject, read with the message reader (batch direct get where the
//! server has it), never with a consumer.

use async_nats::jetstream;
use jsc_messages::{Reader, StreamFacts};
use serde::de::DeserializeOwned;

use crate::{Console, Error, Result};

impl Console {
    /// Every record on `filter` of the home stream `stream` that decodes as `T`, oldest
    /// first, with its stream sequence. `what` names the records in the error
    /// (`the dead letters`).
    pub(crate) async fn home_records<T: DeserializeOwned>(
        &self,
        stream: &str,
        filter: &str,
        what: &str,
    ) -> Result<Vec<(u64, T)>> {
        let unavailable = |e: String| Error::unavailable(format!("cannot read {what}: {e}"));
        let js = jetstream::new(self.home.clone());
        let mut s = js.get_stream(stream).await.map_err(|e| unavailable(e.to_string()))?;
        let info = s.info().await.map_err(|e| unavailable(e.to_string()))?;
        let facts = StreamFacts {
            name: stream.to_string(),
            first_seq: info.state.first_sequence,
            last_seq: info.state.last_sequence,
            messages: info.state.messages,
            allow_direct: info.config.allow_direct,
            server: jsc_fleet::admin::server_version(&self.home),
        };
        let reader = Reader::new(self.home.clone(), facts);
        let mut out = Vec::new();
        let mut next = info.state.first_sequence.max(1);
        loop {
            let batch = reader
                .forward(next, filter, 1_000, None)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            for m in &batch.messages {
                if let Ok(record) = serde_json::from_slice::<T>(&m.payload) {
                    out.push((m.sequence, record));
                }
                next = m.sequence + 1;
            }
            if !batch.more || batch.messages.is_empty() {
                return Ok(out);
            }
        }
    }
}
