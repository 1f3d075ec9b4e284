// The audit trail: filters, the trail newest first, live events as they are appended, export.
import { useState } from 'react';
import { request, useQuery, useSubscription } from '../api';
import { graphql } from '../gql';
import type { AggregateType, AuditFilterInput, AuditTrailQuery, ExportFileFormat } from '../gql/graphql';
import { Actor, Check, ErrorBox, Field, Loading, PageHeader, Select, Table, fmtBytes, fmtNum, fmtTime, useAction } from '../ui';

const Trail = graphql(`
  query AuditTrail($filter: AuditFilterInput, $after: String) {
    auditTrail(filter: $filter, first: 100, after: $after) {
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        ...AuditRow
      }
    }
  }
  fragment AuditRow on AuditEntry {
    id
    sequence
    time
    aggregateType
    aggregateId
    eventType
    actor
    clientAddr
    cluster
    summary
  }
`);

const LiveAudit = graphql(`
  subscription AuditLive($filter: AuditFilterInput) {
    auditEvents(filter: $filter) {
      ...AuditRow
    }
  }
`);

const Export = graphql(`
  mutation ExportAudit($filter: AuditFilterInput, $format: ExportFileFormat!) {
    exportAudit(input: { filter: $filter, format: $format }) {
      url
      rows
      bytes
      expiresAt
    }
  }
`);

type Row = AuditTrailQuery['auditTrail']['nodes'][number];
const TYPES = ['', 'CLUSTER', 'STREAM', 'CONSUMER', 'ORGANIZATION', 'USER', 'INVITATION', 'SESSION', 'API_KEY', 'ALERT_RULE', 'NOTIFICATION_CHANNEL', 'ALERT_POLICY', 'SILENCE', 'ALERT', 'CLAIM'] as const;

export function Audit() {
  const [actor, setActor] = useState('');
  const [type, setType] = useState<(typeof TYPES)[number]>('');
  const [text, setText] = useState('');
  const [from, setFrom] = useState('');
  const [filter, setFilter] = useState<AuditFilterInput>({});
  const [liveOn, setLiveOn] = useState(true);
  const [live, setLive] = useState<Row[]>([]);
  const [more, setMore] = useState<Row[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const q = useQuery(Trail, { filter, after: null });
  const liveError = useSubscription(LiveAudit, liveOn ? { filter } : null, (d) => setLive((l) => [d.auditEvents, ...l].slice(0, 1000)));
  const [format, setFormat] = useState<ExportFileFormat>('CSV');
  const [exported, setExported] = useState<{ url: string; rows: number; bytes: number } | null>(null);
  const exporter = useAction(async () => {
    const r = await request(Export, { filter, format });
    setExported(r.exportAudit);
    // Start the download at once; the link stays for a second try.
    const a = document.createElement('a');
    a.href = r.exportAudit.url;
    a.download = '';
    document.body.appendChild(a);
    a.click();
    a.remove();
  });
  const older = useAction(async () => {
    const after = cursor ?? q.data?.auditTrail.pageInfo.endCursor;
    const r = await request(Trail, { filter, after });
    setMore((m) => [...m, ...r.auditTrail.nodes]);
    setCursor(r.auditTrail.pageInfo.hasNextPage ? (r.auditTrail.pageInfo.endCursor ?? null) : '');
  });
  const seen = new Set<string>();
  const rows = [...live, ...(q.data?.auditTrail.nodes ?? []), ...more].filter((r) => !seen.has(r.id) && seen.add(r.id));
  const hasMore = cursor === null ? q.data?.auditTrail.pageInfo.hasNextPage : cursor !== '';
  return (
    <section>
      <PageHeader title="Audit" sub="Every change, who made it, when and from where: newest first." />
      <form
        className="card filters"
        onSubmit={(e) => {
          e.preventDefault();
          setLive([]);
          setMore([]);
          setCursor(null);
          setFilter({
            actor: actor || undefined,
            aggregateType: (type || undefined) as AggregateType | undefined,
            text: text || undefined,
            from: from ? new Date(from).toISOString() : undefined,
          });
        }}
      >
        <div className="row">
          <Field label="Actor" name="actor" value={actor} onChange={setActor} placeholder="user:… or an email" />
          <Select label="Type" name="aggregateType" value={type} options={TYPES} onChange={setType} />
          <Field label="Text" name="text" value={text} onChange={setText} placeholder="in the summary or payload" />
          <Field label="From" name="from" type="datetime-local" value={from} onChange={setFrom} />
        </div>
        <div className="actions left">
          <button type="submit">Apply filters</button>
          <Check label="Live: show new events as they happen" checked={liveOn} onChange={setLiveOn} />
          <span className="spacer" />
          <Select label="Export format" name="format" value={format} options={['CSV', 'JSONL', 'PARQUET'] as const} onChange={setFormat} />
          <button type="button" className="secondary" onClick={() => void exporter.run()} disabled={exporter.busy}>
            {exporter.busy ? 'Exporting…' : 'Export'}
          </button>
        </div>
        {exported && (
          <p className="result ok" role="status">
            Exported {fmtNum(exported.rows)} events ({fmtBytes(exported.bytes)}). <a href={exported.url}>Download again</a>
          </p>
        )}
        <ErrorBox error={exporter.error} />
      </form>
      <ErrorBox error={q.error ?? liveError} />
      {!q.data && !q.error ? (
        <Loading what="the audit trail" />
      ) : (
        <Table
          caption="Audit trail"
          className="audit"
          rows={rows}
          rowKey={(r) => r.id}
          columns={[
            ['Time', (r) => fmtTime(r.time), 'small nowrap'],
            ['Actor', (r) => <Actor actor={r.actor} />, 'small'],
            [
              'Event',
              (r) => (
                <>
                  <span className="mono small">{r.eventType}</span>
                  <div className="muted small">
                    {r.aggregateType.toLowerCase()} {r.aggregateId}
                  </div>
                </>
              ),
            ],
            ['What', (r) => r.summary],
            ['From', (r) => r.clientAddr ?? '—', 'small mono'],
          ]}
        />
      )}
      {hasMore && (
        <button className="secondary" onClick={() => void older.run()} disabled={older.busy}>
          Older events
        </button>
      )}
      <ErrorBox error={older.error} />
    </section>
  );
}
