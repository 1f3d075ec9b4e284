// The one way the pages talk to the console: typed operations (generated from the schema) over
// HTTP for queries and mutations and over WebSocket (graphql-transport-ws) for subscriptions,
// with the signed-in session kept here and refreshed before its access token lapses.
import { createClient, type Client } from 'graphql-ws';
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { TypedDocumentString } from './gql/graphql';
import { graphql } from './gql';

/** An answer's error, as the API gives it: a message that says what to do, and its code. */
export class ApiError extends Error {
  constructor(
    message: string,
    public code: string,
    public field?: string,
  ) {
    super(message);
  }
}

export type Session = {
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  userId: string;
};

const KEY = 'jsconsole.session';
let session: Session | null = load();
const listeners = new Set<() => void>();

function load(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function setSession(s: Session | null) {
  session = s;
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
  resetSocket();
  listeners.forEach((l) => l());
}

export function useSession(): Session | null {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => session,
  );
}

const Refresh = graphql(`
  mutation RefreshSession($refreshToken: String!) {
    refreshSession(input: { refreshToken: $refreshToken }) {
      accessToken
      accessTokenExpiresAt
      refreshToken
      userId
    }
  }
`);

let refreshing: Promise<void> | null = null;

/** A fresh access token: refreshed when it lapses within a minute (once for all callers). */
async function accessToken(): Promise<string | null> {
  if (!session) return null;
  const left = Date.parse(session.accessTokenExpiresAt) - Date.now();
  if (left > 60_000) return session.accessToken;
  refreshing ??= (async () => {
    try {
      const data = await post(Refresh, { refreshToken: session!.refreshToken }, null);
      setSession(data.refreshSession);
    } catch {
      setSession(null);
    } finally {
      refreshing = null;
    }
  })();
  await refreshing;
  return session?.accessToken ?? null;
}

type Result<T> = { data?: T; errors?: { message: string; extensions?: { code?: string; field?: string } }[] };

async function post<T, V>(doc: TypedDocumentString<T, V>, variables: V, token: string | null): Promise<T> {
  let res: Response;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query: doc.toString(), variables }),
    });
  } catch {
    throw new ApiError('The console did not answer: check that it is running, then try again.', 'UNAVAILABLE');
  }
  let body: Result<T>;
  try {
    body = (await res.json()) as Result<T>;
  } catch {
    throw new ApiError(`The console answered ${res.status} without a GraphQL body; try again.`, 'INTERNAL');
  }
  const e = body.errors?.[0];
  if (e) throw new ApiError(e.message, e.extensions?.code ?? 'INTERNAL', e.extensions?.field);
  return body.data as T;
}

/** Runs a query or mutation; an expired session signs out. */
export async function request<T, V>(doc: TypedDocumentString<T, V>, variables: V): Promise<T> {
  try {
    return await post(doc, variables, await accessToken());
  } catch (e) {
    if (e instanceof ApiError && e.code === 'UNAUTHENTICATED' && session) setSession(null);
    throw e;
  }
}

// ---- WebSocket ------------------------------------------------------------------------------

export type Connection = 'connecting' | 'connected' | 'offline';
let socket: Client | null = null;
let connection: Connection = 'connecting';
const connListeners = new Set<() => void>();
function setConnection(c: Connection) {
  connection = c;
  connListeners.forEach((l) => l());
}

function resetSocket() {
  socket?.dispose();
  socket = null;
}

function ws(): Client {
  socket ??= createClient({
    url: `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/graphql`,
    // Connected while signed in, so the indicator tells whether live updates would arrive.
    lazy: false,
    keepAlive: 15_000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    connectionParams: async () => {
      const t = await accessToken();
      return t ? { authorization: `Bearer ${t}` } : {};
    },
    on: {
      connecting: () => setConnection('connecting'),
      connected: () => setConnection('connected'),
      closed: () => setConnection('offline'),
    },
  });
  return socket;
}

/** Whether the live connection is up: the indicator in the top bar. */
export function useConnection(): Connection {
  useEffect(() => {
    ws();
  }, []);
  return useSyncExternalStore(
    (l) => {
      connListeners.add(l);
      return () => connListeners.delete(l);
    },
    () => connection,
  );
}

/** Calls `onData` with each event of a subscription while the component is mounted. */
export function useSubscription<T, V>(
  doc: TypedDocumentString<T, V>,
  variables: V | null,
  onData: (data: T) => void,
): ApiError | null {
  const [error, setError] = useState<ApiError | null>(null);
  const cb = useRef(onData);
  cb.current = onData;
  const key = JSON.stringify(variables);
  useEffect(() => {
    if (variables === null) return;
    setError(null);
    return ws().subscribe<T>(
      { query: doc.toString(), variables: variables as Record<string, unknown> },
      {
        next: (r) => {
          const e = r.errors?.[0] as { message: string; extensions?: { code?: string } } | undefined;
          if (e) setError(new ApiError(e.message, e.extensions?.code ?? 'INTERNAL'));
          else if (r.data) cb.current(r.data as T);
        },
        error: (e) => setError(new ApiError(e instanceof Error ? e.message : 'The live connection closed.', 'UNAVAILABLE')),
        complete: () => {},
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [doc, key]);
  return error;
}

export type Loaded<T> = { data: T | null; error: ApiError | null; loading: boolean; reload: () => void };

/** Runs a query when its variables change; `reload` runs it again (keeping what is shown). */
export function useQuery<T, V>(doc: TypedDocumentString<T, V>, variables: V | null): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: ApiError | null; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const key = JSON.stringify(variables);
  useEffect(() => {
    if (variables === null) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    request(doc, variables).then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error: ApiError) => live && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [doc, key, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}
