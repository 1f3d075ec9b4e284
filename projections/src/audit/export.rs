//! Exports of the audit trail: [`ExportFormat`] (Parquet, CSV, JSON lines) and
//! [`AuditReader::export`], which streams every matching row, oldest first, to a sink one
//! file (or the tail) at a time.

use async_nats::jetstream;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

pub use jsc_domain::export::ExportFormat;

use super::{AuditFilter, AuditReader, AuditRow, COLUMNS, Error, Result, Span, rows_to_batch, schema};

fn csv_line(r: &AuditRow) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = [
        r.sequence.to_string(),
        r.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        r.aggregate_type.clone(),
        r.aggregate_id.clone(),
        r.aggregate_sequence.to_string(),
        r.event_type.clone(),
        r.event_version.clone(),
        r.actor.clone(),
        opt(&r.client_addr),
        opt(&r.correlation_id),
        opt(&r.causation_id),
        opt(&r.organization),
        opt(&r.cluster),
        r.payload.clone(),
        r.summary.clone(),
        opt(&r.hash),
        opt(&r.prev_hash),
    ];
    let mut line = String::new();
    jsc_domain::export::csv_line(&mut line, &fields);
    line
}

impl AuditReader {
    /// Writes every row matching `filter`, oldest first, to `sink` in `format`, one file
    /// (or the tail) at a time, so memory stays flat whatever the range. `progress` gets
    /// the rows written so far and the stream's last sequence. Returns the rows written.
    pub async fn export<W>(
        &self,
        filter: &AuditFilter,
        format: ExportFormat,
        sink: W,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<u64>
    where
        W: tokio::io::AsyncWrite + Unpin + Send,
    {
        use tokio::io::AsyncWriteExt;
        let js = jetstream::new(self.client.clone());
        let flushed = self.flushed_sequence().await?;
        let stream = js.get_stream(&self.stream).await.map_err(|source| Error::Stream {
            stream: self.stream.clone(),
            source,
        })?;
        let info = stream.get_info().await.map_err(|source| Error::StreamInfo {
            stream: self.stream.clone(),
            source,
        })?;
        let last = info.state.last_sequence;
        let files = self.files_for(filter, flushed, Span::ALL).await?;

        enum Out<W: tokio::io::AsyncWrite + Unpin + Send> {
            Text(W),
            Parquet(Box<AsyncArrowWriter<W>>),
        }
        let mut out = match format {
            ExportFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(Error::ExportParquet)?))
                    .build();
                let writer = AsyncArrowWriter::try_new(sink, schema(), Some(props)).map_err(Error::ExportParquet)?;
                Out::Parquet(Box::new(writer))
            }
            ExportFormat::Csv => {
                let mut sink = sink;
                sink.write_all(format!("{}\n", COLUMNS.join(",")).as_bytes())
                    .await
                    .map_err(Error::Sink)?;
                Out::Text(sink)
            }
            ExportFormat::Jsonl => Out::Text(sink),
        };
        let mut written = 0u64;
        let mut emit = async |rows: Vec<AuditRow>, out: &mut Out<W>| -> Result<()> {
            if rows.is_empty() {
                return Ok(());
            }
            match out {
                Out::Parquet(w) => w.write(&rows_to_batch(&rows)?).await.map_err(Error::ExportParquet)?,
                Out::Text(w) => {
                    let mut buf = String::new();
                    for r in &rows {
                        if format == ExportFormat::Csv {
                            buf.push_str(&csv_line(r));
                        } else {
                            let json = serde_json::to_string(r).map_err(|source| Error::Json {
                                sequence: r.sequence,
                                source,
                            })?;
                            buf.push_str(&json);
                            buf.push('\n');
                        }
                    }
                    w.write_all(buf.as_bytes()).await.map_err(Error::Sink)?;
                }
            }
            written += rows.len() as u64;
            progress(written, last);
            Ok(())
        };
        for path in files {
            let mut rows = self.file_rows(&path, filter, Span::ALL).await?;
            rows.reverse();
            emit(rows, &mut out).await?;
        }
        if last > flushed {
            let tail = self.tail(flushed + 1, Some(last)).await?;
            let rows = tail
                .iter()
                .map(AuditRow::from_record)
                .filter(|r| filter.matches(r))
                .collect();
            emit(rows, &mut out).await?;
        }
        match out {
            Out::Parquet(w) => {
                w.close().await.map_err(Error::ExportParquet)?;
            }
            Out::Text(mut w) => {
                w.flush().await.map_err(Error::Sink)?;
                w.shutdown().await.map_err(Error::Sink)?;
            }
        }
        Ok(written)
    }
}
