// A consumer: its live state and lag chart, configuration (edit), pause and resume, dead
// letters, history, delete.
import { useState } from 'react';
import { request, useQuery, useSubscription } from '../api';
import { ClusterRole, atLeast, useCan } from '../App';
import { graphql } from '../gql';
import type { ConsumerDetailQuery } from '../gql/graphql';
import { enc, navigate } from '../router';
import { Actor, Dialog, ErrorBox, Field, Link, Loading, PageHeader, Select, Stat, Tabs, TypedConfirm, ago, checkFields, ActionForm, Table, fmtNum, fmtTime, useAction } from '../ui';
import { Chart } from './Chart';
import { History } from './History';
import { RepublishForm } from './Republish';

const ConsumerDetail = graphql(`
  query ConsumerDetail($clusterId: ID!, $stream: String!, $name: String!) {
    cluster(id: $clusterId) {
      id
      name
      myRole
    }
    consumer(clusterId: $clusterId, stream: $stream, name: $name) {
      id
      name
      config {
        durableName
        description
        deliverPolicy
        ackPolicy
        ackWait
        maxDeliver
        backoff
        filterSubjects
        replayPolicy
        maxWaiting
        maxAckPending
        headersOnly
        inactiveThreshold
        replicas
        memStorage
        deliverSubject
        pauseUntil
        isPush
      }
      provenance {
        createdAt
        createdBy
        updatedAt
        updatedBy
        lastChangeExternal
      }
      state {
        ...ConsumerStateF
      }
    }
  }
  fragment ConsumerStateF on ConsumerState {
    pending
    ackPending
    redelivered
    waiting
    deliveredStreamSeq
    ackFloorStreamSeq
    lastActive
    paused
  }
`);

const ConsumerLive = graphql(`
  subscription ConsumerLive($clusterId: ID!, $stream: String!, $name: String!) {
    consumerChanged(clusterId: $clusterId, stream: $stream, name: $name, includeState: true, stateInterval: "1s") {
      kind
      state {
        ...ConsumerStateF
      }
    }
  }
`);

const Pause = graphql(`
  mutation PauseConsumer($clusterId: ID!, $stream: String!, $name: String!, $until: DateTime!) {
    pauseConsumer(input: { clusterId: $clusterId, stream: $stream, name: $name, until: $until }) {
      correlationId
    }
  }
`);

const Resume = graphql(`
  mutation ResumeConsumer($clusterId: ID!, $stream: String!, $name: String!) {
    resumeConsumer(input: { clusterId: $clusterId, stream: $stream, name: $name }) {
      correlationId
    }
  }
`);

const Update = graphql(`
  mutation UpdateConsumer($input: UpdateConsumerInput!) {
    updateConsumer(input: $input) {
      consumer {
        name
      }
    }
  }
`);

const DeleteC = graphql(`
  mutation DeleteConsumer($clusterId: ID!, $stream: String!, $name: String!) {
    deleteConsumer(input: { clusterId: $clusterId, stream: $stream, name: $name }) {
      correlationId
    }
  }
`);

const DeadLetters = graphql(`
  query DeadLetters($clusterId: ID!, $stream: String!, $name: String!) {
    consumer(clusterId: $clusterId, stream: $stream, name: $name) {
      id
      deadLetters(first: 100) {
        totalCount
        nodes {
          streamSequence
          deliveries
          reason
          detail
          time
          message {
            subject
            payload(maxBytes: 512) {
              text
            }
          }
        }
      }
    }
  }
`);

type C = NonNullable<ConsumerDetailQuery['consumer']>;
type St = NonNullable<C['state']>;

export function ConsumerPage({ id, stream, consumer, tab }: { id: string; stream: string; consumer: string; tab: string }) {
  const q = useQuery(ConsumerDetail, { clusterId: id, stream, name: consumer });
  const [live, setLive] = useState<St | null>(null);
  useSubscription(ConsumerLive, { clusterId: id, stream, name: consumer }, (d) => {
    if (d.consumerChanged.state) setLive(d.consumerChanged.state);
    if (d.consumerChanged.kind !== 'STATE') q.reload();
  });
  const [pausing, setPausing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const resume = useAction(async () => {
    await request(Resume, { clusterId: id, stream, name: consumer });
    q.reload();
  });
  const c = q.data?.consumer;
  if (q.error && !c) return <ErrorBox error={q.error} />;
  if (!q.data) return <Loading what="the consumer" />;
  if (!c) return <ErrorBox error={`There is no consumer ${consumer} on ${stream}: it may have been deleted.`} />;
  const st = live ?? c.state;
  const base = `/clusters/${enc(id)}/streams/${enc(stream)}/consumers/${enc(consumer)}`;
  const canOperate = atLeast(q.data.cluster?.myRole ?? 'VIEWER', 'OPERATOR');
  return (
    <ClusterRole.Provider value={q.data.cluster?.myRole ?? null}>
    <section>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/clusters">Clusters</Link> / <Link to={`/clusters/${enc(id)}/streams`}>{q.data.cluster?.name ?? id}</Link> /{' '}
        <Link to={`/clusters/${enc(id)}/streams/${enc(stream)}/consumers`}>{stream}</Link> / <span>{c.name}</span>
      </nav>
      <PageHeader
        title={c.name}
        sub={
          <>
            {c.config.isPush ? 'push' : 'pull'} · ack {c.config.ackPolicy.toLowerCase()} · {c.config.filterSubjects.join(', ') || 'every subject'}
            {st?.paused && <span className="badge warn">paused until {fmtTime(c.config.pauseUntil)}</span>}
          </>
        }
        actions={
          canOperate && (
            <>
              {st?.paused ? (
                <button className="secondary" onClick={() => void resume.run()} disabled={resume.busy}>
                  Resume
                </button>
              ) : (
                <button className="secondary" onClick={() => setPausing(true)}>
                  Pause
                </button>
              )}
              <button className="danger" onClick={() => setDeleting(true)}>
                Delete
              </button>
            </>
          )
        }
      />
      <ErrorBox error={resume.error} />
      <Tabs
        base={base}
        current={tab}
        tabs={[
          ['', 'Overview'],
          ['config', 'Configuration'],
          ['dead-letters', 'Dead letters'],
          ['history', 'History'],
        ]}
      />
      {tab === '' && (
        <div className="grid">
          <div className="card wide">
            <h2>State</h2>
            {st ? (
              <div className="stats">
                <Stat label="Lag (pending)" value={<span data-testid="consumer-lag">{fmtNum(st.pending)}</span>} />
                <Stat label="Ack pending" value={fmtNum(st.ackPending)} />
                <Stat label="Redelivered" value={fmtNum(st.redelivered)} />
                <Stat label="Waiting pulls" value={fmtNum(st.waiting)} />
                <Stat label="Delivered up to" value={fmtNum(st.deliveredStreamSeq)} />
                <Stat label="Ack floor" value={fmtNum(st.ackFloorStreamSeq)} />
                <Stat label="Last active" value={st.lastActive ? ago(st.lastActive) : 'never'} />
              </div>
            ) : (
              <p className="muted">The cluster did not answer with this consumer's state.</p>
            )}
          </div>
          <Chart title="Lag" range="1h" series={[{ metric: 'CONSUMER_LAG', clusterId: id, stream, consumer }]} />
          <Chart
            title="Delivered and acknowledged per second"
            range="1h"
            labels={['delivered', 'acknowledged']}
            series={[
              { metric: 'CONSUMER_DELIVERY_RATE', clusterId: id, stream, consumer },
              { metric: 'CONSUMER_ACK_RATE', clusterId: id, stream, consumer },
            ]}
          />
        </div>
      )}
      {tab === 'config' && <ConsumerConfig clusterId={id} stream={stream} c={c} canEdit={canOperate} onSaved={q.reload} />}
      {tab === 'dead-letters' && <DeadLetterList clusterId={id} stream={stream} name={consumer} />}
      {tab === 'history' && <History aggregateType="CONSUMER" id={`${id}/${stream}/${consumer}`} />}
      <Dialog title={`Pause ${c.name}`} open={pausing} onClose={() => setPausing(false)}>
        <PauseForm
          onPause={async (until) => {
            await request(Pause, { clusterId: id, stream, name: consumer, until });
            setPausing(false);
            q.reload();
          }}
        />
      </Dialog>
      <Dialog title={`Delete ${c.name}`} open={deleting} onClose={() => setDeleting(false)}>
        <TypedConfirm
          what="consumer"
          name={c.name}
          action="Delete"
          onConfirm={() => request(DeleteC, { clusterId: id, stream, name: consumer })}
          onDone={() => navigate(`/clusters/${enc(id)}/streams/${enc(stream)}/consumers`)}
        />
      </Dialog>
    </section>
    </ClusterRole.Provider>
  );
}

function PauseForm({ onPause }: { onPause: (until: string) => Promise<void> }) {
  const [span, setSpan] = useState<'15m' | '1h' | '4h' | '24h'>('1h');
  const act = useAction(async () => {
    const s = { '15m': 900, '1h': 3600, '4h': 14400, '24h': 86400 }[span];
    await onPause(new Date(Date.now() + s * 1000).toISOString());
  });
  return (
    <ActionForm act={act}>
      <p>The server stops delivering to this consumer until the time given, or until it is resumed.</p>
      <Select label="Pause for" name="span" value={span} options={['15m', '1h', '4h', '24h'] as const} onChange={setSpan} />
      <ErrorBox error={act.error} />
      <div className="actions">
        <button type="submit" disabled={act.busy}>
          Pause
        </button>
      </div>
    </ActionForm>
  );
}

function ConsumerConfig({ clusterId, stream, c, canEdit, onSaved }: { clusterId: string; stream: string; c: C; canEdit: boolean; onSaved: () => void }) {
  const [description, setDescription] = useState(c.config.description ?? '');
  const [ackWait, setAckWait] = useState(c.config.ackWait);
  const [maxDeliver, setMaxDeliver] = useState(String(c.config.maxDeliver));
  const [maxAckPending, setMaxAckPending] = useState(String(c.config.maxAckPending));
  const save = useAction(async () => {
    checkFields([
      ['ackWait', ackWait, 'duration'],
      ['maxDeliver', maxDeliver, 'integer'],
      ['maxAckPending', maxAckPending, 'integer'],
    ]);
    await request(Update, {
      input: {
        clusterId,
        stream,
        name: c.name,
        config: { description, ackWait, maxDeliver: Number(maxDeliver), maxAckPending: Number(maxAckPending) },
      },
    });
    onSaved();
  });
  const cfg = c.config;
  return (
    <div className="grid">
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <h2>Edit</h2>
        <fieldset disabled={!canEdit}>
          <legend className="sr-only">Consumer settings that can change</legend>
          <Field label="Description" name="description" value={description} onChange={setDescription} error={save.fieldError('description')} />
          <Field label="Ack wait" name="ackWait" value={ackWait} onChange={setAckWait} error={save.fieldError('ackWait')} />
          <Field label="Max deliveries" name="maxDeliver" value={maxDeliver} onChange={setMaxDeliver} error={save.fieldError('maxDeliver')} hint="-1 for no limit." />
          <Field label="Max ack pending" name="maxAckPending" value={maxAckPending} onChange={setMaxAckPending} error={save.fieldError('maxAckPending')} />
          <ErrorBox error={save.error} />
          <div className="actions">
            <button type="submit" disabled={save.busy}>
              Save
            </button>
          </div>
        </fieldset>
      </form>
      <div className="card">
        <h2>Settings</h2>
        <dl className="kv">
          <dt>Deliver policy</dt>
          <dd>{cfg.deliverPolicy}</dd>
          <dt>Replay</dt>
          <dd>{cfg.replayPolicy}</dd>
          <dt>Backoff</dt>
          <dd>{cfg.backoff.join(', ') || '—'}</dd>
          <dt>Max waiting</dt>
          <dd>{fmtNum(cfg.maxWaiting)}</dd>
          <dt>Inactive threshold</dt>
          <dd>{cfg.inactiveThreshold}</dd>
          <dt>Replicas</dt>
          <dd>{cfg.replicas || 'as the stream'}</dd>
          <dt>Headers only</dt>
          <dd>{cfg.headersOnly ? 'yes' : 'no'}</dd>
          {cfg.deliverSubject && (
            <>
              <dt>Deliver subject</dt>
              <dd className="mono">{cfg.deliverSubject}</dd>
            </>
          )}
        </dl>
        <p className="muted small">
          Created by <Actor actor={c.provenance.createdBy} /> on {fmtTime(c.provenance.createdAt)}; last changed by <Actor actor={c.provenance.updatedBy} />
          {c.provenance.lastChangeExternal && ' outside the console'} on {fmtTime(c.provenance.updatedAt)}.
        </p>
      </div>
    </div>
  );
}

function DeadLetterList({ clusterId, stream, name }: { clusterId: string; stream: string; name: string }) {
  const canOperate = useCan('OPERATOR');
  const q = useQuery(DeadLetters, { clusterId, stream, name });
  const [redriving, setRedriving] = useState(false);
  if (q.error) return <ErrorBox error={q.error} />;
  if (!q.data) return <Loading what="dead letters" />;
  const nodes = q.data.consumer?.deadLetters.nodes ?? [];
  if (!nodes.length)
    return <p className="empty">No dead letter: no message of this consumer ran out of deliveries or was terminated.</p>;
  return (
    <>
      <div className="toolbar">
        <span className="muted small">{fmtNum(q.data.consumer?.deadLetters.totalCount)} dead letters</span>
        <span className="spacer" />
        {canOperate && <button onClick={() => setRedriving(true)}>Redrive</button>}
      </div>
      <Dialog title="Redrive dead letters" open={redriving} onClose={() => setRedriving(false)} wide>
        <RepublishForm source={{ kind: 'dead-letters', clusterId, stream, consumer: name }} />
      </Dialog>
    <Table
      caption="Dead letters"
      rows={nodes}
      rowKey={(d) => `${d.streamSequence}-${d.time}`}
      columns={[
        ['Sequence', (d) => d.streamSequence, 'num'],
        ['Reason', (d) => <>{d.reason}{d.detail && <div className="muted small">{d.detail}</div>}</>],
        ['Deliveries', (d) => d.deliveries, 'num'],
        ['When', (d) => fmtTime(d.time), 'small'],
        ['Message', (d) => (d.message ? `${d.message.subject}: ${d.message.payload.text}` : 'no longer in the stream'), 'mono small ellipsis'],
      ]}
    />
    </>
  );
}
