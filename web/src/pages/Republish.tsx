// Republishing messages (what a search finds, or a consumer's dead letters): a dry run shows
// what would be sent where, then the job runs and its progress follows live. Each message
// carries a Nats-Msg-Id from its source, so running it twice doubles nothing.
import { useState } from 'react';
import { request, useSubscription } from '../api';
import { graphql } from '../gql';
import type { DryRunFragment } from '../gql/graphql';
import { count, ErrorBox, Field, Resource, Table, fmtBytes, fmtNum, useAction } from '../ui';

const Republish = graphql(`
  mutation RepublishMessages($input: RepublishMessagesInput!) {
    republishMessages(input: $input) {
      jobId
      dryRun {
        ...DryRun
      }
    }
  }
  fragment DryRun on RepublishDryRun {
    scanned
    matched
    stop
    sample {
      sequence
      subject
      targetSubject
      size
    }
  }
`);

const Redrive = graphql(`
  mutation RedriveDeadLetters($input: RedriveDeadLettersInput!) {
    redriveDeadLetters(input: $input) {
      jobId
      dryRun {
        ...DryRun
      }
    }
  }
`);

const Progress = graphql(`
  subscription RepublishProgress($jobId: ID!) {
    republishProgress(jobId: $jobId) {
      scanned
      published
      duplicates
      done
      stop
      error
    }
  }
`);

type Source =
  | { kind: 'search'; clusterId: string; stream: string; subject: string; text: string }
  | { kind: 'dead-letters'; clusterId: string; stream: string; consumer: string };

export function RepublishForm({ source }: { source: Source }) {
  const [subject, setSubject] = useState('');
  const [stream, setStream] = useState('');
  const [rate, setRate] = useState('');
  const [plan, setPlan] = useState<DryRunFragment | null>(null);
  const [job, setJob] = useState<string | null>(null);
  const run = async (dryRun: boolean) => {
    const target = subject || stream ? { subject: subject || undefined, stream: stream || undefined } : undefined;
    const ratePerSecond = rate ? Number(rate) : undefined;
    const r =
      source.kind === 'search'
        ? (
            await request(Republish, {
              input: {
                clusterId: source.clusterId,
                stream: source.stream,
                search: { subject: source.subject || undefined, payloadContains: source.text || undefined },
                target,
                ratePerSecond,
                dryRun,
              },
            })
          ).republishMessages
        : (
            await request(Redrive, {
              input: { clusterId: source.clusterId, stream: source.stream, consumer: source.consumer, target, ratePerSecond, dryRun },
            })
          ).redriveDeadLetters;
    if (dryRun) setPlan(r.dryRun ?? null);
    else setJob(r.jobId ?? null);
  };
  const dry = useAction(() => run(true));
  const go = useAction(() => run(false));
  const fe = (f: string) => dry.fieldError(f) ?? go.fieldError(f);
  if (job) return <JobProgress jobId={job} />;
  return (
    <div>
      <p>
        {source.kind === 'search' ? (
          <>
            Republishes the messages of <Resource clusterId={source.clusterId} stream={source.stream} />
            {source.subject && (
              <>
                {' '}
                on <code>{source.subject}</code>
              </>
            )}
            {source.text && <> whose payload contains “{source.text}”</>}.
          </>
        ) : (
          <>
            Sends the dead letters of <Resource clusterId={source.clusterId} stream={source.stream} consumer={source.consumer} /> again.
          </>
        )}{' '}
        Leave the target empty to publish each message to its own subject again.
      </p>
      <div className="row">
        <Field label="Target subject" name="target.subject" value={subject} onChange={setSubject} error={fe('subject')} />
        <Field label="Target stream" name="target.stream" value={stream} onChange={setStream} error={fe('stream')} hint="Its subjects must take the target subject." />
        <Field label="Messages per second" name="ratePerSecond" value={rate} onChange={setRate} error={fe('ratePerSecond')} hint="Empty: as fast as the server takes them." />
      </div>
      <ErrorBox error={dry.error ?? go.error} />
      {plan && (
        <div className="result" role="status">
          <p>
            {fmtNum(plan.matched)} of {count(plan.scanned, 'message')} would be republished
            {plan.stop !== 'END' && ` (the dry run stopped: ${plan.stop.toLowerCase().replace('_', ' ')})`}.
          </p>
          {plan.sample.length > 0 && (
            <Table
              caption="What would be sent"
              className="compact"
              rows={plan.sample.slice(0, 10)}
              rowKey={(m) => m.sequence}
              columns={[
                ['Sequence', (m) => m.sequence, 'num'],
                ['From', (m) => m.subject, 'mono small'],
                ['To', (m) => m.targetSubject, 'mono small'],
                ['Size', (m) => fmtBytes(m.size), 'small'],
              ]}
            />
          )}
        </div>
      )}
      <div className="actions">
        <button type="button" className="secondary" onClick={() => void dry.run()} disabled={dry.busy}>
          Dry run
        </button>
        <button type="button" onClick={() => void go.run()} disabled={!plan || plan.matched === 0 || go.busy}>
          Republish {plan ? count(plan.matched, 'message') : 'messages'}
        </button>
      </div>
    </div>
  );
}

function JobProgress({ jobId }: { jobId: string }) {
  const [p, setP] = useState<{ scanned: number; published: number; duplicates: number; done: boolean; stop?: string | null; error?: string | null } | null>(null);
  const error = useSubscription(Progress, { jobId }, (d) => setP(d.republishProgress));
  return (
    <div role="status">
      <ErrorBox error={error} />
      {!p ? (
        <p>Starting…</p>
      ) : (
        <>
          <p>
            {p.done ? 'Done' : 'Republishing'}: {fmtNum(p.published)} published of {fmtNum(p.scanned)} scanned
            {p.duplicates > 0 && `, ${fmtNum(p.duplicates)} already there`}
            {p.stop && p.stop !== 'END' && ` (stopped: ${p.stop.toLowerCase()})`}.
          </p>
          {!p.done && <progress aria-label="Republish progress" />}
          {p.error && <ErrorBox error={p.error} />}
        </>
      )}
    </div>
  );
}
