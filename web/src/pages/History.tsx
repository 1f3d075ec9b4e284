// The history of one aggregate: each event with who, when, from where, its per-field changes,
// and the whole state as it was right after it (time travel).
import { useState } from 'react';
import { useQuery } from '../api';
import { graphql } from '../gql';
import type { AggregateType } from '../gql/graphql';
import { Actor, ErrorBox, Loading, fmtTime } from '../ui';

const HistoryQ = graphql(`
  query History($type: AggregateType!, $id: ID!, $after: String) {
    history(aggregateType: $type, id: $id, first: 100, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        sequence
        aggregateSequence
        eventType
        timestamp
        actor
        clientAddr
        correlationId
        payload
        changes {
          path
          before
          after
        }
      }
    }
  }
`);

const StateAt = graphql(`
  query StateAt($type: AggregateType!, $id: ID!, $sequence: Int!) {
    stateAt(aggregateType: $type, id: $id, sequence: $sequence) {
      version
      asOf
      state
    }
  }
`);

export function History({ aggregateType, id }: { aggregateType: AggregateType; id: string }) {
  const q = useQuery(HistoryQ, { type: aggregateType, id, after: null });
  const [at, setAt] = useState<number | null>(null);
  if (q.error && !q.data) return <ErrorBox error={q.error} />;
  if (!q.data) return <Loading what="history" />;
  const nodes = [...q.data.history.nodes].reverse();
  return (
    <div className="history">
      <p className="muted small">
        {q.data.history.totalCount} {q.data.history.totalCount === 1 ? 'event' : 'events'}, newest first. Every change made
        through the console or seen on the cluster is kept.
      </p>
      <ol className="timeline">
        {nodes.map((e) => (
          <li key={e.sequence}>
            <div className="event-head">
              <strong>{e.eventType}</strong> <span className="muted">v{e.aggregateSequence}</span>
              <span className="muted small">
                {' '}
                by <MadeBy actor={e.actor} payload={e.payload} /> on {fmtTime(e.timestamp)}
                {e.clientAddr && ` from ${e.clientAddr}`}
              </span>
              <button type="button" className="link small" onClick={() => setAt(at === e.sequence ? null : e.sequence)} aria-expanded={at === e.sequence}>
                {at === e.sequence ? 'Hide state' : 'State after this'}
              </button>
            </div>
            {e.changes.length > 0 && (
              <table className="table diff compact">
                <caption className="sr-only">Fields changed by event {e.aggregateSequence}</caption>
                <thead>
                  <tr>
                    <th scope="col">Field</th>
                    <th scope="col">Before</th>
                    <th scope="col">After</th>
                  </tr>
                </thead>
                <tbody>
                  {e.changes.map((c) => (
                    <tr key={c.path}>
                      <td className="mono">{c.path}</td>
                      <td className="before mono">{show(c.before)}</td>
                      <td className="after mono">{show(c.after)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {at === e.sequence && <StateView type={aggregateType} id={id} sequence={e.sequence} />}
          </li>
        ))}
      </ol>
    </div>
  );
}

function StateView({ type, id, sequence }: { type: AggregateType; id: string; sequence: number }) {
  const q = useQuery(StateAt, { type, id, sequence });
  if (q.error) return <ErrorBox error={q.error} />;
  if (!q.data) return <Loading what="state" />;
  return (
    <div className="state-at">
      <p className="muted small">
        Version {q.data.stateAt.version}, as of {fmtTime(q.data.stateAt.asOf)}:
      </p>
      <pre tabIndex={0} aria-label="State">{JSON.stringify(q.data.stateAt.state, null, 2)}</pre>
    </div>
  );
}

/** Who made a change: the client named in the event's origin when it was made outside the
 * console (the actor is then the console's watcher, `system:advisories` or
 * `system:reconciler`), otherwise the actor. */
function MadeBy({ actor, payload }: { actor: string; payload: unknown }) {
  const body = payload && typeof payload === 'object' ? Object.values(payload)[0] : undefined;
  const origin = body && typeof body === 'object' ? (body as { origin?: unknown }).origin : undefined;
  const o = (origin ?? {}) as { kind?: string; observed_via?: string; client?: string };
  if (o.kind !== 'external') return <Actor actor={actor} />;
  return (
    <span className="actor" title={`${actor}: seen through the ${o.observed_via ?? 'cluster'}`}>
      {o.client ?? 'a client'}, outside the console
    </span>
  );
}

function show(v: unknown): string {
  if (v === undefined || v === null) return '—';
  return typeof v === 'string' ? v : JSON.stringify(v);
}
