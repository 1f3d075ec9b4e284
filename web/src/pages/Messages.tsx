// A stream's messages, read without consuming them: browse newest or oldest first, search
// with progress, tail live, publish, and export what a search finds.
import { useEffect, useState } from 'react';
import { request, useSubscription, type ApiError } from '../api';
import { useCan } from '../App';
import { graphql } from '../gql';
import type { BrowseMessagesQuery, ExportFileFormat, MessageDirection } from '../gql/graphql';
import { RepublishForm } from './Republish';
import { ActionForm, count, Dialog, ErrorBox, Field, Select, errorField, fmtBytes, fmtNum, fmtTime, useAction } from '../ui';

const Browse = graphql(`
  query BrowseMessages($clusterId: ID!, $stream: String!, $direction: MessageDirection!, $subject: String, $after: String) {
    messages(clusterId: $clusterId, stream: $stream, direction: $direction, subject: $subject, first: 50, after: $after) {
      totalCount
      readPath
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        ...Msg
      }
    }
  }
  fragment Msg on StreamMessage {
    sequence
    subject
    time
    size
    headers {
      name
      value
    }
    payload(maxBytes: 4096) {
      encoding
      text
      truncated
    }
  }
`);

const Tail = graphql(`
  subscription TailMessages($clusterId: ID!, $stream: String!, $subject: String) {
    messageTail(clusterId: $clusterId, stream: $stream, subject: $subject) {
      kind
      skippedFrom
      skippedTo
      message {
        ...Msg
      }
    }
  }
`);

const Search = graphql(`
  subscription SearchMessages($clusterId: ID!, $stream: String!, $search: MessageSearchInput!) {
    messageSearch(clusterId: $clusterId, stream: $stream, search: $search) {
      kind
      stop
      progress {
        scanned
        matched
        position
        elapsedMs
      }
      message {
        ...Msg
      }
    }
  }
`);

const Publish = graphql(`
  mutation PublishMessage($input: PublishMessageInput!) {
    publishMessage(input: $input) {
      ack {
        sequence
        duplicate
      }
    }
  }
`);

const Export = graphql(`
  mutation ExportMessages($input: ExportMessagesInput!) {
    exportMessages(input: $input) {
      url
      rows
      bytes
    }
  }
`);

type Msg = BrowseMessagesQuery['messages']['nodes'][number];
type Mode = 'browse' | 'search' | 'tail';

export function Messages({ clusterId, stream, subjects }: { clusterId: string; stream: string; subjects: string[] }) {
  const canOperate = useCan('OPERATOR');
  const [mode, setMode] = useState<Mode>('browse');
  const [direction, setDirection] = useState<MessageDirection>('BACKWARD');
  const [subject, setSubject] = useState('');
  const [text, setText] = useState('');
  const [applied, setApplied] = useState({ subject: '', text: '' });
  const [publishing, setPublishing] = useState(false);
  const [open, setOpen] = useState<number | null>(null);
  // Bumped by each publish from this page, so the list shows what was just stored.
  const [published, setPublished] = useState(0);
  const [republishing, setRepublishing] = useState(false);
  return (
    <div>
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ subject, text });
          if (text && mode === 'browse') setMode('search');
        }}
      >
        <div className="segmented" role="group" aria-label="Mode">
          {(['browse', 'search', 'tail'] as const).map((m) => (
            <button key={m} type="button" className={mode === m ? 'on' : ''} aria-pressed={mode === m} onClick={() => setMode(m)}>
              {m === 'browse' ? 'Browse' : m === 'search' ? 'Search' : 'Tail live'}
            </button>
          ))}
        </div>
        <label>
          <span className="sr-only">Subject filter</span>
          <input placeholder="Subject filter, e.g. orders.>" value={subject} onChange={(e) => setSubject(e.target.value)} />
        </label>
        {mode === 'search' && (
          <label>
            <span className="sr-only">Payload contains</span>
            <input placeholder="Payload contains" value={text} onChange={(e) => setText(e.target.value)} />
          </label>
        )}
        {mode === 'browse' && (
          <label>
            <span className="sr-only">Order</span>
            <select value={direction} onChange={(e) => setDirection(e.target.value as MessageDirection)} aria-label="Order">
              <option value="BACKWARD">Newest first</option>
              <option value="FORWARD">Oldest first</option>
            </select>
          </label>
        )}
        <button type="submit" className="secondary">
          Apply
        </button>
        <span className="spacer" />
        {canOperate && (
          <button type="button" onClick={() => setPublishing(true)}>
            Publish
          </button>
        )}
        {canOperate && (
          <button type="button" className="secondary" onClick={() => setRepublishing(true)}>
            Republish
          </button>
        )}
        <ExportButton clusterId={clusterId} stream={stream} subject={applied.subject} text={mode === 'search' ? applied.text : ''} />
      </form>
      {mode === 'browse' && (
        <BrowseList clusterId={clusterId} stream={stream} direction={direction} subject={applied.subject} open={open} setOpen={setOpen} published={published} />
      )}
      {mode === 'search' && <SearchList clusterId={clusterId} stream={stream} subject={applied.subject} text={applied.text} open={open} setOpen={setOpen} />}
      {mode === 'tail' && <TailList clusterId={clusterId} stream={stream} subject={applied.subject} open={open} setOpen={setOpen} />}
      <Dialog title="Republish messages" open={republishing} onClose={() => setRepublishing(false)} wide>
        <RepublishForm source={{ kind: 'search', clusterId, stream, subject: applied.subject, text: mode === 'search' ? applied.text : '' }} />
      </Dialog>
      <Dialog title={`Publish to ${stream}`} open={publishing} onClose={() => setPublishing(false)} wide>
        <PublishForm
          clusterId={clusterId}
          stream={stream}
          subjects={subjects}
          onPublished={() => setPublished((n) => n + 1)}
          onDone={() => setPublishing(false)}
        />
      </Dialog>
    </div>
  );
}

function BrowseList(p: {
  clusterId: string;
  stream: string;
  direction: MessageDirection;
  subject: string;
  open: number | null;
  setOpen: (n: number | null) => void;
  published: number;
}) {
  const [msgs, setMsgs] = useState<Msg[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [info, setInfo] = useState<{ total: number; path: string } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const load = async (after: string | null, keep: Msg[]) => {
    try {
      const r = await request(Browse, { clusterId: p.clusterId, stream: p.stream, direction: p.direction, subject: p.subject || undefined, after });
      setMsgs([...keep, ...r.messages.nodes]);
      setNext(r.messages.pageInfo.hasNextPage ? (r.messages.pageInfo.endCursor ?? null) : null);
      setInfo({ total: r.messages.totalCount, path: r.messages.readPath });
      setError(null);
    } catch (e) {
      setError(e as ApiError);
    }
  };
  useEffect(() => {
    setMsgs(null);
    void load(null, []);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [p.clusterId, p.stream, p.direction, p.subject, p.published]);
  return (
    <div>
      <ErrorBox error={error} />
      {info && (
        <p className="muted small" role="status">
          {count(info.total, 'message')} · read by {info.path === 'DIRECT_BATCH' ? 'batch direct get' : 'message get'}, nothing consumed
        </p>
      )}
      <MessageTable msgs={msgs} open={p.open} setOpen={p.setOpen} />
      {next && (
        <button className="secondary" onClick={() => void load(next, msgs ?? [])}>
          Load more
        </button>
      )}
    </div>
  );
}

function SearchList(p: { clusterId: string; stream: string; subject: string; text: string; open: number | null; setOpen: (n: number | null) => void }) {
  const [msgs, setMsgs] = useState<Msg[]>([]);
  const [progress, setProgress] = useState<{ scanned: number; matched: number; elapsedMs: number } | null>(null);
  const [stop, setStop] = useState<string | null>(null);
  const key = `${p.subject}|${p.text}`;
  useEffect(() => {
    setMsgs([]);
    setProgress(null);
    setStop(null);
  }, [key]);
  const error = useSubscription(
    Search,
    { clusterId: p.clusterId, stream: p.stream, search: { subject: p.subject || undefined, payloadContains: p.text || undefined, maxResults: 500 } },
    (d) => {
      const e = d.messageSearch;
      if (e.message) setMsgs((m) => [...m, e.message!]);
      if (e.progress) setProgress(e.progress);
      if (e.kind === 'DONE') setStop(e.stop ?? 'END');
    },
  );
  return (
    <div>
      <ErrorBox error={error} />
      <p className="muted small" role="status">
        {progress ? `${fmtNum(progress.matched)} found in ${fmtNum(progress.scanned)} scanned (${(progress.elapsedMs / 1000).toFixed(1)} s)` : 'Searching…'}
        {stop && (stop === 'END' ? ' · done' : ` · stopped: ${stop.toLowerCase().replace('_', ' ')}`)}
      </p>
      {progress && !stop && <progress aria-label="Search progress" />}
      <MessageTable msgs={msgs} open={p.open} setOpen={p.setOpen} />
    </div>
  );
}

function TailList(p: { clusterId: string; stream: string; subject: string; open: number | null; setOpen: (n: number | null) => void }) {
  const [msgs, setMsgs] = useState<Msg[]>([]);
  const [skipped, setSkipped] = useState(0);
  useEffect(() => setMsgs([]), [p.subject]);
  const error = useSubscription(Tail, { clusterId: p.clusterId, stream: p.stream, subject: p.subject || undefined }, (d) => {
    const e = d.messageTail;
    if (e.message) setMsgs((m) => [e.message!, ...m].slice(0, 500));
    if (e.kind === 'SKIPPED' && e.skippedFrom != null && e.skippedTo != null) setSkipped((s) => s + e.skippedTo! - e.skippedFrom! + 1);
  });
  return (
    <div>
      <ErrorBox error={error} />
      <p className="muted small" role="status">
        Showing new messages as they arrive (newest first, the last 500).{skipped > 0 && ` ${fmtNum(skipped)} skipped to keep up.`}
      </p>
      <MessageTable msgs={msgs} open={p.open} setOpen={p.setOpen} />
    </div>
  );
}

function MessageTable({ msgs, open, setOpen }: { msgs: Msg[] | null; open: number | null; setOpen: (n: number | null) => void }) {
  if (!msgs) return <p className="muted">Loading messages…</p>;
  if (!msgs.length) return <p className="empty">No message.</p>;
  return (
    <table className="table messages">
      <caption className="sr-only">Messages</caption>
      <thead>
        <tr>
          <th scope="col">Sequence</th>
          <th scope="col">Subject</th>
          <th scope="col">Time</th>
          <th scope="col">Size</th>
          <th scope="col">Payload</th>
        </tr>
      </thead>
      <tbody>
        {msgs.map((m) => (
          <tr key={m.sequence} className={open === m.sequence ? 'open' : undefined}>
            <td className="num">
              <button type="button" className="link" aria-expanded={open === m.sequence} onClick={() => setOpen(open === m.sequence ? null : m.sequence)}>
                {m.sequence}
              </button>
            </td>
            <td className="mono">{m.subject}</td>
            <td className="small">{fmtTime(m.time)}</td>
            <td className="small">{fmtBytes(m.size)}</td>
            <td className="payload">
              {open === m.sequence ? (
                <div>
                  {m.headers.length > 0 && (
                    <dl className="kv small">
                      {m.headers.map((h, i) => (
                        <div key={i}>
                          <dt>{h.name}</dt>
                          <dd>{h.value}</dd>
                        </div>
                      ))}
                    </dl>
                  )}
                  <pre tabIndex={0} aria-label={`Payload of message ${m.sequence}`}>{pretty(m.payload.text, m.payload.encoding)}</pre>
                  {m.payload.truncated && <p className="muted small">Truncated at 4 KiB.</p>}
                </div>
              ) : (
                <code className="ellipsis">{m.payload.text}</code>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function pretty(text: string, encoding: string) {
  if (encoding !== 'JSON') return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function PublishForm({
  clusterId,
  stream,
  subjects,
  onPublished,
  onDone,
}: {
  clusterId: string;
  stream: string;
  subjects: string[];
  onPublished: () => void;
  onDone: () => void;
}) {
  const first = subjects[0]?.replace(/[*>]/g, 'x') ?? '';
  const [subject, setSubject] = useState(first);
  const [payload, setPayload] = useState('');
  const [headers, setHeaders] = useState('');
  const [ack, setAck] = useState<{ sequence: number; duplicate: boolean } | null>(null);
  const act = useAction(async () => {
    const hs = headers
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map((l) => {
        const i = l.indexOf(':');
        return { name: l.slice(0, i).trim(), value: l.slice(i + 1).trim() };
      });
    const r = await request(Publish, { input: { clusterId, stream, subject, payload, headers: hs } });
    setAck(r.publishMessage.ack);
    onPublished();
  });
  return (
    <ActionForm act={act}>
      <Field label="Subject" name="subject" value={subject} onChange={setSubject} required error={act.fieldError('subject')} hint={`The stream stores ${subjects.join(', ')}.`} />
      <Field label="Headers" name="headers" value={headers} onChange={setHeaders} multiline hint="One per line, Name: value." error={errorField(act.error)?.startsWith('headers') ? (act.error as Error).message : null} />
      <Field label="Payload" name="payload" value={payload} onChange={setPayload} multiline />
      <ErrorBox error={act.error} />
      {ack && (
        <p className="result ok" role="status">
          Stored as sequence {ack.sequence}
          {ack.duplicate && ' (a duplicate: the stream had it already)'}.
        </p>
      )}
      <div className="actions">
        <button type="button" className="secondary" onClick={onDone}>
          Close
        </button>
        <button type="submit" disabled={act.busy}>
          Publish
        </button>
      </div>
    </ActionForm>
  );
}

function ExportButton({ clusterId, stream, subject, text }: { clusterId: string; stream: string; subject: string; text: string }) {
  const [open, setOpen] = useState(false);
  const [format, setFormat] = useState<ExportFileFormat>('JSONL');
  const [done, setDone] = useState<{ url: string; rows: number; bytes: number } | null>(null);
  const act = useAction(async () => {
    const r = await request(Export, {
      input: { clusterId, stream, format, search: { subject: subject || undefined, payloadContains: text || undefined } },
    });
    setDone(r.exportMessages);
  });
  return (
    <>
      <button type="button" className="secondary" onClick={() => setOpen(true)}>
        Export
      </button>
      <Dialog title="Export messages" open={open} onClose={() => setOpen(false)}>
        <p>
          Exports the messages {subject ? <>on <code>{subject}</code></> : 'of the stream'}
          {text && <> whose payload contains “{text}”</>}.
        </p>
        <Select label="Format" name="format" value={format} options={['JSONL', 'CSV', 'PARQUET'] as const} onChange={setFormat} />
        <ErrorBox error={act.error} />
        {done && (
          <p className="result ok">
            {count(done.rows, 'message')}, {fmtBytes(done.bytes)}: <a href={done.url}>download</a>
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={() => void act.run()} disabled={act.busy}>
            {act.busy ? 'Exporting…' : 'Export'}
          </button>
        </div>
      </Dialog>
    </>
  );
}
