// The shared pieces of every page: links, headers, errors, form fields, tabs, dialogs, numbers.
import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { ApiError, request } from './api';
import { graphql } from './gql';
import { follow } from './router';

export function Link({ to, children, className }: { to: string; children: ReactNode; className?: string }) {
  return (
    <a href={to} onClick={follow} className={className}>
      {children}
    </a>
  );
}

export function PageHeader({ title, sub, actions }: { title: ReactNode; sub?: ReactNode; actions?: ReactNode }) {
  useEffect(() => {
    if (typeof title === 'string') document.title = `${title} · JetStream Console`;
  }, [title]);
  return (
    <header className="page-header">
      <div>
        <h1>{title}</h1>
        {sub && <p className="muted">{sub}</p>}
      </div>
      {actions && <div className="actions">{actions}</div>}
    </header>
  );
}

/** An error with its message (which says what to do) and its code. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : new ApiError(String(error), 'INTERNAL');
  const hint: Record<string, string> = {
    FORBIDDEN: 'Your role does not allow this: ask an admin of the organization.',
    UNAVAILABLE: 'The console or the cluster is not reachable now; it retries when you try again.',
    RATE_LIMITED: 'Too many requests: wait a moment, then try again.',
  };
  return (
    <div className="error" role="alert">
      <strong>{e.code}</strong> {e.message}
      {hint[e.code] && <div className="muted">{hint[e.code]}</div>}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** The field a VALIDATION error names, from `extensions.field` or the message's `field:` prefix. */
export function errorField(e: unknown): string | null {
  if (!(e instanceof ApiError) || e.code !== 'VALIDATION') return null;
  if (e.field) return e.field;
  const m = /^([A-Za-z][\w.[\]]*): /.exec(e.message);
  return m ? m[1] : null;
}

type FieldProps = {
  label: string;
  name: string;
  value: string;
  onChange: (v: string) => void;
  type?: string;
  placeholder?: string;
  hint?: ReactNode;
  error?: string | null;
  required?: boolean;
  autoComplete?: string;
  multiline?: boolean;
  pattern?: string;
};

/** A labelled input whose error (the API's VALIDATION message for it) is read with it. */
export function Field(p: FieldProps) {
  const id = useId();
  const described = p.error ? `${id}-err` : p.hint ? `${id}-hint` : undefined;
  const common = {
    id,
    name: p.name,
    value: p.value,
    placeholder: p.placeholder,
    required: p.required,
    'aria-invalid': p.error ? true : undefined,
    'aria-describedby': described,
    autoComplete: p.autoComplete,
  };
  return (
    <div className={`field${p.error ? ' invalid' : ''}`}>
      <label htmlFor={id}>{p.label}</label>
      {p.multiline ? (
        <textarea {...common} rows={5} onChange={(e) => p.onChange(e.target.value)} />
      ) : (
        <input {...common} type={p.type ?? 'text'} pattern={p.pattern} onChange={(e) => p.onChange(e.target.value)} />
      )}
      {p.error ? (
        <div className="field-error" id={`${id}-err`}>
          {p.error}
        </div>
      ) : (
        p.hint && (
          <div className="muted small" id={`${id}-hint`}>
            {p.hint}
          </div>
        )
      )}
    </div>
  );
}

export function Select<T extends string>(p: {
  label: string;
  name: string;
  value: T;
  options: readonly T[];
  onChange: (v: T) => void;
  hint?: ReactNode;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{p.label}</label>
      <select id={id} name={p.name} value={p.value} onChange={(e) => p.onChange(e.target.value as T)}>
        {p.options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
      {p.hint && <div className="muted small">{p.hint}</div>}
    </div>
  );
}

export function Check(p: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  const id = useId();
  return (
    <div className="check">
      <input id={id} type="checkbox" checked={p.checked} onChange={(e) => p.onChange(e.target.checked)} />
      <label htmlFor={id}>{p.label}</label>
    </div>
  );
}

/** Tabs as links: each tab has its own URL. */
export function Tabs({ tabs, current, base }: { tabs: [string, string][]; current: string; base: string }) {
  return (
    <nav className="tabs" aria-label="Sections">
      {tabs.map(([id, label]) => (
        <Link key={id} to={id ? `${base}/${id}` : base} className={id === current ? 'tab current' : 'tab'}>
          <span aria-current={id === current ? 'page' : undefined}>{label}</span>
        </Link>
      ))}
    </nav>
  );
}

/** A modal dialog (the browser's own: focus is trapped, Escape closes it). */
export function Dialog(p: { title: string; open: boolean; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const d = ref.current!;
    if (p.open && !d.open) d.showModal();
    if (!p.open && d.open) d.close();
  }, [p.open]);
  return (
    <dialog ref={ref} aria-labelledby={id} onClose={p.onClose} className={p.wide ? 'wide' : undefined}>
      <header>
        <h2 id={id}>{p.title}</h2>
        <button type="button" className="ghost" aria-label="Close dialog" onClick={p.onClose}>
          ✕
        </button>
      </header>
      {p.open && p.children}
    </dialog>
  );
}

/** A destructive action: enabled once its name is typed. */
export function TypedConfirm(p: {
  what: string;
  name: string;
  action: string;
  onConfirm: () => Promise<unknown>;
  onDone: () => void;
}) {
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <form
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
          await p.onConfirm();
          p.onDone();
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      <p>
        This cannot be undone. Type <code>{p.name}</code> to {p.action.toLowerCase()} the {p.what}.
      </p>
      <Field label={`${p.what} name`} name="confirm" value={typed} onChange={setTyped} autoComplete="off" />
      <ErrorBox error={error} />
      <div className="actions">
        <button type="submit" className="danger" disabled={typed !== p.name || busy}>
          {p.action}
        </button>
      </div>
    </form>
  );
}

export function Stat({ label, value, sub }: { label: string; value: ReactNode; sub?: ReactNode }) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
      {sub && <div className="muted small">{sub}</div>}
    </div>
  );
}

export function Meter({ label, used, limit }: { label: string; used: number; limit: number }) {
  const pct = limit > 0 ? Math.min(100, (used / limit) * 100) : 0;
  return (
    <div className="meter">
      <div className="meter-label">
        <span>{label}</span>
        <span className="muted">{limit > 0 ? `${pct.toFixed(1)} %` : 'no limit'}</span>
      </div>
      <div
        className="meter-bar"
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(pct)}
      >
        <div className={pct > 90 ? 'meter-fill hot' : 'meter-fill'} style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}

export function fmtNum(n: number | null | undefined): string {
  if (n == null) return '—';
  return n.toLocaleString('en-US');
}

export function fmtBytes(n: number | null | undefined): string {
  if (n == null) return '—';
  if (n < 0) return 'no limit';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${u[i]}`;
}

export function fmtLimit(n: number, bytes = false): string {
  return n < 0 ? 'no limit' : bytes ? fmtBytes(n) : fmtNum(n);
}

export function fmtTime(t: string | null | undefined): string {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleString('en-GB', { hour12: false });
}

export function ago(t: string | null | undefined): string {
  if (!t) return 'never';
  const s = Math.round((Date.now() - Date.parse(t)) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Runs an async action for a button or form: busy while it runs, its error kept to show,
 * and `fieldError(name)`: the error's message when it is a VALIDATION naming that field. */
export function useAction<A extends unknown[]>(fn: (...a: A) => Promise<unknown>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (...a: A) => {
    setBusy(true);
    setError(null);
    try {
      await fn(...a);
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  const fieldError = (name: string) => {
    const f = errorField(error);
    return f && (f === name || f.endsWith(`.${name}`)) ? (error as Error).message : null;
  };
  return { run, busy, error, setError, fieldError };
}

/** A form that runs `act` on submit (Enter or its submit button). */
export function ActionForm({
  act,
  children,
  className,
  labelledBy,
}: {
  act: { run: () => Promise<boolean> };
  children: ReactNode;
  className?: string;
  labelledBy?: string;
}) {
  return (
    <form
      className={className}
      aria-labelledby={labelledBy}
      onSubmit={(e) => {
        e.preventDefault();
        void act.run();
      }}
    >
      {children}
    </form>
  );
}

/** `a, b ,c` as `['a', 'b', 'c']`. */
export function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

/** A table of rows: each column a header and how to show a row in it. */
export function Table<R>({
  caption,
  rows,
  rowKey,
  columns,
  className,
}: {
  caption: string;
  rows: readonly R[];
  rowKey: (r: R) => string | number;
  columns: [header: string, cell: (r: R) => ReactNode, className?: string][];
  className?: string;
}) {
  return (
    <table className={`table ${className ?? ''}`}>
      <caption className="sr-only">{caption}</caption>
      <thead>
        <tr>
          {columns.map(([h], i) => (
            <th scope="col" key={i}>
              {h || <span className="sr-only">Actions</span>}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={rowKey(r)}>
            {columns.map(([, cell, cls], i) => (
              <td key={i} className={cls}>
                {cell(r)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const UNITS = ['d', 'h', 'm', 's', 'ms', 'us', 'ns'];

/** The API's own check of a Duration (crates/graphql/src/scalars.rs), with its messages. */
export function durationProblem(text: string): string | null {
  const t = text.trim();
  if (!t) return 'empty duration; write e.g. 30s, 5m, 1h30m or 7d';
  if (t === '0') return null;
  let rest = t;
  while (rest) {
    const digits = /^\d*/.exec(rest)![0].length;
    if (!digits) return `'${text}' is not a duration; write e.g. 30s, 5m, 1h30m or 7d`;
    rest = rest.slice(digits);
    const unit = /^\D*/.exec(rest)![0];
    if (!UNITS.includes(unit)) return `'${text}': unknown unit '${unit}' (use d, h, m, s, ms, us or ns)`;
    rest = rest.slice(unit.length);
  }
  return null;
}

/** Checks a form's fields as the API would before sending: the first problem, on its field. */
export function checkFields(fields: [name: string, value: string, kind: 'duration' | 'integer'][]): void {
  for (const [name, value, kind] of fields) {
    if (!value.trim()) continue;
    const problem = kind === 'duration' ? durationProblem(value) : /^-?\d+$/.test(value.trim()) ? null : `'${value}' is not a whole number`;
    if (problem) throw new ApiError(`${name}: ${problem}`, 'VALIDATION', name);
  }
}

const ActorUser = graphql(`
  query ActorUser($id: ID!) {
    user(id: $id) {
      id
      email
    }
  }
`);
/** What `load` says of `key` (or `fallback`), asked once per page load for each key:
 * `fallback` until it answers. */
function useLookup(
  cache: Map<string, Promise<string>>,
  key: string | null,
  fallback: string,
  load: (key: string) => Promise<string | null | undefined>,
): string {
  const [label, setLabel] = useState(fallback);
  useEffect(() => {
    if (key === null) return setLabel(fallback);
    let p = cache.get(key);
    if (!p) {
      p = load(key).then(
        (l) => l ?? fallback,
        () => fallback,
      );
      cache.set(key, p);
    }
    let live = true;
    void p.then((l) => live && setLabel(l));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, fallback]);
  return label;
}

const actors = new Map<string, Promise<string>>();

/** Who an event names: a user by their email, else as given (`apikey:…`, `system:alerts`,
 * `external:…`). */
export function Actor({ actor }: { actor: string }) {
  const user = /^user:(.+)$/.exec(actor)?.[1] ?? null;
  const label = useLookup(actors, user, actor, (id) => request(ActorUser, { id }).then((d) => d.user?.email));
  return (
    <span className="actor" title={actor}>
      {label}
    </span>
  );
}

const ClusterNameQ = graphql(`
  query ClusterName($id: ID!) {
    cluster(id: $id) {
      id
      name
    }
  }
`);
const clusterNames = new Map<string, Promise<string>>();

/** A resource an alert or event names (cluster / stream / consumer), by the cluster's name,
 * linked to its page. */
export function Resource({ clusterId, stream, consumer }: { clusterId: string; stream?: string | null; consumer?: string | null }) {
  const name = useLookup(clusterNames, clusterId, clusterId, (id) => request(ClusterNameQ, { id }).then((d) => d.cluster?.name));
  const c = `/clusters/${encodeURIComponent(clusterId)}`;
  const s = stream ? `${c}/streams/${encodeURIComponent(stream)}` : null;
  return (
    <span className="resource">
      <Link to={c}>{name}</Link>
      {s && (
        <>
          {' / '}
          <Link to={s}>{stream}</Link>
        </>
      )}
      {s && consumer && (
        <>
          {' / '}
          <Link to={`${s}/consumers/${encodeURIComponent(consumer)}`}>{consumer}</Link>
        </>
      )}
    </span>
  );
}

/** `1 message`, `2 messages`, `10,000 streams`. */
export function count(n: number, word: string): string {
  return `${fmtNum(n)} ${word}${n === 1 ? '' : 's'}`;
}
