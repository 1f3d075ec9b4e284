//! Writing messages to a file: JSON lines, CSV or Parquet, a batch at a time, so memory
//! stays flat however many messages go out (a Parquet row group is cut at 32 MiB).
//!
//! Every format has the same columns: `sequence`, `time` (UTC, microseconds), `subject`,
//! `headers` (a JSON object of each name's values, null when none), `size` (bytes as
//! JetStream counts them) and the payload — in Parquet as bytes (`payload`), in JSON lines and
//! CSV as text (`payload`) when it is UTF-8 and as base64 (`payload_base64`) when it is not.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use base64::Engine;
use jsc_domain::export::{ExportFormat, csv_line};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::StoredMessage;

/// Bytes of encoded rows a Parquet export holds before it writes them out as a row group.
const ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// The columns of a text export.
pub const TEXT_COLUMNS: [&str; 7] = [
    "sequence",
    "time",
    "subject",
    "headers",
    "size",
    "payload",
    "payload_base64",
];

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write the export: {0}")]
    Sink(#[from] std::io::Error),
    #[error("cannot write the Parquet file: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("cannot build a batch of rows: {0}")]
    Batch(#[from] arrow::error::ArrowError),
}

/// The Arrow schema of a Parquet export.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("sequence", DataType::UInt64, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("subject", DataType::Utf8, false),
        Field::new("headers", DataType::Utf8, true),
        Field::new("size", DataType::UInt64, false),
        Field::new("payload", DataType::Binary, false),
    ]))
}

/// A message's headers as a JSON object of each name's values (in order); `None` without any.
fn headers_json(m: &StoredMessage) -> Option<String> {
    if m.headers.is_empty() {
        return None;
    }
    let mut map = serde_json::Map::new();
    for (k, v) in &m.headers {
        let values = map
            .entry(k.clone())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(a) = values {
            a.push(serde_json::Value::String(v.clone()));
        }
    }
    Some(serde_json::Value::Object(map).to_string())
}

fn time_text(m: &StoredMessage) -> String {
    m.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The payload as text when it is UTF-8, else as base64.
fn payload_text(m: &StoredMessage) -> (Option<&str>, Option<String>) {
    match std::str::from_utf8(&m.payload) {
        Ok(t) => (Some(t), None),
        Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(&m.payload))),
    }
}

fn json_line(out: &mut String, m: &StoredMessage) {
    let (text, b64) = payload_text(m);
    let headers = headers_json(m).map(|h| serde_json::from_str::<serde_json::Value>(&h).unwrap_or_default());
    let row = serde_json::json!({
        "sequence": m.sequence,
        "time": time_text(m),
        "subject": m.subject,
        "headers": headers,
        "size": m.size(),
        "payload": text,
        "payload_base64": b64,
    });
    out.push_str(&row.to_string());
    out.push('\n');
}

fn csv_row(out: &mut String, m: &StoredMessage) {
    let (text, b64) = payload_text(m);
    csv_line(
        out,
        &[
            m.sequence.to_string(),
            time_text(m),
            m.subject.clone(),
            headers_json(m).unwrap_or_default(),
            m.size().to_string(),
            text.unwrap_or_default().to_string(),
            b64.unwrap_or_default(),
        ],
    );
}

fn batch(messages: &[StoredMessage]) -> Result<RecordBatch, ExportError> {
    let n = messages.len();
    let mut seq = UInt64Builder::with_capacity(n);
    let mut time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut subject = StringBuilder::new();
    let mut headers = StringBuilder::new();
    let mut size = UInt64Builder::with_capacity(n);
    let mut payload = BinaryBuilder::new();
    for m in messages {
        seq.append_value(m.sequence);
        time.append_value(m.time.timestamp_micros());
        subject.append_value(&m.subject);
        headers.append_option(headers_json(m));
        size.append_value(m.size() as u64);
        payload.append_value(&m.payload);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(seq.finish()),
        Arc::new(time.finish()),
        Arc::new(subject.finish()),
        Arc::new(headers.finish()),
        Arc::new(size.finish()),
        Arc::new(payload.finish()),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

enum Out<W: AsyncWrite + Unpin + Send> {
    Text(W),
    Parquet(Box<AsyncArrowWriter<W>>),
}

/// Writes messages to `sink` in one format, a batch at a time.
pub struct ExportWriter<W: AsyncWrite + Unpin + Send> {
    format: ExportFormat,
    out: Out<W>,
    written: u64,
}

impl<W: AsyncWrite + Unpin + Send> ExportWriter<W> {
    /// Starts an export (a CSV export writes its header row now).
    pub async fn new(format: ExportFormat, sink: W) -> Result<Self, ExportError> {
        let out = match format {
            ExportFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                    .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
                    .build();
                Out::Parquet(Box::new(AsyncArrowWriter::try_new(sink, schema(), Some(props))?))
            }
            ExportFormat::Csv => {
                let mut sink = sink;
                let mut header = String::new();
                csv_line(&mut header, &TEXT_COLUMNS);
                sink.write_all(header.as_bytes()).await?;
                Out::Text(sink)
            }
            ExportFormat::Jsonl => Out::Text(sink),
        };
        Ok(Self {
            format,
            out,
            written: 0,
        })
    }

    /// Appends `messages`, in order.
    pub async fn write(&mut self, messages: &[StoredMessage]) -> Result<(), ExportError> {
        if messages.is_empty() {
            return Ok(());
        }
        match &mut self.out {
            Out::Parquet(w) => {
                w.write(&batch(messages)?).await?;
                if w.in_progress_size() >= ROW_GROUP_BYTES {
                    w.flush().await?;
                }
            }
            Out::Text(w) => {
                let mut buf = String::new();
                for m in messages {
                    match self.format {
                        ExportFormat::Csv => csv_row(&mut buf, m),
                        _ => json_line(&mut buf, m),
                    }
                }
                w.write_all(buf.as_bytes()).await?;
            }
        }
        self.written += messages.len() as u64;
        Ok(())
    }

    /// Messages written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Ends the file (a Parquet footer) and closes the sink; returns the messages written.
    pub async fn finish(self) -> Result<u64, ExportError> {
        match self.out {
            Out::Parquet(w) => {
                w.close().await?;
            }
            Out::Text(mut w) => {
                w.flush().await?;
                w.shutdown().await?;
            }
        }
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(seq: u64, payload: &[u8], headers: &[(&str, &str)]) -> StoredMessage {
        StoredMessage {
            sequence: seq,
            subject: "orders.eu".into(),
            time: chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            payload: payload.to_vec().into(),
            decoded_as: None,
        }
    }

    #[tokio::test]
    async fn text_exports_keep_binary_payloads_as_base64_and_quote_csv() {
        let msgs = [
            m(1, b"a,\"b\"", &[("X-A", "1"), ("X-A", "2")]),
            m(2, &[0xff, 0x00], &[]),
        ];
        let mut buf = Vec::new();
        let mut w = ExportWriter::new(ExportFormat::Jsonl, &mut buf).await.unwrap();
        w.write(&msgs).await.unwrap();
        assert_eq!(w.finish().await.unwrap(), 2);
        let lines: Vec<serde_json::Value> = String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["payload"], "a,\"b\"");
        assert_eq!(lines[0]["headers"]["X-A"], serde_json::json!(["1", "2"]));
        assert_eq!(lines[0]["time"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(lines[1]["payload"], serde_json::Value::Null);
        assert_eq!(lines[1]["payload_base64"], "/wA=");
        assert_eq!(lines[1]["headers"], serde_json::Value::Null);

        let mut buf = Vec::new();
        let mut w = ExportWriter::new(ExportFormat::Csv, &mut buf).await.unwrap();
        w.write(&msgs).await.unwrap();
        w.finish().await.unwrap();
        let text = String::from_utf8(buf).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), TEXT_COLUMNS.join(","));
        assert_eq!(
            lines.next().unwrap(),
            "1,2023-11-14T22:13:20.123456Z,orders.eu,\"{\"\"X-A\"\":[\"\"1\"\",\"\"2\"\"]}\",30,\"a,\"\"b\"\"\","
        );
        assert_eq!(
            lines.next().unwrap(),
            "2,2023-11-14T22:13:20.123456Z,orders.eu,,11,,/wA="
        );
    }
}
