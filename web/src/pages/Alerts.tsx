// Alerts: what is firing now (acknowledge, silence), the rules (a builder with a preview
// against the samples already kept), notification channels (test send), silences, and the
// alerts that ended.
import { useState } from 'react';
import { request, useQuery, useSubscription } from '../api';
import { atLeast, useOrg } from '../App';
import { graphql } from '../gql';
import type { AlertConditionKind, AlertSeverity, AlertsListQuery, ChannelKind, RuleListQuery } from '../gql/graphql';
import {
  ActionForm,
  Actor,
  Check,
  Dialog,
  ErrorBox,
  Field,
  Loading,
  PageHeader,
  Resource,
  Select,
  Table,
  Tabs,
  ago,
  checkFields,
  fmtNum,
  fmtTime,
  splitList,
  useAction,
} from '../ui';

const AlertsList = graphql(`
  query AlertsList($org: ID!, $state: [AlertState!]) {
    alerts(organizationId: $org, state: $state, first: 200) {
      nodes {
        id
        state
        since
        firedAt
        value
        threshold
        severity
        ruleName
        clusterId
        stream
        consumer
        firedCount
        updatedAt
        silencedBy
        acknowledgement {
          by
          comment
          at
        }
        annotations {
          name
          value
        }
        deliveries {
          channelName
          status
          ok
          at
          error
        }
      }
    }
  }
`);

const AlertChanges = graphql(`
  subscription AlertChanges($org: ID!) {
    alertChanged(organizationId: $org) {
      sequence
      alert {
        id
        state
      }
    }
  }
`);

const Acknowledge = graphql(`
  mutation AcknowledgeAlert($id: ID!, $comment: String) {
    acknowledgeAlert(input: { id: $id, comment: $comment }) {
      correlationId
    }
  }
`);

const CreateSilence = graphql(`
  mutation CreateSilence($org: ID!, $matchers: [LabelMatcherInput!]!, $endsAt: DateTime!, $comment: String!) {
    createSilence(input: { organizationId: $org, matchers: $matchers, endsAt: $endsAt, comment: $comment }) {
      correlationId
    }
  }
`);

type AlertRow = AlertsListQuery['alerts']['nodes'][number];

export function Alerts({ tab }: { tab: string }) {
  return (
    <section>
      <PageHeader title="Alerts" sub="Warned before a consumer falls behind or a stream fills up." />
      <Tabs
        base="/alerts"
        current={tab}
        tabs={[
          ['', 'Active'],
          ['rules', 'Rules'],
          ['channels', 'Channels'],
          ['silences', 'Silences'],
          ['history', 'Ended'],
        ]}
      />
      {tab === '' && <AlertList key="active" states={['FIRING', 'PENDING']} />}
      {tab === 'history' && <AlertList key="ended" states={['RESOLVED', 'NORMAL']} />}
      {tab === 'rules' && <Rules />}
      {tab === 'channels' && <Channels />}
      {tab === 'silences' && <Silences />}
    </section>
  );
}

function where(a: { clusterId: string; stream?: string | null; consumer?: string | null }) {
  return [a.clusterId, a.stream, a.consumer].filter(Boolean).join(' / ');
}

function times(n: number) {
  return n === 1 ? 'once' : `${n} times`;
}

function AlertList({ states }: { states: ('FIRING' | 'PENDING' | 'RESOLVED' | 'NORMAL')[] }) {
  const { org } = useOrg();
  const q = useQuery(AlertsList, { org: org.id, state: states });
  useSubscription(AlertChanges, { org: org.id }, () => q.reload());
  const [silencing, setSilencing] = useState<AlertRow | null>(null);
  const ack = useAction(async (id: string) => {
    await request(Acknowledge, { id, comment: 'acknowledged in the console' });
    q.reload();
  });
  const canOperate = atLeast(org.role, 'OPERATOR');
  if (!q.data) return q.error ? <ErrorBox error={q.error} /> : <Loading what="alerts" />;
  const nodes = q.data.alerts.nodes;
  if (!nodes.length) return <p className="empty">{states.includes('FIRING') ? 'Nothing is firing.' : 'No alert has ended yet.'}</p>;
  return (
    <>
      <ErrorBox error={ack.error ?? q.error} />
      <Table
        caption="Alerts"
        rows={nodes}
        rowKey={(a) => a.id}
        columns={[
          [
            'Alert',
            (a) => (
              <>
                <span className={`badge ${a.state === 'FIRING' ? (a.severity === 'CRITICAL' ? 'bad' : 'warn') : 'muted'}`}>{a.state.toLowerCase()}</span>{' '}
                <strong>{a.ruleName}</strong>
                <div className="muted small">{a.annotations.find((x) => x.name === 'summary')?.value}</div>
              </>
            ),
          ],
          ['Severity', (a) => a.severity.toLowerCase()],
          ['Where', (a) => <Resource {...a} />, 'small'],
          ['Value', (a) => <>{fmtNum(a.value)}{a.threshold != null && <span className="muted small"> (threshold {fmtNum(a.threshold)})</span>}</>],
          ['Since', (a) => ago(a.firedAt ?? a.since)],
          [
            'Notified',
            (a) =>
              a.deliveries.length ? (
                a.deliveries.slice(-2).map((d, i) => (
                  <div key={i} className="small">
                    {d.channelName}: {d.ok ? 'sent' : (d.error ?? d.status)}
                  </div>
                ))
              ) : (
                <span className="muted small">—</span>
              ),
          ],
          [
            '',
            (a) =>
              a.acknowledgement ? (
                <span className="small">
                  Acknowledged by <Actor actor={a.acknowledgement.by} />
                </span>
              ) : a.silencedBy.length ? (
                <span className="badge muted">silenced</span>
              ) : (
                canOperate &&
                a.state === 'FIRING' && (
                  <span className="actions left">
                    <button className="secondary small" onClick={() => void ack.run(a.id)}>
                      Acknowledge
                    </button>
                    <button className="secondary small" onClick={() => setSilencing(a)}>
                      Silence
                    </button>
                  </span>
                )
              ),
          ],
        ]}
      />
      <Dialog title="Silence this alert" open={!!silencing} onClose={() => setSilencing(null)}>
        {silencing && (
          <SilenceForm
            initial={[
              ['rule', silencing.ruleName],
              ['cluster', silencing.clusterId],
              ...(silencing.stream ? [['stream', silencing.stream] as [string, string]] : []),
              ...(silencing.consumer ? [['consumer', silencing.consumer] as [string, string]] : []),
            ]}
            onDone={() => {
              setSilencing(null);
              q.reload();
            }}
          />
        )}
      </Dialog>
    </>
  );
}

function SilenceForm({ initial, onDone }: { initial: [string, string][]; onDone: () => void }) {
  const { org } = useOrg();
  const [matchers, setMatchers] = useState(initial.map(([k, v]) => `${k}=${v}`).join(', '));
  const [hours, setHours] = useState<'1' | '4' | '24' | '168'>('4');
  const [comment, setComment] = useState('');
  const act = useAction(async () => {
    const ms = splitList(matchers).map((m) => {
      const i = m.indexOf('=');
      return { name: m.slice(0, i).trim(), value: m.slice(i + 1).trim(), op: 'EQUAL' as const };
    });
    await request(CreateSilence, {
      org: org.id,
      matchers: ms,
      endsAt: new Date(Date.now() + Number(hours) * 3_600_000).toISOString(),
      comment,
    });
    onDone();
  });
  return (
    <ActionForm act={act}>
      <Field label="Matchers" name="matchers" value={matchers} onChange={setMatchers} error={act.fieldError('matchers')} hint="label=value, comma-separated: alerts with all of these labels are silenced." />
      <Select label="For (hours)" name="hours" value={hours} options={['1', '4', '24', '168'] as const} onChange={setHours} />
      <Field label="Comment" name="comment" value={comment} onChange={setComment} required error={act.fieldError('comment')} hint="Why, for whoever looks next." />
      <ErrorBox error={act.error} />
      <div className="actions">
        <button type="submit" disabled={act.busy}>
          Silence
        </button>
      </div>
    </ActionForm>
  );
}

// ---- rules -----------------------------------------------------------------------------------

const RuleList = graphql(`
  query RuleList($org: ID!) {
    alertRules(organizationId: $org, first: 200) {
      nodes {
        id
        name
        description
        severity
        enabled
        for
        keepFiringFor
        condition {
          kind
          threshold
          percent
          z
          window
          stalledFor
        }
        scope {
          clusters
          streams
          consumers
          clusterTags
        }
        labels {
          name
          value
        }
        annotations {
          name
          value
        }
        updatedBy
        updatedAt
      }
    }
  }
`);

const CreateRule = graphql(`
  mutation CreateAlertRule($org: ID!, $rule: AlertRuleSpecInput!) {
    createAlertRule(input: { organizationId: $org, rule: $rule }) {
      correlationId
    }
  }
`);

const UpdateRule = graphql(`
  mutation UpdateAlertRule($id: ID!, $rule: AlertRuleSpecInput, $enabled: Boolean) {
    updateAlertRule(input: { id: $id, rule: $rule, enabled: $enabled }) {
      correlationId
    }
  }
`);

const DeleteRule = graphql(`
  mutation DeleteAlertRule($id: ID!) {
    deleteAlertRule(input: { id: $id }) {
      correlationId
    }
  }
`);

const Preview = graphql(`
  query PreviewAlertRule($org: ID!, $rule: AlertRuleSpecInput!, $from: DateTime!) {
    previewAlertRule(organizationId: $org, rule: $rule, from: $from) {
      from
      to
      samples
      clusters
      firings {
        clusterId
        stream
        consumer
        pendingAt
        firedAt
        resolvedAt
        value
      }
    }
  }
`);

type Rule = RuleListQuery['alertRules']['nodes'][number];
const KINDS: readonly AlertConditionKind[] = [
  'CONSUMER_LAG',
  'CONSUMER_STALLED',
  'REDELIVERY_RATE',
  'MESSAGE_RATE_ABOVE',
  'MESSAGE_RATE_BELOW',
  'MESSAGE_RATE_ZERO',
  'MESSAGE_RATE_ANOMALY',
  'STREAM_STORAGE',
  'ACCOUNT_STORAGE',
  'CLUSTER_UNREACHABLE',
  'JETSTREAM_UNHEALTHY',
  'DEAD_LETTERS',
];
/** What each condition is measured by: the fields the rule builder asks for. */
const PARAMS: Record<AlertConditionKind, ('threshold' | 'percent' | 'z' | 'window' | 'stalledFor')[]> = {
  CONSUMER_LAG: ['threshold'],
  CONSUMER_STALLED: ['stalledFor'],
  REDELIVERY_RATE: ['threshold'],
  MESSAGE_RATE_ABOVE: ['threshold'],
  MESSAGE_RATE_BELOW: ['threshold'],
  MESSAGE_RATE_ZERO: ['window'],
  MESSAGE_RATE_ANOMALY: ['z', 'window'],
  STREAM_STORAGE: ['percent'],
  ACCOUNT_STORAGE: ['percent'],
  CLUSTER_UNREACHABLE: [],
  JETSTREAM_UNHEALTHY: [],
  DEAD_LETTERS: ['threshold', 'window'],
};
const PARAM_LABEL = {
  threshold: 'Threshold',
  percent: 'Percent of the limit',
  z: 'Standard deviations (z)',
  window: 'Window',
  stalledFor: 'Stalled for',
};

function describe(r: Rule) {
  const c = r.condition;
  const v = c.threshold ?? c.percent ?? c.z ?? c.window ?? c.stalledFor;
  return `${c.kind.toLowerCase().replaceAll('_', ' ')}${v != null ? ` ${c.percent != null ? `${v} %` : v}` : ''}${r.for !== '0s' ? ` for ${r.for}` : ''}`;
}

function Rules() {
  const { org } = useOrg();
  const q = useQuery(RuleList, { org: org.id });
  const [editing, setEditing] = useState<Rule | 'new' | null>(null);
  const toggle = useAction(async (r: Rule) => {
    await request(UpdateRule, { id: r.id, enabled: !r.enabled });
    q.reload();
  });
  const del = useAction(async (r: Rule) => {
    await request(DeleteRule, { id: r.id });
    q.reload();
  });
  const canEdit = atLeast(org.role, 'ADMIN');
  return (
    <div>
      <div className="toolbar">
        <span className="spacer" />
        {canEdit && <button onClick={() => setEditing('new')}>New rule</button>}
      </div>
      <ErrorBox error={q.error ?? toggle.error ?? del.error} />
      {!q.data ? (
        !q.error && <Loading what="rules" />
      ) : q.data.alertRules.nodes.length === 0 ? (
        <p className="empty">No rule yet. A rule watches the samples: consumer lag, storage, message rates, health.</p>
      ) : (
        <Table
          caption="Alert rules"
          rows={q.data.alertRules.nodes}
          rowKey={(r) => r.id}
          columns={[
            [
              'Rule',
              (r) => (
                <>
                  <strong>{r.name}</strong> {!r.enabled && <span className="badge muted">disabled</span>}
                  <div className="muted small">{r.description}</div>
                </>
              ),
            ],
            ['Condition', (r) => describe(r), 'small'],
            ['Severity', (r) => r.severity.toLowerCase()],
            ['Scope', (r) => [...r.scope.clusters, ...r.scope.streams, ...r.scope.consumers, ...r.scope.clusterTags.map((t) => `#${t}`)].join(', ') || 'everything', 'mono small'],
            ['Changed', (r) => <>{ago(r.updatedAt)} by <Actor actor={r.updatedBy} /></>, 'small'],
            [
              '',
              (r) =>
                canEdit && (
                  <span className="actions left">
                    <button className="secondary small" onClick={() => setEditing(r)}>
                      Edit
                    </button>
                    <button className="secondary small" onClick={() => void toggle.run(r)}>
                      {r.enabled ? 'Disable' : 'Enable'}
                    </button>
                    <button className="secondary small" onClick={() => void del.run(r)}>
                      Delete
                    </button>
                  </span>
                ),
            ],
          ]}
        />
      )}
      <Dialog title={editing === 'new' ? 'New alert rule' : 'Edit alert rule'} open={!!editing} onClose={() => setEditing(null)} wide>
        {editing && (
          <RuleForm
            rule={editing === 'new' ? null : editing}
            onDone={() => {
              setEditing(null);
              q.reload();
            }}
          />
        )}
      </Dialog>
    </div>
  );
}

function RuleForm({ rule, onDone }: { rule: Rule | null; onDone: () => void }) {
  const { org } = useOrg();
  const c = rule?.condition;
  const [name, setName] = useState(rule?.name ?? '');
  const [description, setDescription] = useState(rule?.description ?? '');
  const [kind, setKind] = useState<AlertConditionKind>(c?.kind ?? 'CONSUMER_LAG');
  const [p, setP] = useState({
    threshold: c?.threshold?.toString() ?? '',
    percent: c?.percent?.toString() ?? '',
    z: c?.z?.toString() ?? '',
    window: c?.window ?? '',
    stalledFor: c?.stalledFor ?? '',
  });
  const [clusters, setClusters] = useState(rule?.scope.clusters.join(', ') ?? '');
  const [streams, setStreams] = useState(rule?.scope.streams.join(', ') ?? '');
  const [consumers, setConsumers] = useState(rule?.scope.consumers.join(', ') ?? '');
  const [tags, setTags] = useState(rule?.scope.clusterTags.join(', ') ?? '');
  const [severity, setSeverity] = useState<AlertSeverity>(rule?.severity ?? 'WARNING');
  const [forD, setFor] = useState(rule?.for ?? '1m');
  const [keep, setKeep] = useState(rule?.keepFiringFor ?? '0s');
  const [summary, setSummary] = useState(rule?.annotations.find((a) => a.name === 'summary')?.value ?? '');
  const [enabled, setEnabled] = useState(rule?.enabled ?? true);
  const [preview, setPreview] = useState<{ samples: number; firings: { clusterId: string; stream?: string | null; consumer?: string | null; firedAt?: string | null; resolvedAt?: string | null; pendingAt: string; value: number }[] } | null>(null);
  const spec = () => {
    checkFields([
      ['for', forD, 'duration'],
      ['keepFiringFor', keep, 'duration'],
      ...PARAMS[kind].filter((k) => k === 'window' || k === 'stalledFor').map((k) => [`condition.${k}`, p[k], 'duration'] as [string, string, 'duration']),
    ]);
    const num = (v: string) => (v.trim() ? Number(v) : undefined);
    return {
      name,
      description,
      severity,
      for: forD || undefined,
      keepFiringFor: keep || undefined,
      enabled,
      condition: {
        kind,
        threshold: PARAMS[kind].includes('threshold') ? num(p.threshold) : undefined,
        percent: PARAMS[kind].includes('percent') ? num(p.percent) : undefined,
        z: PARAMS[kind].includes('z') ? num(p.z) : undefined,
        window: PARAMS[kind].includes('window') ? p.window || undefined : undefined,
        stalledFor: PARAMS[kind].includes('stalledFor') ? p.stalledFor || undefined : undefined,
      },
      scope: { clusters: splitList(clusters), streams: splitList(streams), consumers: splitList(consumers), clusterTags: splitList(tags) },
      labels: rule?.labels.map(({ name, value }) => ({ name, value })) ?? [],
      annotations: summary ? [{ name: 'summary', value: summary }] : [],
    };
  };
  const save = useAction(async () => {
    if (rule) await request(UpdateRule, { id: rule.id, rule: spec() });
    else await request(CreateRule, { org: org.id, rule: spec() });
    onDone();
  });
  const previewer = useAction(async () => {
    const r = await request(Preview, { org: org.id, rule: spec(), from: new Date(Date.now() - 24 * 3_600_000).toISOString() });
    setPreview(r.previewAlertRule);
  });
  const fe = (f: string) => save.fieldError(f) ?? previewer.fieldError(f);
  return (
    <ActionForm act={save}>
      <div className="row">
        <Field label="Name" name="name" value={name} onChange={setName} required error={fe('name')} />
        <Select label="Severity" name="severity" value={severity} options={['INFO', 'WARNING', 'CRITICAL'] as const} onChange={setSeverity} />
      </div>
      <Field label="Description" name="description" value={description} onChange={setDescription} />
      <fieldset className="card">
        <legend>When</legend>
        <Select label="Condition" name="kind" value={kind} options={KINDS} onChange={setKind} />
        <div className="row">
          {PARAMS[kind].map((k) => (
            <Field
              key={k}
              label={PARAM_LABEL[k]}
              name={k}
              value={p[k]}
              onChange={(v) => setP((x) => ({ ...x, [k]: v }))}
              error={fe(k)}
              hint={k === 'threshold' && (kind === 'CONSUMER_LAG' || kind === 'REDELIVERY_RATE') ? 'Empty: read from the consumer’s io.nats.monitor metadata.' : k === 'window' || k === 'stalledFor' ? 'e.g. 5m, 1h' : undefined}
            />
          ))}
          <Field label="For" name="for" value={forD} onChange={setFor} error={fe('for')} hint="How long it holds before it fires." />
          <Field label="Keep firing for" name="keepFiringFor" value={keep} onChange={setKeep} error={fe('keepFiringFor')} />
        </div>
      </fieldset>
      <fieldset className="card">
        <legend>Where (patterns with * and ?; empty for all)</legend>
        <div className="row">
          <Field label="Clusters" name="clusters" value={clusters} onChange={setClusters} error={fe('clusters')} />
          <Field label="Streams" name="streams" value={streams} onChange={setStreams} error={fe('streams')} />
          <Field label="Consumers" name="consumers" value={consumers} onChange={setConsumers} error={fe('consumers')} />
          <Field label="Cluster tags" name="clusterTags" value={tags} onChange={setTags} error={fe('clusterTags')} />
        </div>
      </fieldset>
      <Field
        label="Summary"
        name="summary"
        value={summary}
        onChange={setSummary}
        error={fe('annotations')}
        hint="A template, e.g. {{ consumer }} on {{ stream }} has {{ value }} pending."
      />
      <Check label="Enabled" checked={enabled} onChange={setEnabled} />
      <ErrorBox error={save.error ?? previewer.error} />
      {preview && (
        <div className="result" role="status">
          <p>
            Over the last 24 h ({fmtNum(preview.samples)} samples) this rule would have fired {times(preview.firings.filter((f) => f.firedAt).length)}
            {preview.firings.length > 0 ? ':' : '.'}
          </p>
          {preview.firings.length > 0 && (
            <Table
              caption="Preview"
              className="compact"
              rows={preview.firings.slice(0, 20)}
              rowKey={(f) => `${where(f)}-${f.pendingAt}`}
              columns={[
                ['Where', (f) => <Resource {...f} />, 'small'],
                ['Fired', (f) => (f.firedAt ? fmtTime(f.firedAt) : 'pending only'), 'small'],
                ['Resolved', (f) => fmtTime(f.resolvedAt), 'small'],
                ['Value', (f) => fmtNum(f.value)],
              ]}
            />
          )}
        </div>
      )}
      <div className="actions">
        <button type="button" className="secondary" onClick={() => void previewer.run()} disabled={previewer.busy}>
          {previewer.busy ? 'Previewing…' : 'Preview on the last 24 h'}
        </button>
        <button type="submit" disabled={save.busy}>
          {rule ? 'Save rule' : 'Create rule'}
        </button>
      </div>
    </ActionForm>
  );
}

// ---- channels --------------------------------------------------------------------------------

const ChannelList = graphql(`
  query ChannelList($org: ID!) {
    notificationChannels(organizationId: $org, first: 200) {
      nodes {
        id
        name
        kind
        hint
        to
        sendResolved
        createdBy
        updatedAt
      }
    }
  }
`);

const CreateChannel = graphql(`
  mutation CreateChannel($org: ID!, $channel: NotificationChannelInput!) {
    createNotificationChannel(input: { organizationId: $org, channel: $channel }) {
      correlationId
    }
  }
`);

const DeleteChannel = graphql(`
  mutation DeleteChannel($id: ID!) {
    deleteNotificationChannel(input: { id: $id }) {
      correlationId
    }
  }
`);

const TestChannel = graphql(`
  mutation TestChannel($id: ID!) {
    testNotificationChannel(input: { id: $id }) {
      delivery {
        ok
        status
        code
        error
      }
    }
  }
`);

function Channels() {
  const { org } = useOrg();
  const q = useQuery(ChannelList, { org: org.id });
  const [adding, setAdding] = useState(false);
  const [tested, setTested] = useState<Record<string, { ok: boolean; status: string; code?: number | null; error?: string | null }>>({});
  const test = useAction(async (id: string) => {
    const r = await request(TestChannel, { id });
    setTested((t) => ({ ...t, [id]: r.testNotificationChannel.delivery }));
  });
  const del = useAction(async (id: string) => {
    await request(DeleteChannel, { id });
    q.reload();
  });
  const canEdit = atLeast(org.role, 'ADMIN');
  return (
    <div>
      <div className="toolbar">
        <span className="spacer" />
        {canEdit && <button onClick={() => setAdding(true)}>New channel</button>}
      </div>
      <ErrorBox error={q.error ?? test.error ?? del.error} />
      {!q.data ? (
        !q.error && <Loading what="channels" />
      ) : q.data.notificationChannels.nodes.length === 0 ? (
        <p className="empty">No channel yet: add email, Slack, a webhook, PagerDuty or Alertmanager.</p>
      ) : (
        <Table
          caption="Notification channels"
          rows={q.data.notificationChannels.nodes}
          rowKey={(c) => c.id}
          columns={[
            ['Name', (c) => <strong>{c.name}</strong>],
            ['Kind', (c) => c.kind.toLowerCase().replace('_', ' ')],
            ['Sends to', (c) => (c.to?.length ? c.to.join(', ') : c.hint), 'mono small'],
            [
              'Last test',
              (c) =>
                tested[c.id] ? (
                  <span className={`badge ${tested[c.id].ok ? 'ok' : 'bad'}`} role="status">
                    {tested[c.id].ok ? 'delivered' : `failed: ${tested[c.id].error ?? tested[c.id].status}`}
                  </span>
                ) : (
                  <span className="muted small">—</span>
                ),
            ],
            [
              '',
              (c) =>
                canEdit && (
                  <span className="actions left">
                    <button className="secondary small" onClick={() => void test.run(c.id)} disabled={test.busy}>
                      Send a test
                    </button>
                    <button className="secondary small" onClick={() => void del.run(c.id)}>
                      Delete
                    </button>
                  </span>
                ),
            ],
          ]}
        />
      )}
      <Dialog title="New notification channel" open={adding} onClose={() => setAdding(false)} wide>
        {adding && (
          <ChannelForm
            onDone={() => {
              setAdding(false);
              q.reload();
            }}
          />
        )}
      </Dialog>
    </div>
  );
}

function ChannelForm({ onDone }: { onDone: () => void }) {
  const { org } = useOrg();
  const [name, setName] = useState('');
  const [kind, setKind] = useState<ChannelKind>('WEBHOOK');
  const [url, setUrl] = useState('');
  const [secret, setSecret] = useState('');
  const [to, setTo] = useState('');
  const [from, setFrom] = useState('');
  const [host, setHost] = useState('');
  const [port, setPort] = useState('587');
  const [user, setUser] = useState('');
  const [routingKey, setRoutingKey] = useState('');
  const [sendResolved, setSendResolved] = useState(true);
  const act = useAction(async () => {
    await request(CreateChannel, {
      org: org.id,
      channel: {
        name,
        kind,
        sendResolved,
        url: kind === 'WEBHOOK' || kind === 'SLACK' || kind === 'ALERTMANAGER' ? url : undefined,
        signingSecret: kind === 'WEBHOOK' && secret ? secret : undefined,
        routingKey: kind === 'PAGER_DUTY' ? routingKey : undefined,
        eventsUrl: kind === 'PAGER_DUTY' && url ? url : undefined,
        smtpHost: kind === 'EMAIL' ? host : undefined,
        smtpPort: kind === 'EMAIL' ? Number(port) : undefined,
        smtpUsername: kind === 'EMAIL' && user ? user : undefined,
        smtpPassword: kind === 'EMAIL' && secret ? secret : undefined,
        from: kind === 'EMAIL' ? from : undefined,
        to: kind === 'EMAIL' ? splitList(to) : undefined,
      },
    });
    onDone();
  });
  const fe = act.fieldError;
  return (
    <ActionForm act={act}>
      <div className="row">
        <Field label="Name" name="name" value={name} onChange={setName} required error={fe('name')} />
        <Select label="Kind" name="kind" value={kind} options={['WEBHOOK', 'SLACK', 'EMAIL', 'PAGER_DUTY', 'ALERTMANAGER'] as const} onChange={setKind} />
      </div>
      {(kind === 'WEBHOOK' || kind === 'SLACK' || kind === 'ALERTMANAGER') && (
        <Field
          label={kind === 'SLACK' ? 'Incoming webhook URL' : kind === 'ALERTMANAGER' ? 'Alertmanager URL' : 'URL'}
          name="url"
          value={url}
          onChange={setUrl}
          required
          error={fe('url')}
          hint={kind === 'SLACK' ? 'Kept sealed: a Slack URL is its own credential.' : undefined}
        />
      )}
      {kind === 'WEBHOOK' && (
        <Field label="Signing secret" name="signingSecret" type="password" value={secret} onChange={setSecret} error={fe('signingSecret')} hint="Standard Webhooks (whsec_…); empty for unsigned." autoComplete="new-password" />
      )}
      {kind === 'PAGER_DUTY' && (
        <>
          <Field label="Routing key" name="routingKey" type="password" value={routingKey} onChange={setRoutingKey} required error={fe('routingKey')} autoComplete="new-password" />
          <Field label="Events URL" name="eventsUrl" value={url} onChange={setUrl} error={fe('eventsUrl')} hint="Empty for PagerDuty's own." />
        </>
      )}
      {kind === 'EMAIL' && (
        <>
          <div className="row">
            <Field label="SMTP host" name="smtpHost" value={host} onChange={setHost} required error={fe('smtpHost')} />
            <Field label="Port" name="smtpPort" value={port} onChange={setPort} error={fe('smtpPort')} />
          </div>
          <div className="row">
            <Field label="Username" name="smtpUsername" value={user} onChange={setUser} error={fe('smtpUsername')} autoComplete="off" />
            <Field label="Password" name="smtpPassword" type="password" value={secret} onChange={setSecret} error={fe('smtpPassword')} autoComplete="new-password" />
          </div>
          <Field label="From" name="from" value={from} onChange={setFrom} required error={fe('from')} />
          <Field label="To" name="to" value={to} onChange={setTo} required error={fe('to')} hint="Comma-separated addresses." />
        </>
      )}
      <Check label="Also send when an alert resolves" checked={sendResolved} onChange={setSendResolved} />
      <ErrorBox error={act.error} />
      <div className="actions">
        <button type="submit" disabled={act.busy}>
          Create channel
        </button>
      </div>
    </ActionForm>
  );
}

// ---- silences --------------------------------------------------------------------------------

const SilenceList = graphql(`
  query SilenceList($org: ID!) {
    silences(organizationId: $org, active: false, first: 200) {
      nodes {
        id
        matchers {
          name
          op
          value
        }
        startsAt
        endsAt
        comment
        createdBy
        active
      }
    }
  }
`);

const Expire = graphql(`
  mutation ExpireSilence($id: ID!) {
    expireSilence(input: { id: $id }) {
      correlationId
    }
  }
`);

function Silences() {
  const { org } = useOrg();
  const q = useQuery(SilenceList, { org: org.id });
  const [adding, setAdding] = useState(false);
  const expire = useAction(async (id: string) => {
    await request(Expire, { id });
    q.reload();
  });
  const canOperate = atLeast(org.role, 'OPERATOR');
  const OPS = { EQUAL: '=', NOT_EQUAL: '!=', REGEX: '=~', NOT_REGEX: '!~' } as const;
  return (
    <div>
      <div className="toolbar">
        <span className="spacer" />
        {canOperate && <button onClick={() => setAdding(true)}>New silence</button>}
      </div>
      <ErrorBox error={q.error ?? expire.error} />
      {!q.data ? (
        !q.error && <Loading what="silences" />
      ) : q.data.silences.nodes.length === 0 ? (
        <p className="empty">No silence.</p>
      ) : (
        <Table
          caption="Silences"
          rows={q.data.silences.nodes}
          rowKey={(s) => s.id}
          columns={[
            ['Matchers', (s) => s.matchers.map((m) => `${m.name}${OPS[m.op]}${m.value}`).join(', '), 'mono small'],
            ['Comment', (s) => s.comment],
            ['Until', (s) => <>{fmtTime(s.endsAt)} {s.active ? <span className="badge warn">active</span> : <span className="badge muted">ended</span>}</>, 'small'],
            ['By', (s) => <Actor actor={s.createdBy} />, 'small'],
            [
              '',
              (s) =>
                canOperate &&
                s.active && (
                  <button className="secondary small" onClick={() => void expire.run(s.id)}>
                    End now
                  </button>
                ),
            ],
          ]}
        />
      )}
      <Dialog title="New silence" open={adding} onClose={() => setAdding(false)}>
        {adding && (
          <SilenceForm
            initial={[]}
            onDone={() => {
              setAdding(false);
              q.reload();
            }}
          />
        )}
      </Dialog>
    </div>
  );
}
