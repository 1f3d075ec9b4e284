//! Republishing messages — a range of a stream, what a search finds in it, or chosen
//! sequences (dead letters) — to a subject, a stream on another cluster, or back to their
//! own subjects. A command records who started what (`RepublishStarted`) before the first
//! message goes, and another how it ended (`RepublishFinished`). Each message is published
//! with a message id derived from its source stream and sequence (`Nats-Msg-Id:
//! jsc:<cluster>:<stream>:<sequence>`), so a retried republish never doubles a message within
//! the target stream's duplicate window; the ack says which were duplicates.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use jsc_domain::identity::Role;
use jsc_domain::stream::{
    MAX_REPUBLISH_SEQUENCES, RepublishOutcome, RepublishSelection, RepublishTarget, StreamCommand, stream_id,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::messages::{EXPORT_LIMITS, ScanEvent, SearchRequest, SearchStop};
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, Result};

/// Messages a republish sends each second when it names no rate.
pub const DEFAULT_RATE: u32 = 1_000;
/// Publishes a republish keeps in flight at once.
const IN_FLIGHT: usize = 64;
/// Messages a dry run lists.
const SAMPLE: usize = 20;
/// Most often `republishProgress` reports.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Ended jobs this process remembers (for a late `republishProgress`).
const ENDED_KEPT: usize = 100;

/// Where to republish.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Another cluster; `None`: the source's own.
    pub cluster_id: Option<String>,
    /// One subject for all; `None`: each message's own.
    pub subject: Option<String>,
    /// Only this stream may store them.
    pub stream: Option<String>,
}

/// A republish to run (or, `dry_run`, to preview).
#[derive(Debug, Clone, Default)]
pub struct RepublishRequest {
    /// The range, filters and limits, as for a search (its `unmasked` is not used: what is
    /// republished is the message as it is, and none of it is shown).
    pub search: SearchRequest,
    /// Only these sequences (at most 10,000), when given.
    pub sequences: Vec<u64>,
    pub target: Target,
    pub rate_per_second: Option<u32>,
    pub dry_run: bool,
    /// `republish`, or `redrive` (dead letters).
    pub purpose: String,
}

/// One message a dry run would send.
#[derive(Debug, Clone)]
pub struct Planned {
    pub sequence: u64,
    pub subject: String,
    pub target_subject: String,
    pub size: usize,
}

/// What a dry run found.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub scanned: u64,
    pub matched: u64,
    pub stop: SearchStop,
    /// The first messages it would send.
    pub sample: Vec<Planned>,
}

/// How far a republish job has come.
#[derive(Debug, Clone, Default)]
pub struct JobProgress {
    pub job: String,
    pub cluster_id: String,
    pub stream: String,
    pub started_at: Option<DateTime<Utc>>,
    pub scanned: u64,
    pub published: u64,
    pub duplicates: u64,
    pub last_sequence: Option<u64>,
    /// How it ended, once it has.
    pub outcome: Option<RepublishOutcome>,
}

/// What starting a republish answers.
pub enum Started {
    DryRun(DryRun),
    /// The job id and the event stream sequence of `RepublishStarted`.
    Job {
        job: String,
        sequence: u64,
    },
}

struct Job {
    progress: watch::Receiver<JobProgress>,
    cancel: CancellationToken,
}

/// The republish jobs of this process, running and lately ended.
#[derive(Default, Clone)]
pub struct Jobs(Arc<Mutex<JobTable>>);

#[derive(Default)]
struct JobTable {
    jobs: HashMap<String, Job>,
    /// Ended jobs, oldest first.
    ended: std::collections::VecDeque<String>,
}

impl Jobs {
    fn insert(&self, id: &str, job: Job) {
        self.0.lock().expect("jobs lock").jobs.insert(id.to_string(), job);
    }

    fn ended(&self, id: &str) {
        let mut t = self.0.lock().expect("jobs lock");
        t.ended.push_back(id.to_string());
        while t.ended.len() > ENDED_KEPT {
            if let Some(old) = t.ended.pop_front() {
                t.jobs.remove(&old);
            }
        }
    }

    fn get(&self, id: &str) -> Option<(watch::Receiver<JobProgress>, CancellationToken)> {
        let t = self.0.lock().expect("jobs lock");
        t.jobs.get(id).map(|j| (j.progress.clone(), j.cancel.clone()))
    }
}

/// The message id a republished message carries: the same for every retry.
pub fn message_id(cluster_id: &str, stream: &str, sequence: u64) -> String {
    format!("jsc:{cluster_id}:{stream}:{sequence}")
}

/// The headers a republished message carries: its own, without those that would steer or
/// refuse the new publish, plus its message id and where it came from.
fn republished_headers(cluster_id: &str, stream: &str, m: &crate::messages::StoredMessage) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    for (k, v) in &m.headers {
        let lower = k.to_ascii_lowercase();
        if lower == "nats-msg-id" || lower.starts_with("nats-expected-") || lower == "nats-ttl" {
            continue;
        }
        h.append(k.as_str(), v.as_str());
    }
    h.insert("Nats-Msg-Id", message_id(cluster_id, stream, m.sequence).as_str());
    h.insert("Jsc-Source", format!("{stream}:{}", m.sequence).as_str());
    h
}

impl Console {
    /// Republishes a stream's messages (operator on the source and the target cluster), or
    /// with `dry_run` says what it would send and sends nothing. A real run records
    /// `RepublishStarted` and returns at once with the job's id; the job runs on, at most
    /// `rate_per_second`, until its range ends, a limit stops it or it is cancelled, then
    /// records `RepublishFinished`. Follow it with [`Console::republish_progress`].
    pub async fn republish(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        req: RepublishRequest,
    ) -> Result<Started> {
        self.stream(caller, cluster_id, stream)?;
        self.require_cluster(&caller.principal, cluster_id, Role::Operator)?;
        let target_cluster = req.target.cluster_id.clone().unwrap_or_else(|| cluster_id.to_string());
        self.require_cluster(&caller.principal, &target_cluster, Role::Operator)?;
        if req.sequences.len() > MAX_REPUBLISH_SEQUENCES {
            return Err(Error::validation(format!(
                "sequences: name at most {MAX_REPUBLISH_SEQUENCES}; use a range and filters for more"
            )));
        }
        if req.sequences.contains(&0) {
            return Err(Error::validation("sequences: sequences start at 1"));
        }
        let chosen: BTreeSet<u64> = req.sequences.iter().copied().collect();
        // A sequence named outside the range given beside it would be left out without a
        // word: refused instead.
        let (from, to) = (req.search.from_sequence, req.search.to_sequence);
        if let Some(out) = chosen
            .iter()
            .find(|s| from.is_some_and(|f| **s < f) || to.is_some_and(|t| **s > t))
        {
            let range = format!(
                "{}..{}",
                from.map_or(String::new(), |f| f.to_string()),
                to.map_or(String::new(), |t| t.to_string())
            );
            return Err(Error::validation(format!(
                "sequences: {out} is outside the range {range} given by fromSequence/toSequence; name sequences within it, or leave the range out"
            )));
        }
        let mut search = req.search.clone();
        if let (Some(first), Some(last)) = (chosen.first(), chosen.last()) {
            search.from_sequence = Some(search.from_sequence.map_or(*first, |f| f.max(*first)));
            search.to_sequence = Some(search.to_sequence.map_or(*last, |t| t.min(*last)));
        }
        let rate = req.rate_per_second.unwrap_or(DEFAULT_RATE);
        let (bounds, scan) = self
            .raw_scan(caller, cluster_id, stream, &search, EXPORT_LIMITS)
            .await?;
        let wanted = move |seq: u64| chosen.is_empty() || chosen.contains(&seq);
        let target = RepublishTarget {
            cluster_id: target_cluster.clone(),
            subject: req.target.subject.clone(),
            stream: req.target.stream.clone(),
        };
        let target_subject = |m: &crate::messages::StoredMessage| target.subject_for(&m.subject);
        if req.dry_run {
            return Ok(Started::DryRun(dry_run(scan, &wanted, &target_subject).await?));
        }
        let admin = self.admin(&target_cluster).await?;
        let job = uuid::Uuid::now_v7().to_string();
        let predicates = describe(&req.search);
        let selection = RepublishSelection {
            from_sequence: bounds.from,
            to_sequence: bounds.to.max(bounds.from),
            subject: bounds.subject.clone(),
            predicates,
            sequences: req.sequences.clone(),
            purpose: if req.purpose.is_empty() {
                "republish".into()
            } else {
                req.purpose.clone()
            },
        };
        let ctx = self.authorize(Actor::Caller(caller), Access::Cluster(cluster_id, Role::Operator))?;
        let id = stream_id(cluster_id, stream);
        let committed = self
            .run_in::<jsc_domain::stream::Stream>(
                &ctx,
                &id,
                StreamCommand::StartRepublish {
                    job: job.clone(),
                    selection,
                    target: target.clone(),
                    rate_per_second: rate,
                },
            )
            .await?;
        let (tx, rx) = watch::channel(JobProgress {
            job: job.clone(),
            cluster_id: cluster_id.to_string(),
            stream: stream.to_string(),
            started_at: Some(Utc::now()),
            ..Default::default()
        });
        let cancel = CancellationToken::new();
        self.jobs.insert(
            &job,
            Job {
                progress: rx,
                cancel: cancel.clone(),
            },
        );
        let console = self.clone();
        let (source_cluster, source_stream, job_id) = (cluster_id.to_string(), stream.to_string(), job.clone());
        tokio::spawn(async move {
            let run = Run {
                source_cluster: &source_cluster,
                source_stream: &source_stream,
                target: &target,
                admin: &admin,
                rate,
                progress: &tx,
                cancel: &cancel,
            };
            let outcome = run.go(scan, &wanted).await;
            tx.send_modify(|p| p.outcome = Some(outcome.clone()));
            let finish = StreamCommand::FinishRepublish {
                job: job_id.clone(),
                outcome,
            };
            if let Err(e) = console.run_in::<jsc_domain::stream::Stream>(&ctx, &id, finish).await {
                tracing::warn!(job = %job_id, error = %e, "cannot record the end of a republish");
            }
            console.jobs.ended(&job_id);
        });
        Ok(Started::Job {
            job,
            sequence: committed.stream_sequence,
        })
    }

    /// The progress of republish job `job` as it changes, until it ends (its last item has
    /// `outcome`), for a viewer of its cluster; `NOT_FOUND` for a job this console does not
    /// run (or no longer remembers: its end is in the stream's history).
    pub fn republish_progress(
        &self,
        caller: &Caller,
        job: &str,
    ) -> Result<impl futures::Stream<Item = JobProgress> + Send + 'static + use<>> {
        let missing = || {
            Error::not_found(format!(
                "no republish job '{job}' on this console; its start and end are in the stream's history"
            ))
        };
        let (rx, _) = self.jobs.get(job).ok_or_else(missing)?;
        let cluster = rx.borrow().cluster_id.clone();
        if self.cluster_role(&caller.principal, &cluster).is_none() {
            return Err(missing());
        }
        // The state now, then at most every 250 ms (at once when the job ends): a job acks
        // thousands of messages a second, its client needs a few reports.
        Ok(futures::stream::unfold(
            (rx, true, false),
            |(mut rx, first, done)| async move {
                if done {
                    return None;
                }
                // A job gone without an outcome (it cannot record one) ends the stream too.
                let mut gone = false;
                if !first {
                    let waited = tokio::time::timeout(PROGRESS_EVERY, rx.wait_for(|p| p.outcome.is_some())).await;
                    gone = matches!(waited, Ok(Err(_)));
                }
                let p = rx.borrow_and_update().clone();
                let ended = gone || p.outcome.is_some();
                Some((p, (rx, false, ended)))
            },
        ))
    }

    /// Stops republish job `job` after the messages in flight (operator on its cluster).
    pub fn cancel_republish(&self, caller: &Caller, job: &str) -> Result<()> {
        let (rx, cancel) = self
            .jobs
            .get(job)
            .ok_or_else(|| Error::not_found(format!("no republish job '{job}' on this console")))?;
        let cluster = rx.borrow().cluster_id.clone();
        self.require_cluster(&caller.principal, &cluster, Role::Operator)?;
        cancel.cancel();
        Ok(())
    }
}

/// The search's predicates in words, for the record (`None` without any).
fn describe(s: &SearchRequest) -> Option<String> {
    let mut parts = Vec::new();
    for (name, test) in &s.headers {
        parts.push(format!("header {name} {test:?}"));
    }
    if let Some(c) = &s.payload_contains {
        parts.push(format!("payload contains {} bytes", c.len()));
    }
    if let Some(r) = &s.payload_regex {
        parts.push(format!("payload matches /{r}/"));
    }
    if let Some(e) = &s.expression {
        parts.push(format!("expression {e}"));
    }
    if let Some(t) = s.from_time {
        parts.push(format!("from {}", t.to_rfc3339()));
    }
    if let Some(t) = s.to_time {
        parts.push(format!("before {}", t.to_rfc3339()));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

async fn dry_run(
    scan: impl futures::Stream<Item = Result<ScanEvent>>,
    wanted: &(dyn Fn(u64) -> bool + Send + Sync),
    target_subject: &(dyn Fn(&crate::messages::StoredMessage) -> String + Send + Sync),
) -> Result<DryRun> {
    let mut scan = std::pin::pin!(scan);
    let mut out = DryRun {
        scanned: 0,
        matched: 0,
        stop: SearchStop::End,
        sample: Vec::new(),
    };
    while let Some(event) = scan.next().await {
        match event? {
            ScanEvent::Match(m) if wanted(m.sequence) => {
                out.matched += 1;
                if out.sample.len() < SAMPLE {
                    out.sample.push(Planned {
                        sequence: m.sequence,
                        target_subject: target_subject(&m),
                        size: m.size(),
                        subject: m.subject,
                    });
                }
            }
            ScanEvent::Done(p, stop) => {
                out.scanned = p.scanned;
                out.stop = stop;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// One republish job at work.
struct Run<'a> {
    source_cluster: &'a str,
    source_stream: &'a str,
    target: &'a RepublishTarget,
    admin: &'a jsc_fleet::Admin,
    rate: u32,
    progress: &'a watch::Sender<JobProgress>,
    cancel: &'a CancellationToken,
}

impl Run<'_> {
    async fn go(
        &self,
        scan: impl futures::Stream<Item = Result<ScanEvent>>,
        wanted: &(dyn Fn(u64) -> bool + Send + Sync),
    ) -> RepublishOutcome {
        let mut scan = std::pin::pin!(scan);
        let mut in_flight = futures::stream::FuturesOrdered::new();
        let started = Instant::now();
        let mut sent = 0u64;
        let mut outcome = RepublishOutcome {
            stop: "end".into(),
            ..Default::default()
        };
        let mut failure: Option<String> = None;
        let expected = self.target.stream.as_deref();
        loop {
            let event = tokio::select! {
                _ = self.cancel.cancelled() => { outcome.stop = "cancelled".into(); break; }
                e = scan.next() => e,
            };
            let Some(event) = event else { break };
            let m = match event {
                Err(e) => {
                    failure = Some(e.message.clone());
                    break;
                }
                Ok(ScanEvent::Match(m)) => m,
                Ok(ScanEvent::Progress(p)) => {
                    self.progress.send_modify(|j| j.scanned = p.scanned);
                    continue;
                }
                Ok(ScanEvent::Done(p, stop)) => {
                    outcome.scanned = p.scanned;
                    outcome.stop = stop_name(stop).into();
                    continue;
                }
            };
            if !wanted(m.sequence) {
                continue;
            }
            // Keep to the rate: message n goes no sooner than n / rate seconds in.
            let due = Duration::from_secs_f64(sent as f64 / f64::from(self.rate));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::select! {
                    _ = self.cancel.cancelled() => { outcome.stop = "cancelled".into(); break; }
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            let subject = self.target.subject_for(&m.subject);
            let headers = republished_headers(self.source_cluster, self.source_stream, &m);
            let seq = m.sequence;
            let admin = self.admin;
            in_flight
                .push_back(async move { (seq, admin.publish_message(expected, &subject, headers, m.payload).await) });
            sent += 1;
            if in_flight.len() >= IN_FLIGHT
                && let Some(done) = in_flight.next().await
                && let Err(e) = self.acked(done, &mut outcome)
            {
                failure = Some(e);
                break;
            }
        }
        while let Some(done) = in_flight.next().await {
            if let Err(e) = self.acked(done, &mut outcome)
                && failure.is_none()
            {
                failure = Some(e);
            }
        }
        if let Some(e) = failure {
            outcome.stop = "failed".into();
            outcome.error = Some(e);
        }
        let scanned = self.progress.borrow().scanned;
        outcome.scanned = outcome.scanned.max(scanned);
        outcome
    }

    /// Counts one acknowledgement (in order), or says why the target refused.
    fn acked(
        &self,
        (seq, ack): (u64, std::result::Result<(u64, bool), jsc_domain::stream::ServiceError>),
        outcome: &mut RepublishOutcome,
    ) -> std::result::Result<(), String> {
        let (_, duplicate) = ack.map_err(|e| format!("sequence {seq}: {e}"))?;
        if duplicate {
            outcome.duplicates += 1;
        } else {
            outcome.published += 1;
        }
        outcome.last_sequence = Some(seq);
        let o = outcome.clone();
        self.progress.send_modify(|p| {
            p.published = o.published;
            p.duplicates = o.duplicates;
            p.last_sequence = o.last_sequence;
        });
        Ok(())
    }
}

fn stop_name(stop: SearchStop) -> &'static str {
    match stop {
        SearchStop::End => "end",
        SearchStop::MaxScanned => "max_scanned",
        SearchStop::MaxResults => "max_results",
        SearchStop::TimeBudget => "time_budget",
    }
}
