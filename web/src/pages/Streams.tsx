// The streams of a cluster: search (by name on the server), filters and sort on what is loaded,
// a virtual list that keeps 10,000 rows smooth, live updates, and the create-stream dialog.
import { useEffect, useMemo, useRef, useState } from 'react';
import { request, useSubscription, type ApiError } from '../api';
import { useCan } from '../App';
import { graphql } from '../gql';
import type { StreamListQuery, StorageType, RetentionPolicy } from '../gql/graphql';
import { enc, navigate } from '../router';
import { Dialog, ErrorBox, Field, Link, Select, checkFields, ActionForm, splitList, fmtBytes, fmtNum, useAction } from '../ui';

const StreamListQ = graphql(`
  query StreamList($clusterId: ID!, $nameContains: String, $after: String) {
    streams(clusterId: $clusterId, nameContains: $nameContains, first: 500, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        name
        config {
          subjects
          storage
          retention
          replicas
          sealed
        }
        state {
          messages
          bytes
          consumerCount
          lastTime
        }
      }
    }
  }
`);

const StreamChanges = graphql(`
  subscription StreamListChanges($clusterId: ID!) {
    streamChanged(clusterId: $clusterId) {
      kind
      name
    }
  }
`);

const CreateStream = graphql(`
  mutation CreateStream($input: CreateStreamInput!) {
    createStream(input: $input) {
      stream {
        name
      }
    }
  }
`);

type Row = StreamListQuery['streams']['nodes'][number];
type SortKey = 'name' | 'messages' | 'bytes' | 'consumers' | 'last';
const ROW = 40;

/** Every stream of the cluster whose name has `search`, loaded page by page. */
function useAllStreams(clusterId: string, search: string) {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<ApiError | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const t = setTimeout(async () => {
      const all: Row[] = [];
      let after: string | null | undefined = undefined;
      try {
        for (;;) {
          const r: StreamListQuery = await request(StreamListQ, { clusterId, nameContains: search || undefined, after });
          if (!live) return;
          all.push(...r.streams.nodes);
          setTotal(r.streams.totalCount);
          if (!r.streams.pageInfo.hasNextPage) break;
          after = r.streams.pageInfo.endCursor;
          setRows([...all]);
        }
        setRows(all);
        setError(null);
      } catch (e) {
        if (live) setError(e as ApiError);
      }
    }, tick === 0 ? 0 : 250);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [clusterId, search, tick]);
  return { rows, total, error, reload: () => setTick((t) => t + 1) };
}

export function StreamList({ clusterId }: { clusterId: string }) {
  const canCreate = useCan('OPERATOR');
  const [search, setSearch] = useState('');
  const [storage, setStorage] = useState<'' | StorageType>('');
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'name', desc: false });
  const [creating, setCreating] = useState(false);
  const { rows, total, error, reload } = useAllStreams(clusterId, search);
  useSubscription(StreamChanges, { clusterId }, (d) => d.streamChanged.kind !== 'STATE' && reload());
  const shown = useMemo(() => {
    const r = (rows ?? []).filter((s) => !storage || s.config.storage === storage);
    const v = (s: Row): string | number => {
      switch (sort.key) {
        case 'name':
          return s.name;
        case 'messages':
          return s.state?.messages ?? -1;
        case 'bytes':
          return s.state?.bytes ?? -1;
        case 'consumers':
          return s.state?.consumerCount ?? -1;
        case 'last':
          return s.state?.lastTime ?? '';
      }
    };
    r.sort((a, b) => {
      const x = v(a);
      const y = v(b);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return sort.desc ? -c : c;
    });
    return r;
  }, [rows, storage, sort]);
  const base = `/clusters/${enc(clusterId)}/streams/`;
  const header = (key: SortKey, label: string) => (
    <div role="columnheader" aria-sort={sort.key === key ? (sort.desc ? 'descending' : 'ascending') : 'none'}>
      <button type="button" className="sort" onClick={() => setSort({ key, desc: sort.key === key ? !sort.desc : key !== 'name' })}>
        {label}
        {sort.key === key ? (sort.desc ? ' ↓' : ' ↑') : ''}
      </button>
    </div>
  );
  return (
    <div>
      <div className="toolbar">
        <label className="search">
          <span className="sr-only">Search streams by name</span>
          <input type="search" placeholder="Search streams by name" value={search} onChange={(e) => setSearch(e.target.value)} />
        </label>
        <label>
          <span className="sr-only">Storage</span>
          <select value={storage} onChange={(e) => setStorage(e.target.value as '' | StorageType)} aria-label="Storage">
            <option value="">Any storage</option>
            <option value="FILE">File</option>
            <option value="MEMORY">Memory</option>
          </select>
        </label>
        <span className="muted small" role="status">
          {rows ? `${fmtNum(shown.length)} of ${fmtNum(total)} streams` : 'Loading streams…'}
        </span>
        <span className="spacer" />
        {canCreate && <button onClick={() => setCreating(true)}>Create stream</button>}
      </div>
      <ErrorBox error={error} />
      <div className="vtable" role="table" aria-label="Streams" aria-rowcount={shown.length + 1}>
        <div className="vrow vhead" role="row" aria-rowindex={1}>
          {header('name', 'Name')}
          <div role="columnheader">Subjects</div>
          {header('messages', 'Messages')}
          {header('bytes', 'Size')}
          {header('consumers', 'Consumers')}
          <div role="columnheader">Storage</div>
        </div>
        <VirtualRows
          count={shown.length}
          render={(i) => {
            const s = shown[i];
            return (
              <div className="vrow" role="row" aria-rowindex={i + 2} key={s.name}>
                <div role="cell">
                  <Link to={base + enc(s.name)}>{s.name}</Link>
                  {s.config.sealed && <span className="badge muted">sealed</span>}
                </div>
                <div role="cell" className="mono small ellipsis" title={s.config.subjects.join(', ')}>
                  {s.config.subjects.join(', ') || '—'}
                </div>
                <div role="cell">{fmtNum(s.state?.messages)}</div>
                <div role="cell">{fmtBytes(s.state?.bytes)}</div>
                <div role="cell">{fmtNum(s.state?.consumerCount)}</div>
                <div role="cell" className="small">
                  {s.config.storage.toLowerCase()} · R{s.config.replicas}
                </div>
              </div>
            );
          }}
        />
        {rows && shown.length === 0 && <p className="empty">No stream matches.</p>}
      </div>
      <Dialog title="Create a stream" open={creating} onClose={() => setCreating(false)} wide>
        <CreateStreamForm
          clusterId={clusterId}
          onDone={(name) => {
            setCreating(false);
            navigate(base + enc(name));
          }}
        />
      </Dialog>
    </div>
  );
}

/** Renders only the rows in view (plus a margin), in a scrolling box of fixed row height. */
export function VirtualRows({ count, render, height = 560 }: { count: number; render: (i: number) => React.ReactNode; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const [top, setTop] = useState(0);
  const first = Math.max(0, Math.floor(top / ROW) - 10);
  const last = Math.min(count, Math.ceil((top + height) / ROW) + 10);
  const items = [];
  for (let i = first; i < last; i++) items.push(render(i));
  return (
    <div
      ref={box}
      className="vbody"
      style={{ height: Math.min(height, count * ROW) }}
      onScroll={(e) => setTop(e.currentTarget.scrollTop)}
      tabIndex={0}
      role="rowgroup"
      aria-label="Rows (scroll for more)"
    >
      <div style={{ height: count * ROW, position: 'relative' }}>
        <div style={{ transform: `translateY(${first * ROW}px)` }}>{items}</div>
      </div>
    </div>
  );
}

const RETENTIONS: readonly RetentionPolicy[] = ['LIMITS', 'INTEREST', 'WORK_QUEUE'];
const STORAGES: readonly StorageType[] = ['FILE', 'MEMORY'];

function CreateStreamForm({ clusterId, onDone }: { clusterId: string; onDone: (name: string) => void }) {
  const [name, setName] = useState('');
  const [subjects, setSubjects] = useState('');
  const [retention, setRetention] = useState<RetentionPolicy>('LIMITS');
  const [storage, setStorage] = useState<StorageType>('FILE');
  const [maxAge, setMaxAge] = useState('');
  const [maxBytes, setMaxBytes] = useState('');
  const [replicas, setReplicas] = useState('1');
  const [description, setDescription] = useState('');
  const act = useAction(async () => {
    checkFields([
      ['maxAge', maxAge, 'duration'],
      ['maxBytes', maxBytes, 'integer'],
      ['replicas', replicas, 'integer'],
    ]);
    await request(CreateStream, {
      input: {
        clusterId,
        config: {
          name,
          description: description || undefined,
          subjects: splitList(subjects),
          retention,
          storage,
          replicas: Number(replicas),
          maxAge: maxAge || undefined,
          maxBytes: maxBytes ? Number(maxBytes) : undefined,
        },
      },
    });
    onDone(name);
  });
  return (
    <ActionForm act={act}>
      <Field label="Name" name="name" value={name} onChange={setName} required error={act.fieldError('name')} hint="Letters, digits, - and _; no spaces, dots or wildcards." pattern="[^\s.*>]+" />
      <Field label="Subjects" name="subjects" value={subjects} onChange={setSubjects} error={act.fieldError('subjects')} hint="Comma-separated, e.g. orders.>, invoices.*" />
      <div className="row">
        <Select label="Retention" name="retention" value={retention} options={RETENTIONS} onChange={setRetention} />
        <Select label="Storage" name="storage" value={storage} options={STORAGES} onChange={setStorage} />
        <Field label="Replicas" name="replicas" type="number" value={replicas} onChange={setReplicas} error={act.fieldError('replicas')} />
      </div>
      <div className="row">
        <Field label="Max age" name="maxAge" value={maxAge} onChange={setMaxAge} error={act.fieldError('maxAge')} hint="e.g. 7d, 12h; empty keeps messages forever." />
        <Field label="Max bytes" name="maxBytes" type="number" value={maxBytes} onChange={setMaxBytes} error={act.fieldError('maxBytes')} hint="Empty for no limit." />
      </div>
      <Field label="Description" name="description" value={description} onChange={setDescription} />
      <ErrorBox error={act.error} />
      <div className="actions">
        <button type="submit" disabled={act.busy}>
          Create stream
        </button>
      </div>
    </ActionForm>
  );
}
