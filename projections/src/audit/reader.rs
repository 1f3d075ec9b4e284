//! Reading the trail: [`AuditReader`] answers queries from the Parquet files (pruned by
//! file name and by row-group statistics) plus the tail of the stream not yet written, so
//! the newest events are never missing. Also how a file's batches become [`AuditRow`]s.

use std::sync::Arc;

use arrow::array::RecordBatch;
use async_nats::jetstream;
use chrono::NaiveDate;
use jsc_eventstore::EventRecord;
use object_store::ObjectStore;
use object_store::path::Path;

use super::writer::{fetch, live_files};
use super::{AuditFilter, AuditRow, End, Error, FLUSHED_KEY, Result, STATE_BUCKET, Span, text_columns};

/// Reads the audit trail.
#[derive(Clone)]
pub struct AuditReader {
    pub client: async_nats::Client,
    pub stream: String,
    pub store: Arc<dyn ObjectStore>,
}

fn day_of_path(path: &Path) -> Option<NaiveDate> {
    path.parts()
        .find_map(|p| p.as_ref().strip_prefix("date=").map(str::to_string))
        .and_then(|d| d.parse().ok())
}

impl AuditReader {
    /// The last sequence the writer has put in a file (0 before the first).
    pub async fn flushed_sequence(&self) -> Result<u64> {
        let js = jetstream::new(self.client.clone());
        Ok(match js.get_key_value(STATE_BUCKET).await {
            Ok(kv) => kv
                .get(FLUSHED_KEY)
                .await
                .map_err(|source| Error::ReadFlushed { source })?
                .and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
                .unwrap_or(0),
            Err(_) => 0,
        })
    }

    /// The files that may hold rows for `filter` within `span`, oldest first.
    pub(super) async fn files_for(&self, filter: &AuditFilter, flushed: u64, span: Span) -> Result<Vec<Path>> {
        Ok(live_files(&self.store, &Path::from("audit"))
            .await?
            .into_iter()
            .filter(|(first, last, path)| *first <= flushed && filter.may_hold(day_of_path(path), *first, *last, span))
            .map(|(_, _, path)| path)
            .collect())
    }

    /// The events of the stream from `from` to `to` (the end when `None`), oldest first.
    pub(super) async fn tail(&self, from: u64, to: Option<u64>) -> Result<Vec<EventRecord>> {
        jsc_eventstore::EventReader::new(self.client.clone(), self.stream.clone())
            .read_range(">", from, to)
            .await
            .map_err(|source| Error::Tail {
                stream: self.stream.clone(),
                from,
                source,
            })
    }

    /// The rows of the file at `path` matching `filter` within `span`, newest first.
    pub(super) async fn file_rows(&self, path: &Path, filter: &AuditFilter, span: Span) -> Result<Vec<AuditRow>> {
        let bytes = fetch(&self.store, path).await?;
        let (p, filter) = (path.clone(), filter.clone());
        tokio::task::spawn_blocking(move || read_file(&p, bytes, &filter, span))
            .await
            .map_err(|source| Error::Task {
                path: path.clone(),
                source,
            })?
    }

    /// How many rows match `filter`: every file that may hold one is read.
    pub async fn count(&self, filter: &AuditFilter) -> Result<usize> {
        let flushed = self.flushed_sequence().await?;
        let mut n = 0;
        for path in self.files_for(filter, flushed, Span::ALL).await? {
            n += self.file_rows(&path, filter, Span::ALL).await?.len();
        }
        let tail = self.tail(flushed + 1, None).await?;
        Ok(n + tail
            .iter()
            .map(AuditRow::from_record)
            .filter(|r| filter.matches(r))
            .count())
    }

    /// `first` rows matching `filter` within `span`, from its newest end (newest first) or
    /// its oldest end (oldest first), and whether more match beyond them.
    pub async fn query(
        &self,
        filter: &AuditFilter,
        span: Span,
        first: usize,
        from: End,
    ) -> Result<(Vec<AuditRow>, bool)> {
        let want = first + 1;
        let flushed = self.flushed_sequence().await?;
        let mut out = Vec::new();
        let full = |out: &mut Vec<AuditRow>| {
            let more = out.len() > first;
            out.truncate(first);
            (std::mem::take(out), more)
        };
        // The stream's tail (not yet in a file) holds the newest events.
        let tail = async |out: &mut Vec<AuditRow>| -> Result<()> {
            if span.below > flushed + 1 {
                let to = (span.below != u64::MAX).then(|| span.below - 1);
                let records = self.tail(span.above.max(flushed) + 1, to).await?;
                let rows = records.iter().map(AuditRow::from_record).filter(|r| filter.matches(r));
                match from {
                    End::Newest => out.extend(rows.rev()),
                    End::Oldest => out.extend(rows),
                }
            }
            Ok(())
        };
        let mut files = self.files_for(filter, flushed, span).await?;
        if from == End::Newest {
            tail(&mut out).await?;
            files.reverse();
        }
        for path in files {
            if out.len() >= want {
                return Ok(full(&mut out));
            }
            let mut rows = self.file_rows(&path, filter, span).await?;
            if from == End::Oldest {
                rows.reverse();
            }
            out.extend(rows);
        }
        if from == End::Oldest && out.len() < want {
            tail(&mut out).await?;
        }
        Ok(full(&mut out))
    }
}

/// Matching rows of one file, newest first, reading only the row groups whose statistics
/// (sequence, time) allow a match.
fn read_file(path: &Path, bytes: bytes::Bytes, filter: &AuditFilter, span: Span) -> Result<Vec<AuditRow>> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::statistics::Statistics;
    let parquet = |source| Error::Parquet {
        path: path.clone(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet)?;
    let meta = builder.metadata().clone();
    let schema = builder.schema().clone();
    let idx = |name: &str| schema.index_of(name).ok();
    let (seq_i, time_i) = (idx("sequence"), idx("time"));
    let range = |rg: &parquet::file::metadata::RowGroupMetaData, i: Option<usize>| -> Option<(i64, i64)> {
        match rg.column(i?).statistics()? {
            Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
            _ => None,
        }
    };
    let groups: Vec<usize> = (0..meta.num_row_groups())
        .filter(|&g| {
            let rg = meta.row_group(g);
            let seq_ok =
                range(rg, seq_i).is_none_or(|(min, max)| (min as u64) < span.below && (max as u64) > span.above);
            let time_ok = range(rg, time_i).is_none_or(|(min, max)| {
                filter.from.is_none_or(|f| max >= f.timestamp_micros())
                    && filter.to.is_none_or(|t| min <= t.timestamp_micros())
            });
            seq_ok && time_ok
        })
        .collect();
    let reader = builder.with_row_groups(groups).build().map_err(parquet)?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| Error::Decode {
            path: path.clone(),
            source,
        })?;
        rows.extend(
            rows_of(path, &batch)?
                .into_iter()
                .filter(|r| span.contains(r.sequence) && filter.matches(r)),
        );
    }
    rows.reverse();
    Ok(rows)
}

/// The rows of one batch read back from the file at `path`.
fn rows_of(path: &Path, batch: &RecordBatch) -> Result<Vec<AuditRow>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{TimestampMicrosecondType, UInt64Type};
    let malformed = |reason: String| Error::Malformed {
        path: path.clone(),
        reason,
    };
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| malformed(format!("no column {name}")))
    };
    let wrong_type = |name: &str, want: &str| malformed(format!("column {name} is not of type {want}"));
    let u64s = |name: &str| -> Result<_> {
        col(name)?
            .as_primitive_opt::<UInt64Type>()
            .cloned()
            .ok_or_else(|| wrong_type(name, "UInt64"))
    };
    let strs = |name: &str| -> Result<_> {
        col(name)?
            .as_string_opt::<i32>()
            .cloned()
            .ok_or_else(|| wrong_type(name, "Utf8"))
    };
    let (seq, agg_seq) = (u64s("sequence")?, u64s("aggregate_sequence")?);
    let time = col("time")?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .cloned()
        .ok_or_else(|| wrong_type("time", "Timestamp(Microsecond)"))?;
    let names: Vec<&str> = text_columns().collect();
    let s: Vec<_> = names.iter().map(|n| strs(n)).collect::<Result<_>>()?;
    let get = |i: usize, row: usize| (!s[i].is_null(row)).then(|| s[i].value(row).to_string());
    Ok((0..batch.num_rows())
        .map(|row| AuditRow {
            sequence: seq.value(row),
            time: chrono::DateTime::from_timestamp_micros(time.value(row)).unwrap_or_default(),
            aggregate_type: get(0, row).unwrap_or_default(),
            aggregate_id: get(1, row).unwrap_or_default(),
            aggregate_sequence: agg_seq.value(row),
            event_type: get(2, row).unwrap_or_default(),
            event_version: get(3, row).unwrap_or_default(),
            actor: get(4, row).unwrap_or_default(),
            client_addr: get(5, row),
            correlation_id: get(6, row),
            causation_id: get(7, row),
            organization: get(8, row),
            cluster: get(9, row),
            payload: get(10, row).unwrap_or_default(),
            summary: get(11, row).unwrap_or_default(),
            hash: get(12, row),
            prev_hash: get(13, row),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{rows_to_batch, schema};

    fn row(sequence: u64) -> AuditRow {
        AuditRow {
            sequence,
            time: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000 + sequence as i64).unwrap(),
            aggregate_type: "cluster".into(),
            aggregate_id: "c1".into(),
            aggregate_sequence: sequence,
            event_type: "ClusterRegistered".into(),
            event_version: "1".into(),
            actor: "system:test".into(),
            client_addr: None,
            correlation_id: Some("corr".into()),
            causation_id: None,
            organization: Some("default".into()),
            cluster: Some("c1".into()),
            payload: "{}".into(),
            summary: format!("cluster registered {sequence}"),
            hash: None,
            prev_hash: None,
        }
    }

    fn parquet_of(batch: &RecordBatch) -> bytes::Bytes {
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
        buf.into()
    }

    #[test]
    fn a_file_reads_back_newest_first_within_the_span() {
        let rows: Vec<AuditRow> = (1..=5).map(row).collect();
        let bytes = parquet_of(&rows_to_batch(&rows).unwrap());
        let path = Path::from("audit/date=2023-11-14/part-1-5.parquet");
        let got = read_file(&path, bytes, &AuditFilter::default(), Span { above: 1, below: 4 }).unwrap();
        assert_eq!(got, vec![row(3), row(2)]);
    }

    #[test]
    fn a_file_without_a_column_is_malformed_and_names_the_file() {
        let batch = rows_to_batch(&[row(1)]).unwrap();
        let keep: Vec<usize> = (0..schema().fields().len())
            .filter(|&i| schema().field(i).name() != "actor")
            .collect();
        let bytes = parquet_of(&batch.project(&keep).unwrap());
        let path = Path::from("audit/date=2023-11-14/part-1-1.parquet");
        let err = read_file(&path, bytes, &AuditFilter::default(), Span::ALL).unwrap_err();
        assert!(
            matches!(&err, Error::Malformed { path: p, reason } if *p == path && reason == "no column actor"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the audit file 'audit/date=2023-11-14/part-1-1.parquet' does not read back as the audit table: no column actor"
        );
    }

    #[test]
    fn bytes_that_are_not_parquet_keep_the_parquet_error_as_source() {
        let path = Path::from("audit/date=2023-11-14/part-1-1.parquet");
        let err = read_file(
            &path,
            bytes::Bytes::from_static(b"not parquet"),
            &AuditFilter::default(),
            Span::ALL,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Parquet { .. }), "{err:?}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
