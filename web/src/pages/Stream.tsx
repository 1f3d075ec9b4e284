// A stream: overview (state, live), messages (browse, tail, publish), consumers, configuration
// (edit with a diff before saving; purge, seal, delete with typed confirmation), metrics, and
// history (per-field diffs, the state at any event).
import { useMemo, useState } from 'react';
import { request, useQuery, useSubscription } from '../api';
import { ClusterRole, useCan } from '../App';
import { graphql } from '../gql';
import type { StreamDetailQuery, DiscardPolicy, AckPolicy, DeliverPolicy } from '../gql/graphql';
import { enc, navigate } from '../router';
import {
  Actor,
  Check,
  Dialog,
  ErrorBox,
  Field,
  Link,
  Loading,
  PageHeader,
  Select,
  Stat,
  Tabs,
  TypedConfirm,
  ago,
  checkFields,
  count,
  ActionForm,
  Table,
  splitList,
  fmtBytes,
  fmtLimit,
  fmtNum,
  fmtTime,
  useAction,
} from '../ui';
import { History } from './History';
import { Messages } from './Messages';
import { Chart } from './Chart';

const StreamDetail = graphql(`
  query StreamDetail($clusterId: ID!, $name: String!) {
    cluster(id: $clusterId) {
      id
      name
      myRole
    }
    stream(clusterId: $clusterId, name: $name) {
      id
      name
      version
      lastPurgedAt
      config {
        name
        description
        subjects
        retention
        storage
        replicas
        maxConsumers
        maxMsgs
        maxBytes
        maxAge
        maxMsgsPerSubject
        maxMsgSize
        discard
        duplicateWindow
        compression
        allowDirect
        allowRollup
        denyDelete
        denyPurge
        sealed
        allowMsgTtl
      }
      provenance {
        createdAt
        createdBy
        updatedAt
        updatedBy
        lastChangeExternal
        lastChangeClient
      }
      state {
        ...StreamStateF
      }
    }
  }
  fragment StreamStateF on StreamState {
    messages
    bytes
    firstSeq
    firstTime
    lastSeq
    lastTime
    consumerCount
    numSubjects
    numDeleted
  }
`);

const StreamLive = graphql(`
  subscription StreamLive($clusterId: ID!, $name: String!) {
    streamChanged(clusterId: $clusterId, name: $name, includeState: true) {
      kind
      state {
        ...StreamStateF
      }
    }
  }
`);

type StreamT = NonNullable<StreamDetailQuery['stream']>;
type StateT = NonNullable<StreamT['state']>;

export function StreamPage({ id, stream, tab }: { id: string; stream: string; tab: string }) {
  const q = useQuery(StreamDetail, { clusterId: id, name: stream });
  const [live, setLive] = useState<StateT | null>(null);
  useSubscription(StreamLive, { clusterId: id, name: stream }, (d) => {
    if (d.streamChanged.state) setLive(d.streamChanged.state);
    if (d.streamChanged.kind !== 'STATE') q.reload();
  });
  const s = q.data?.stream;
  if (q.error && !s) return <ErrorBox error={q.error} />;
  if (!q.data) return <Loading what="the stream" />;
  if (!s) return <ErrorBox error={`There is no stream ${stream} on this cluster: it may have been deleted.`} />;
  const state = live ?? s.state;
  const base = `/clusters/${enc(id)}/streams/${enc(stream)}`;
  return (
    <ClusterRole.Provider value={q.data.cluster?.myRole ?? null}>
    <section>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/clusters">Clusters</Link> / <Link to={`/clusters/${enc(id)}/streams`}>{q.data.cluster?.name ?? id}</Link> /{' '}
        <span>{s.name}</span>
      </nav>
      <PageHeader
        title={s.name}
        sub={
          <>
            {s.config.subjects.join(', ') || 'no subjects'} · {s.config.storage.toLowerCase()} · R{s.config.replicas}
            {s.config.sealed && <span className="badge muted">sealed</span>}
          </>
        }
      />
      <Tabs
        base={base}
        current={tab}
        tabs={[
          ['', 'Overview'],
          ['messages', 'Messages'],
          ['consumers', 'Consumers'],
          ['metrics', 'Metrics'],
          ['config', 'Configuration'],
          ['history', 'History'],
        ]}
      />
      {tab === '' && <Overview s={s} state={state} />}
      {tab === 'messages' && <Messages clusterId={id} stream={stream} subjects={s.config.subjects} />}
      {tab === 'consumers' && <Consumers clusterId={id} stream={stream} />}
      {tab === 'metrics' && <StreamMetrics clusterId={id} stream={stream} />}
      {tab === 'config' && <Config clusterId={id} s={s} onSaved={q.reload} />}
      {tab === 'history' && <History aggregateType="STREAM" id={`${id}/${stream}`} />}
    </section>
    </ClusterRole.Provider>
  );
}

function Overview({ s, state }: { s: StreamT; state: StateT | null | undefined }) {
  return (
    <div className="grid">
      <div className="card wide">
        <h2>State</h2>
        {state ? (
          <div className="stats">
            <Stat label="Messages" value={fmtNum(state.messages)} sub={s.config.maxMsgs > 0 ? `of ${fmtNum(s.config.maxMsgs)}` : undefined} />
            <Stat label="Size" value={fmtBytes(state.bytes)} sub={s.config.maxBytes > 0 ? `of ${fmtBytes(s.config.maxBytes)}` : undefined} />
            <Stat label="First sequence" value={fmtNum(state.firstSeq)} sub={fmtTime(state.firstTime)} />
            <Stat label="Last sequence" value={fmtNum(state.lastSeq)} sub={state.lastTime ? ago(state.lastTime) : undefined} />
            <Stat label="Subjects" value={fmtNum(state.numSubjects)} />
            <Stat label="Consumers" value={fmtNum(state.consumerCount)} />
            <Stat label="Deleted" value={fmtNum(state.numDeleted)} />
          </div>
        ) : (
          <p className="muted">The cluster did not answer with this stream's state.</p>
        )}
      </div>
      <div className="card">
        <h2>Limits</h2>
        <dl className="kv">
          <dt>Retention</dt>
          <dd>{s.config.retention}</dd>
          <dt>Max age</dt>
          <dd>{s.config.maxAge === '0s' ? 'forever' : s.config.maxAge}</dd>
          <dt>Max size</dt>
          <dd>{fmtLimit(s.config.maxBytes, true)}</dd>
          <dt>Max messages</dt>
          <dd>{fmtLimit(s.config.maxMsgs)}</dd>
          <dt>Per subject</dt>
          <dd>{fmtLimit(s.config.maxMsgsPerSubject)}</dd>
          <dt>Discard</dt>
          <dd>{s.config.discard}</dd>
        </dl>
      </div>
      <div className="card">
        <h2>Provenance</h2>
        <p className="small">
          Created by <Actor actor={s.provenance.createdBy} /> on {fmtTime(s.provenance.createdAt)}.
          <br />
          Last changed by <Actor actor={s.provenance.updatedBy} /> on {fmtTime(s.provenance.updatedAt)}
          {s.provenance.lastChangeExternal && <> outside the console{s.provenance.lastChangeClient && ` (${s.provenance.lastChangeClient})`}</>}.
        </p>
        {s.config.description && <p>{s.config.description}</p>}
      </div>
    </div>
  );
}

// ---- consumers -------------------------------------------------------------------------------

const ConsumerList = graphql(`
  query ConsumerList($clusterId: ID!, $name: String!) {
    stream(clusterId: $clusterId, name: $name) {
      id
      consumers(first: 500) {
        totalCount
        nodes {
          name
          config {
            ackPolicy
            filterSubjects
            isPush
            pauseUntil
          }
          state {
            ...ConsumerRowState
          }
        }
      }
    }
  }
  fragment ConsumerRowState on ConsumerState {
    pending
    ackPending
    redelivered
    waiting
    lastActive
    paused
  }
`);

const ConsumerChanges = graphql(`
  subscription ConsumerListChanges($clusterId: ID!, $stream: String!) {
    consumerChanged(clusterId: $clusterId, stream: $stream, includeState: true) {
      kind
      name
      state {
        ...ConsumerRowState
      }
    }
  }
`);

const CreateConsumer = graphql(`
  mutation CreateConsumer($input: CreateConsumerInput!) {
    createConsumer(input: $input) {
      consumer {
        name
      }
    }
  }
`);

function Consumers({ clusterId, stream }: { clusterId: string; stream: string }) {
  const canCreate = useCan('OPERATOR');
  const q = useQuery(ConsumerList, { clusterId, name: stream });
  type St = NonNullable<NonNullable<typeof q.data>['stream']>['consumers']['nodes'][number]['state'];
  const [states, setStates] = useState<Record<string, St>>({});
  useSubscription(ConsumerChanges, { clusterId, stream }, (d) => {
    const c = d.consumerChanged;
    if (c.state) setStates((s) => ({ ...s, [c.name]: c.state }));
    if (c.kind !== 'STATE') q.reload();
  });
  const [creating, setCreating] = useState(false);
  const base = `/clusters/${enc(clusterId)}/streams/${enc(stream)}/consumers/`;
  const nodes = q.data?.stream?.consumers.nodes;
  return (
    <div>
      <div className="toolbar">
        <span className="muted small">{nodes ? count(nodes.length, 'consumer') : ''}</span>
        <span className="spacer" />
        {canCreate && <button onClick={() => setCreating(true)}>Create consumer</button>}
      </div>
      <ErrorBox error={q.error} />
      {!nodes ? (
        <Loading what="consumers" />
      ) : nodes.length === 0 ? (
        <p className="empty">No consumer reads this stream yet.</p>
      ) : (
        <Table
          caption={`Consumers of ${stream}`}
          // Each consumer with its latest state: from the subscription once it has sent one.
          rows={nodes.map((c) => ({ ...c, st: states[c.name] ?? c.state }))}
          rowKey={(c) => c.name}
          columns={[
            [
              'Name',
              (c) => (
                <>
                  <Link to={base + enc(c.name)}>{c.name}</Link> {c.config.isPush && <span className="badge muted">push</span>}
                  {c.st?.paused && <span className="badge warn">paused</span>}
                </>
              ),
            ],
            ['Lag (pending)', (c) => <span data-testid={`lag-${c.name}`}>{fmtNum(c.st?.pending)}</span>, 'num'],
            ['Ack pending', (c) => fmtNum(c.st?.ackPending), 'num'],
            ['Redelivered', (c) => fmtNum(c.st?.redelivered), 'num'],
            ['Filter', (c) => c.config.filterSubjects.join(', ') || '—', 'mono small'],
            ['Last active', (c) => ago(c.st?.lastActive)],
          ]}
        />
      )}
      <Dialog title="Create a consumer" open={creating} onClose={() => setCreating(false)} wide>
        <CreateConsumerForm
          clusterId={clusterId}
          stream={stream}
          onDone={(name) => {
            setCreating(false);
            navigate(base + enc(name));
          }}
        />
      </Dialog>
    </div>
  );
}

const ACKS: readonly AckPolicy[] = ['EXPLICIT', 'NONE', 'ALL'];
const DELIVERS: readonly DeliverPolicy[] = ['ALL', 'LAST', 'NEW', 'LAST_PER_SUBJECT'];

function CreateConsumerForm({ clusterId, stream, onDone }: { clusterId: string; stream: string; onDone: (n: string) => void }) {
  const [name, setName] = useState('');
  const [filter, setFilter] = useState('');
  const [ack, setAck] = useState<AckPolicy>('EXPLICIT');
  const [deliver, setDeliver] = useState<DeliverPolicy>('ALL');
  const [ackWait, setAckWait] = useState('30s');
  const [maxDeliver, setMaxDeliver] = useState('');
  const act = useAction(async () => {
    checkFields([
      ['ackWait', ackWait, 'duration'],
      ['maxDeliver', maxDeliver, 'integer'],
    ]);
    await request(CreateConsumer, {
      input: {
        clusterId,
        stream,
        config: {
          durableName: name,
          filterSubjects: splitList(filter),
          ackPolicy: ack,
          deliverPolicy: deliver,
          ackWait: ackWait || undefined,
          maxDeliver: maxDeliver ? Number(maxDeliver) : undefined,
        },
      },
    });
    onDone(name);
  });
  return (
    <ActionForm act={act}>
      <Field label="Durable name" name="durableName" value={name} onChange={setName} required error={act.fieldError('durableName')} />
      <Field label="Filter subjects" name="filterSubjects" value={filter} onChange={setFilter} error={act.fieldError('filterSubjects')} hint="Comma-separated; empty for every subject." />
      <div className="row">
        <Select label="Ack policy" name="ackPolicy" value={ack} options={ACKS} onChange={setAck} />
        <Select label="Deliver" name="deliverPolicy" value={deliver} options={DELIVERS} onChange={setDeliver} />
      </div>
      <div className="row">
        <Field label="Ack wait" name="ackWait" value={ackWait} onChange={setAckWait} error={act.fieldError('ackWait')} />
        <Field label="Max deliveries" name="maxDeliver" type="number" value={maxDeliver} onChange={setMaxDeliver} error={act.fieldError('maxDeliver')} hint="Empty for no limit." />
      </div>
      <ErrorBox error={act.error} />
      <div className="actions">
        <button type="submit" disabled={act.busy}>
          Create consumer
        </button>
      </div>
    </ActionForm>
  );
}

// ---- metrics ----------------------------------------------------------------------------------

function StreamMetrics({ clusterId, stream }: { clusterId: string; stream: string }) {
  const [range, setRange] = useState<'1h' | '6h' | '24h' | '7d'>('1h');
  return (
    <div>
      <div className="toolbar">
        <Select label="Range" name="range" value={range} options={['1h', '6h', '24h', '7d'] as const} onChange={setRange} />
      </div>
      <div className="grid">
        <Chart title="Messages in per second" range={range} series={[{ metric: 'STREAM_MESSAGE_RATE', clusterId, stream }]} />
        <Chart title="Bytes in per second" range={range} series={[{ metric: 'STREAM_BYTE_RATE', clusterId, stream }]} unit="bytes" />
        <Chart title="Messages stored" range={range} series={[{ metric: 'STREAM_MESSAGES', clusterId, stream }]} />
        <Chart title="Largest consumer lag" range={range} series={[{ metric: 'STREAM_MAX_CONSUMER_LAG', clusterId, stream }]} />
      </div>
    </div>
  );
}

// ---- configuration ---------------------------------------------------------------------------

const UpdateStream = graphql(`
  mutation UpdateStream($input: UpdateStreamInput!) {
    updateStream(input: $input) {
      stream {
        version
      }
    }
  }
`);

const Purge = graphql(`
  mutation PurgeStream($clusterId: ID!, $name: String!) {
    purgeStream(input: { clusterId: $clusterId, name: $name }) {
      purged
    }
  }
`);

const Seal = graphql(`
  mutation SealStream($clusterId: ID!, $name: String!) {
    sealStream(input: { clusterId: $clusterId, name: $name }) {
      correlationId
    }
  }
`);

const Delete = graphql(`
  mutation DeleteStream($clusterId: ID!, $name: String!) {
    deleteStream(input: { clusterId: $clusterId, name: $name, confirmName: $name }) {
      correlationId
    }
  }
`);

type Editable = {
  description: string;
  subjects: string;
  maxAge: string;
  maxBytes: string;
  maxMsgs: string;
  maxMsgsPerSubject: string;
  maxMsgSize: string;
  duplicateWindow: string;
  discard: DiscardPolicy;
  replicas: string;
  allowDirect: boolean;
  allowRollup: boolean;
  denyDelete: boolean;
  denyPurge: boolean;
};

function editable(s: StreamT): Editable {
  const c = s.config;
  return {
    description: c.description ?? '',
    subjects: c.subjects.join(', '),
    maxAge: c.maxAge,
    maxBytes: String(c.maxBytes),
    maxMsgs: String(c.maxMsgs),
    maxMsgsPerSubject: String(c.maxMsgsPerSubject),
    maxMsgSize: String(c.maxMsgSize),
    duplicateWindow: c.duplicateWindow,
    discard: c.discard,
    replicas: String(c.replicas),
    allowDirect: c.allowDirect,
    allowRollup: c.allowRollup,
    denyDelete: c.denyDelete,
    denyPurge: c.denyPurge,
  };
}

/** A field of the form as the update sends it. */
function sent(k: keyof Editable, v: Editable[keyof Editable]): unknown {
  if (k === 'subjects')
    return (v as string)
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  if (['maxBytes', 'maxMsgs', 'maxMsgsPerSubject', 'maxMsgSize', 'replicas'].includes(k)) {
    const t = (v as string).trim();
    return t !== '' && Number.isFinite(Number(t)) ? Number(t) : v;
  }
  return v;
}

function Config({ clusterId, s, onSaved }: { clusterId: string; s: StreamT; onSaved: () => void }) {
  const canOperate = useCan('OPERATOR');
  const start = useMemo(() => editable(s), [s]);
  const [form, setForm] = useState<Editable>(start);
  const [preview, setPreview] = useState(false);
  const [danger, setDanger] = useState<'purge' | 'seal' | 'delete' | null>(null);
  const set = <K extends keyof Editable>(k: K) => (v: Editable[K]) => setForm((f) => ({ ...f, [k]: v }));
  // Compared as they would be sent: "a,b" and "a, b" are the same subjects, "010" is 10.
  const changed = (Object.keys(form) as (keyof Editable)[]).filter((k) => JSON.stringify(sent(k, form[k])) !== JSON.stringify(sent(k, start[k])));
  const canEdit = canOperate && !s.config.sealed;
  const check = () =>
    checkFields([
      ['maxAge', form.maxAge, 'duration'],
      ['duplicateWindow', form.duplicateWindow, 'duration'],
      ['maxBytes', form.maxBytes, 'integer'],
      ['maxMsgs', form.maxMsgs, 'integer'],
      ['maxMsgsPerSubject', form.maxMsgsPerSubject, 'integer'],
      ['maxMsgSize', form.maxMsgSize, 'integer'],
      ['replicas', form.replicas, 'integer'],
    ]);
  const save = useAction(async () => {
    check();
    const input: Record<string, unknown> = {};
    for (const k of changed) input[k] = sent(k, form[k]);
    await request(UpdateStream, { input: { clusterId, name: s.name, config: input } });
    setPreview(false);
    onSaved();
  });
  const text = (k: keyof Editable, label: string, hint?: string) => (
    <Field label={label} name={k} value={form[k] as string} onChange={set(k) as (v: string) => void} error={save.fieldError(k)} hint={hint} />
  );
  return (
    <div>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          try {
            check();
            save.setError(null);
            setPreview(true);
          } catch (err) {
            save.setError(err);
          }
        }}
      >
        <fieldset disabled={!canEdit}>
          <legend className="sr-only">Stream configuration</legend>
          {!canEdit && <p className="muted">{s.config.sealed ? 'A sealed stream cannot change.' : 'Your role can read this configuration, not change it.'}</p>}
          {text('description', 'Description')}
          {text('subjects', 'Subjects', 'Comma-separated.')}
          <div className="row">
            {text('maxAge', 'Max age', '0s keeps messages forever.')}
            {text('maxBytes', 'Max bytes', '-1 for no limit.')}
            {text('maxMsgs', 'Max messages', '-1 for no limit.')}
          </div>
          <div className="row">
            {text('maxMsgsPerSubject', 'Max per subject', '-1 for no limit.')}
            {text('maxMsgSize', 'Max message size', '-1 for no limit.')}
            {text('duplicateWindow', 'Duplicate window')}
          </div>
          <div className="row">
            <Select label="Discard" name="discard" value={form.discard} options={['OLD', 'NEW'] as const} onChange={set('discard')} />
            {text('replicas', 'Replicas')}
          </div>
          <div className="row">
            <Check label="Allow direct get" checked={form.allowDirect} onChange={set('allowDirect')} />
            <Check label="Allow roll-ups" checked={form.allowRollup} onChange={set('allowRollup')} />
            <Check label="Deny delete" checked={form.denyDelete} onChange={set('denyDelete')} />
            <Check label="Deny purge" checked={form.denyPurge} onChange={set('denyPurge')} />
          </div>
          <p className="muted small">
            Retention {s.config.retention}, storage {s.config.storage} and compression {s.config.compression} are fixed when a stream is
            created.
          </p>
          {!preview && <ErrorBox error={save.error} />}
          <div className="actions">
            <button type="button" className="secondary" disabled={!changed.length} onClick={() => setForm(start)}>
              Reset
            </button>
            <button type="submit" disabled={!changed.length}>
              Review {changed.length || ''} change{changed.length === 1 ? '' : 's'}
            </button>
          </div>
        </fieldset>
      </form>
      {canOperate && (
        <div className="card danger-zone">
          <h2>Danger zone</h2>
          <div className="actions left">
            <button className="danger" onClick={() => setDanger('purge')} disabled={s.config.denyPurge || s.config.sealed}>
              Purge messages
            </button>
            <button className="danger" onClick={() => setDanger('seal')} disabled={s.config.sealed}>
              Seal
            </button>
            <button className="danger" onClick={() => setDanger('delete')}>
              Delete stream
            </button>
          </div>
        </div>
      )}
      <Dialog title="Review changes" open={preview} onClose={() => setPreview(false)} wide>
        <table className="table diff">
          <caption className="sr-only">Changes to save</caption>
          <thead>
            <tr>
              <th scope="col">Field</th>
              <th scope="col">Now</th>
              <th scope="col">After saving</th>
            </tr>
          </thead>
          <tbody>
            {changed.map((k) => (
              <tr key={k}>
                <td className="mono">{k}</td>
                <td className="before">{String(start[k])}</td>
                <td className="after">{String(form[k])}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <ErrorBox error={save.error} />
        <div className="actions">
          <button className="secondary" onClick={() => setPreview(false)}>
            Keep editing
          </button>
          <button onClick={() => void save.run()} disabled={save.busy}>
            Save {changed.length} change{changed.length === 1 ? '' : 's'}
          </button>
        </div>
      </Dialog>
      <Dialog title={`${danger === 'purge' ? 'Purge' : danger === 'seal' ? 'Seal' : 'Delete'} ${s.name}`} open={!!danger} onClose={() => setDanger(null)}>
        {danger === 'purge' && <p>Every message of the stream is removed; its consumers stay.</p>}
        {danger === 'seal' && <p>The stream takes no more messages, deletes or purges, and its configuration can no longer change.</p>}
        {danger === 'delete' && <p>The stream, its messages and its consumers are removed from the cluster.</p>}
        {danger && (
          <TypedConfirm
            what="stream"
            name={s.name}
            action={danger === 'purge' ? 'Purge' : danger === 'seal' ? 'Seal' : 'Delete'}
            onConfirm={() =>
              danger === 'purge'
                ? request(Purge, { clusterId, name: s.name })
                : danger === 'seal'
                  ? request(Seal, { clusterId, name: s.name })
                  : request(Delete, { clusterId, name: s.name })
            }
            onDone={() => {
              setDanger(null);
              if (danger === 'delete') navigate(`/clusters/${enc(clusterId)}/streams`);
              else onSaved();
            }}
          />
        )}
      </Dialog>
    </div>
  );
}
