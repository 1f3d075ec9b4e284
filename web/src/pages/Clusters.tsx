// Clusters: the list with health, the add-cluster wizard (every auth kind, TLS, test
// connection), the detail page (server, JetStream account against its limits, streams), edit
// and remove.
import { useState } from 'react';
import { request, useQuery, useSubscription } from '../api';
import { ClusterRole, atLeast, useOrg } from '../App';
import { graphql } from '../gql';
import type { ClusterAuthKind, ClusterDetailQuery } from '../gql/graphql';
import { enc, navigate } from '../router';
import {
  Actor,
  Check,
  Dialog,
  ErrorBox,
  Field,
  Link,
  Loading,
  Meter,
  PageHeader,
  Select,
  Stat,
  Tabs,
  TypedConfirm,
  ago,
  ActionForm,
  Table,
  checkFields,
  splitList,
  fmtBytes,
  fmtLimit,
  fmtNum,
  fmtTime,
  useAction,
} from '../ui';
import { StreamList } from './Streams';

const ClusterList = graphql(`
  query ClusterList($org: ID) {
    clusters(organizationId: $org, first: 500) {
      totalCount
      nodes {
        id
        name
        urls
        tags
        description
        auth {
          kind
        }
        ...ClusterHealth
      }
    }
  }
  fragment ClusterHealth on Cluster {
    lastConnectionTest {
      ok
      testedAt
      serverVersion
      error
    }
    lastSample {
      sampledAt
      up
      jetstream
      streams
      error
    }
  }
`);

const ClusterChanges = graphql(`
  subscription ClusterChanges {
    clusterChanged {
      kind
      clusterId
    }
  }
`);

const Register = graphql(`
  mutation RegisterCluster($input: RegisterClusterInput!) {
    registerCluster(input: $input) {
      cluster {
        id
        name
      }
    }
  }
`);

const Update = graphql(`
  mutation UpdateCluster($input: UpdateClusterInput!) {
    updateCluster(input: $input) {
      cluster {
        id
      }
    }
  }
`);

const Remove = graphql(`
  mutation RemoveCluster($id: ID!) {
    removeCluster(input: { id: $id }) {
      correlationId
    }
  }
`);

const TestConnection = graphql(`
  mutation TestConnection($id: ID!) {
    testClusterConnection(input: { id: $id }) {
      test {
        ok
        testedAt
        serverVersion
        serverName
        jetstream
        rttMs
        error
        account {
          streams
          storage
        }
      }
    }
  }
`);

type Health = { label: string; cls: string };
function health(c: {
  lastConnectionTest?: { ok: boolean } | null;
  lastSample?: { up: boolean; jetstream: boolean } | null;
}): Health {
  if (c.lastSample) {
    if (!c.lastSample.up) return { label: 'Unreachable', cls: 'bad' };
    if (!c.lastSample.jetstream) return { label: 'No JetStream', cls: 'warn' };
    return { label: 'Healthy', cls: 'ok' };
  }
  if (c.lastConnectionTest) return c.lastConnectionTest.ok ? { label: 'Reachable', cls: 'ok' } : { label: 'Failed test', cls: 'bad' };
  return { label: 'Not tested', cls: 'muted' };
}

export function Clusters() {
  const { org } = useOrg();
  const list = useQuery(ClusterList, { org: org.id });
  useSubscription(ClusterChanges, {}, () => list.reload());
  const [adding, setAdding] = useState(false);
  const canEdit = atLeast(org.role, 'ADMIN');
  return (
    <section>
      <PageHeader
        title="Clusters"
        sub={`The NATS clusters ${org.name} manages.`}
        actions={canEdit && <button onClick={() => setAdding(true)}>Add cluster</button>}
      />
      <ErrorBox error={list.error} />
      {!list.data ? (
        <Loading what="clusters" />
      ) : list.data.clusters.nodes.length === 0 ? (
        <p className="empty">No cluster yet. {canEdit ? 'Add one to start.' : 'Ask an admin to add one.'}</p>
      ) : (
        <Table
          caption="Clusters"
          rows={list.data.clusters.nodes}
          rowKey={(c) => c.id}
          columns={[
            [
              'Name',
              (c) => (
                <>
                  <Link to={`/clusters/${enc(c.id)}`}>{c.name}</Link>
                  {c.description && <div className="muted small">{c.description}</div>}
                </>
              ),
            ],
            [
              'Health',
              (c) => {
                const h = health(c);
                return <span className={`badge ${h.cls}`}>{h.label}</span>;
              },
            ],
            ['Servers', (c) => c.urls.join(', '), 'mono small'],
            ['Streams', (c) => fmtNum(c.lastSample?.streams)],
            ['Last seen', (c) => ago(c.lastSample?.sampledAt ?? c.lastConnectionTest?.testedAt)],
            [
              'Tags',
              (c) =>
                c.tags.map((t) => (
                  <span key={t} className="tag">
                    {t}
                  </span>
                )),
            ],
          ]}
        />
      )}
      <Dialog title="Add a cluster" open={adding} onClose={() => setAdding(false)} wide>
        <ClusterForm
          onDone={(id) => {
            setAdding(false);
            navigate(`/clusters/${enc(id)}`);
          }}
        />
      </Dialog>
    </section>
  );
}

type ClusterInit = {
  id: string;
  name: string;
  urls: string[];
  tags: string[];
  description: string;
  auth: { kind: ClusterAuthKind; username?: string | null };
  tls: { required: boolean; handshakeFirst: boolean; caCertPem?: string | null };
  metricsInterval?: number | null;
};

const AUTH_KINDS: readonly ClusterAuthKind[] = ['NONE', 'USER_PASSWORD', 'TOKEN', 'NKEY', 'CREDENTIALS'];

/** The add/edit wizard: where, how to authenticate, then save and test the connection. */
function ClusterForm({ init, onDone }: { init?: ClusterInit; onDone: (id: string) => void }) {
  const { org } = useOrg();
  const [step, setStep] = useState(1);
  const [name, setName] = useState(init?.name ?? '');
  const [urls, setUrls] = useState(init?.urls.join(', ') ?? 'nats://127.0.0.1:4222');
  const [tags, setTags] = useState(init?.tags.join(', ') ?? '');
  const [description, setDescription] = useState(init?.description ?? '');
  const [interval, setInterval] = useState(init?.metricsInterval?.toString() ?? '');
  const [kind, setKind] = useState<ClusterAuthKind>(init?.auth.kind ?? 'NONE');
  const [username, setUsername] = useState(init?.auth.username ?? '');
  const [secret, setSecret] = useState('');
  const [tlsRequired, setTlsRequired] = useState(init?.tls.required ?? false);
  const [ca, setCa] = useState(init?.tls.caCertPem ?? '');
  const [saved, setSaved] = useState<string | null>(init?.id ?? null);
  const [test, setTest] = useState<{ ok: boolean; serverVersion?: string | null; rttMs?: number | null; error?: string | null } | null>(null);
  const auth = () => {
    if (init && kind === init.auth.kind && !secret && (username || null) === (init.auth.username || null)) return undefined;
    return {
      kind,
      username: kind === 'USER_PASSWORD' ? username : undefined,
      password: kind === 'USER_PASSWORD' ? secret : undefined,
      token: kind === 'TOKEN' ? secret : undefined,
      nkeySeed: kind === 'NKEY' ? secret : undefined,
      credentials: kind === 'CREDENTIALS' ? secret : undefined,
    };
  };
  const save = useAction(async () => {
    checkFields([['metricsInterval', interval, 'integer']]);
    const metricsInterval = interval.trim() ? Number(interval) : init ? 0 : undefined;
    const tls = { required: tlsRequired, handshakeFirst: false, caCertPem: ca.trim() || undefined };
    if (init) {
      await request(Update, {
        input: { id: init.id, name, urls: splitList(urls), tags: splitList(tags), description, auth: auth(), tls, metricsInterval },
      });
      setSaved(init.id);
    } else {
      const r = await request(Register, {
        input: { organizationId: org.id, name, urls: splitList(urls), tags: splitList(tags), description, auth: auth(), tls, metricsInterval },
      });
      setSaved(r.registerCluster.cluster.id);
    }
    setStep(3);
  });
  const tester = useAction(async () => {
    const r = await request(TestConnection, { id: saved! });
    setTest(r.testClusterConnection.test);
  });
  const secretLabel: Record<ClusterAuthKind, string> = {
    NONE: '',
    USER_PASSWORD: 'Password',
    TOKEN: 'Token',
    NKEY: 'NKey seed (SU…)',
    CREDENTIALS: 'Credentials file (.creds contents)',
  };
  return (
    <div className="wizard">
      <ol className="steps" aria-label="Steps">
        {['Where', 'Authentication', 'Test'].map((s, i) => (
          <li key={s} className={step === i + 1 ? 'current' : undefined} aria-current={step === i + 1 ? 'step' : undefined}>
            {i + 1}. {s}
          </li>
        ))}
      </ol>
      {step === 1 && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setStep(2);
          }}
        >
          <Field label="Name" name="name" value={name} onChange={setName} required error={save.fieldError('name')} hint="Unique in the organization, e.g. prod-eu." />
          <Field label="Server URLs" name="urls" value={urls} onChange={setUrls} required error={save.fieldError('urls')} hint="Comma-separated, e.g. nats://n1:4222, nats://n2:4222." />
          <Field label="Tags" name="tags" value={tags} onChange={setTags} error={save.fieldError('tags')} hint="Comma-separated, e.g. prod, eu." />
          <Field label="Description" name="description" value={description} onChange={setDescription} error={save.fieldError('description')} />
          <Field
            label="Sample every (seconds)"
            name="metricsInterval"
            value={interval}
            onChange={setInterval}
            error={save.fieldError('metricsInterval')}
            hint="1 to 3600; empty for the console's default (10 s)."
          />
          <div className="actions">
            <button type="submit">Next</button>
          </div>
        </form>
      )}
      {step === 2 && (
        <ActionForm act={save}>
          <Select label="Authentication" name="auth" value={kind} options={AUTH_KINDS} onChange={setKind} />
          {kind === 'USER_PASSWORD' && <Field label="Username" name="username" value={username} onChange={setUsername} autoComplete="off" error={save.fieldError('username')} />}
          {kind !== 'NONE' && (
            <Field
              label={secretLabel[kind]}
              name="secret"
              type={kind === 'CREDENTIALS' ? 'text' : 'password'}
              multiline={kind === 'CREDENTIALS'}
              value={secret}
              onChange={setSecret}
              autoComplete="new-password"
              error={save.fieldError('password') ?? save.fieldError('token') ?? save.fieldError('nkeySeed') ?? save.fieldError('credentials')}
              hint={init ? 'Leave empty to keep the one stored. It is sealed, never shown again.' : 'Sealed on the console, never shown again.'}
            />
          )}
          <Check label="Require TLS" checked={tlsRequired} onChange={setTlsRequired} />
          {tlsRequired && <Field label="CA certificate (PEM)" name="ca" multiline value={ca} onChange={setCa} error={save.fieldError('caCertPem')} />}
          <ErrorBox error={save.error} />
          <div className="actions">
            <button type="button" className="secondary" onClick={() => setStep(1)}>
              Back
            </button>
            <button type="submit" disabled={save.busy}>
              {init ? 'Save changes' : 'Add cluster'}
            </button>
          </div>
        </ActionForm>
      )}
      {step === 3 && saved && (
        <div>
          <p>
            {init ? 'Saved.' : 'Added.'} Test that the console can reach <strong>{name}</strong>:
          </p>
          <button type="button" onClick={() => void tester.run()} disabled={tester.busy}>
            {tester.busy ? 'Testing…' : 'Test connection'}
          </button>
          <ErrorBox error={tester.error} />
          {test && (
            <div className={`result ${test.ok ? 'ok' : 'bad'}`} role="status">
              {test.ok ? (
                <>
                  Connected: nats-server {test.serverVersion}, round trip {test.rttMs?.toFixed(1)} ms.
                </>
              ) : (
                <>Failed: {test.error}</>
              )}
            </div>
          )}
          <div className="actions">
            <button type="button" onClick={() => onDone(saved)}>
              Done
            </button>
          </div>
        </div>
      )}
    </div>
  );
}

const ClusterDetail = graphql(`
  query ClusterDetail($id: ID!) {
    cluster(id: $id) {
      id
      name
      myRole
      urls
      tags
      description
      metricsInterval
      auth {
        kind
        username
      }
      tls {
        required
        handshakeFirst
        caCertPem
      }
      createdAt
      createdBy
      updatedAt
      updatedBy
      ...ClusterHealth
    }
  }
`);

const ClusterLive = graphql(`
  query ClusterLive($id: ID!) {
    cluster(id: $id) {
      id
      server {
        name
        id
        version
        jetstream
        clusterName
        domain
        maxPayload
        connectUrls
        lameDuckMode
        rttMs
        healthy
      }
      jetstreamAccount {
        memory
        storage
        streams
        consumers
        maxMemory
        maxStorage
        maxStreams
        maxConsumers
      }
    }
  }
`);

export function ClusterPage({ id, tab }: { id: string; tab: string }) {
  const q = useQuery(ClusterDetail, { id });
  useSubscription(ClusterChanges, {}, (d) => d.clusterChanged.clusterId === id && q.reload());
  const [editing, setEditing] = useState(false);
  const [removing, setRemoving] = useState(false);
  const tester = useAction(async () => {
    await request(TestConnection, { id });
    q.reload();
  });
  const c = q.data?.cluster;
  const base = `/clusters/${enc(id)}`;
  if (q.error && !c) return <ErrorBox error={q.error} />;
  if (!q.data) return <Loading what="the cluster" />;
  if (!c) return <ErrorBox error={`There is no cluster ${id}: it may have been removed.`} />;
  const canEdit = atLeast(c.myRole, 'ADMIN');
  const h = health(c);
  return (
    <ClusterRole.Provider value={c.myRole}>
    <section>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/clusters">Clusters</Link> / <span>{c.name}</span>
      </nav>
      <PageHeader
        title={c.name}
        sub={
          <>
            <span className={`badge ${h.cls}`}>{h.label}</span> {c.urls.join(', ')}
          </>
        }
        actions={
          <>
            {atLeast(c.myRole, 'OPERATOR') && (
              <button className="secondary" onClick={() => void tester.run()} disabled={tester.busy}>
                {tester.busy ? 'Testing…' : 'Test connection'}
              </button>
            )}
            {canEdit && (
              <>
              <button className="secondary" onClick={() => setEditing(true)}>
                Edit
              </button>
              <button className="danger" onClick={() => setRemoving(true)}>
                Remove
              </button>
              </>
            )}
          </>
        }
      />
      <ErrorBox error={tester.error} />
      <Tabs
        base={base}
        current={tab}
        tabs={[
          ['', 'Overview'],
          ['streams', 'Streams'],
        ]}
      />
      {tab === '' && <ClusterOverview id={id} c={c} />}
      {tab === 'streams' && <StreamList clusterId={id} />}
      <Dialog title={`Edit ${c.name}`} open={editing} onClose={() => setEditing(false)} wide>
        <ClusterForm
          init={c}
          onDone={() => {
            setEditing(false);
            q.reload();
          }}
        />
      </Dialog>
      <Dialog title={`Remove ${c.name}`} open={removing} onClose={() => setRemoving(false)}>
        <p>The console stops managing this cluster; nothing on the cluster itself changes.</p>
        <TypedConfirm
          what="cluster"
          name={c.name}
          action="Remove"
          onConfirm={() => request(Remove, { id })}
          onDone={() => navigate('/clusters')}
        />
      </Dialog>
    </section>
    </ClusterRole.Provider>
  );
}

function ClusterOverview({ id, c }: { id: string; c: NonNullable<ClusterDetailQuery['cluster']> }) {
  const live = useQuery(ClusterLive, { id });
  const s = live.data?.cluster?.server;
  const a = live.data?.cluster?.jetstreamAccount;
  return (
    <div className="grid">
      <div className="card">
        <h2>Server</h2>
        <ErrorBox error={live.error} />
        {!live.data && !live.error && <Loading what="server information" />}
        {s && (
          <dl className="kv">
            <dt>Name</dt>
            <dd>{s.name}</dd>
            <dt>Version</dt>
            <dd>{s.version}</dd>
            <dt>Health</dt>
            <dd>
              <span className={`badge ${s.healthy ? 'ok' : 'bad'}`}>{s.healthy ? 'Healthy' : 'Unhealthy'}</span>
              {s.lameDuckMode && <span className="badge warn">Lame duck</span>}
            </dd>
            <dt>JetStream</dt>
            <dd>{s.jetstream ? 'enabled' : 'disabled'}</dd>
            <dt>Cluster</dt>
            <dd>{s.clusterName ?? '—'}</dd>
            <dt>Domain</dt>
            <dd>{s.domain ?? '—'}</dd>
            <dt>Round trip</dt>
            <dd>{s.rttMs != null ? `${s.rttMs.toFixed(1)} ms` : '—'}</dd>
            <dt>Max payload</dt>
            <dd>{fmtBytes(s.maxPayload)}</dd>
            <dt>Server ID</dt>
            <dd className="mono small">{s.id}</dd>
          </dl>
        )}
      </div>
      <div className="card">
        <h2>JetStream account</h2>
        {a ? (
          <>
            <Meter label={`Storage ${fmtBytes(a.storage)} of ${fmtLimit(a.maxStorage, true)}`} used={a.storage} limit={a.maxStorage} />
            <Meter label={`Memory ${fmtBytes(a.memory)} of ${fmtLimit(a.maxMemory, true)}`} used={a.memory} limit={a.maxMemory} />
            <Meter label={`Streams ${fmtNum(a.streams)} of ${fmtLimit(a.maxStreams)}`} used={a.streams} limit={a.maxStreams} />
            <Meter label={`Consumers ${fmtNum(a.consumers)} of ${fmtLimit(a.maxConsumers)}`} used={a.consumers} limit={a.maxConsumers} />
          </>
        ) : (
          !live.error && live.data && <p className="muted">No JetStream account information.</p>
        )}
      </div>
      <div className="card">
        <h2>Registration</h2>
        <div className="stats">
          <Stat label="Authentication" value={c.auth.kind} sub={c.auth.username ?? undefined} />
          <Stat label="TLS" value={c.tls.required ? 'required' : 'off'} />
          <Stat label="Last test" value={c.lastConnectionTest ? (c.lastConnectionTest.ok ? 'passed' : 'failed') : 'never'} sub={fmtTime(c.lastConnectionTest?.testedAt)} />
        </div>
        <p className="muted small">
          Added by <Actor actor={c.createdBy} /> on {fmtTime(c.createdAt)}; last changed by <Actor actor={c.updatedBy} /> on {fmtTime(c.updatedAt)}.
        </p>
      </div>
    </div>
  );
}
