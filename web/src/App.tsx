// The shell: sign-in when there is no session; otherwise the top bar (organization switcher,
// live-connection indicator, theme), the sidebar, and the page the URL names.
import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import { request, setSession, useConnection, useQuery, useSession } from './api';
import { graphql } from './gql';
import { match, navigate, useLocation } from './router';
import { ErrorBox, Link, Loading } from './ui';
import { SignIn, AcceptInvitation } from './pages/SignIn';
import { Clusters, ClusterPage } from './pages/Clusters';
import { StreamPage } from './pages/Stream';
import { ConsumerPage } from './pages/Consumer';
import { Audit } from './pages/Audit';
import { People } from './pages/People';
import { Account } from './pages/Account';
import { Alerts } from './pages/Alerts';

const Me = graphql(`
  query Me {
    me {
      id
      email
      name
      organizations {
        role
        organization {
          id
          name
        }
      }
    }
  }
`);

const Logout = graphql(`
  mutation Logout {
    logout {
      correlationId
    }
  }
`);

export type Role = 'VIEWER' | 'OPERATOR' | 'ADMIN' | 'OWNER';
export type Org = { id: string; name: string; role: Role };
type Ctx = { org: Org; orgs: Org[]; me: { id: string; email: string; name: string }; reloadMe: () => void };
const OrgContext = createContext<Ctx | null>(null);

/** The organization the pages act in, the caller's role in it, and who the caller is. */
export function useOrg(): Ctx {
  return useContext(OrgContext)!;
}

const RANK: Record<Role, number> = { VIEWER: 0, OPERATOR: 1, ADMIN: 2, OWNER: 3 };

/** The caller's role on the cluster a page shows (its organization role raised by team
 * grants: `Cluster.myRole`); pages of one cluster provide it. */
export const ClusterRole = createContext<Role | null>(null);

/** Whether the caller may do what needs `min` here: on a cluster's pages by the role on that
 * cluster, elsewhere by the role in the organization. Pages hide what the API would refuse. */
export function useCan(min: Role): boolean {
  const { org } = useOrg();
  const onCluster = useContext(ClusterRole);
  return atLeast(onCluster ?? org.role, min);
}
/** Whether the caller's role is at least `min` (pages hide what the API would refuse). */
export function atLeast(role: Role, min: Role) {
  return RANK[role] >= RANK[min];
}

export function App() {
  const session = useSession();
  const { path } = useLocation();
  useTheme();
  if (match('/invitation', path)) return <AcceptInvitation />;
  if (!session) return <SignIn />;
  return <SignedIn />;
}

function SignedIn() {
  const me = useQuery(Me, {});
  const [orgId, setOrgId] = useState(() => localStorage.getItem('jsconsole.org'));
  if (me.error && !me.data) {
    return (
      <main className="center">
        <ErrorBox error={me.error} />
        <button onClick={() => setSession(null)}>Sign in again</button>
      </main>
    );
  }
  if (!me.data?.me) return <Loading what="your account" />;
  const orgs: Org[] = me.data.me.organizations.map((m) => ({ ...m.organization, role: m.role }));
  const org = orgs.find((o) => o.id === orgId) ?? orgs[0];
  if (!org) {
    return (
      <main className="center">
        <p>You are not a member of any organization yet: ask an admin to invite you.</p>
        <button onClick={() => setSession(null)}>Sign out</button>
      </main>
    );
  }
  const choose = (id: string) => {
    localStorage.setItem('jsconsole.org', id);
    setOrgId(id);
    navigate('/clusters');
  };
  return (
    <OrgContext.Provider value={{ org, orgs, me: me.data.me, reloadMe: me.reload }}>
      <Shell onOrg={choose}>
        <Routes />
      </Shell>
    </OrgContext.Provider>
  );
}

function Shell({ children, onOrg }: { children: ReactNode; onOrg: (id: string) => void }) {
  const { org, orgs, me } = useOrg();
  const conn = useConnection();
  const { path } = useLocation();
  const [theme, setTheme] = useThemeChoice();
  const nav: [string, string][] = [
    ['/clusters', 'Clusters'],
    ['/alerts', 'Alerts'],
    ['/audit', 'Audit'],
    ['/people', 'People'],
    ['/account', 'Account'],
  ];
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/clusters" className="brand">
          JetStream Console
        </Link>
        <label className="org">
          <span className="sr-only">Organization</span>
          <select value={org.id} onChange={(e) => onOrg(e.target.value)} aria-label="Organization">
            {orgs.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name} ({o.role.toLowerCase()})
              </option>
            ))}
          </select>
        </label>
        <span className="spacer" />
        <span className={`conn ${conn}`} role="status" aria-live="polite" title="Live updates over WebSocket">
          <span className="dot" aria-hidden="true" />
          {conn === 'connected' ? 'Live' : conn === 'connecting' ? 'Connecting…' : 'Offline: retrying'}
        </span>
        <button
          type="button"
          className="ghost"
          onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')}
          aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
        >
          {theme === 'dark' ? '☀' : '☾'}
        </button>
        <a className="ghost-link" href="/explorer">
          Explorer
        </a>
        <span className="muted small who">{me.email}</span>
        <button
          type="button"
          className="ghost"
          onClick={async () => {
            await request(Logout, {}).catch(() => {});
            setSession(null);
            navigate('/');
          }}
        >
          Sign out
        </button>
      </header>
      <nav className="sidebar" aria-label="Main">
        <ul>
          {nav.map(([to, label]) => (
            <li key={to}>
              <Link to={to} className={path.startsWith(to) ? 'current' : undefined}>
                <span aria-current={path.startsWith(to) ? 'page' : undefined}>{label}</span>
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}

function Routes() {
  const { path } = useLocation();
  useEffect(() => {
    if (path === '/' || path === '/sign-in') navigate('/clusters', true);
  }, [path]);
  let m;
  if ((m = match('/clusters', path))) return <Clusters />;
  if ((m = match('/clusters/:id/streams/:stream/consumers/:consumer', path)))
    return <ConsumerPage id={m.id} stream={m.stream} consumer={m.consumer} tab="" />;
  if ((m = match('/clusters/:id/streams/:stream/consumers/:consumer/:tab', path)))
    return <ConsumerPage id={m.id} stream={m.stream} consumer={m.consumer} tab={m.tab} />;
  if ((m = match('/clusters/:id/streams/:stream', path))) return <StreamPage id={m.id} stream={m.stream} tab="" />;
  if ((m = match('/clusters/:id/streams/:stream/:tab', path))) return <StreamPage id={m.id} stream={m.stream} tab={m.tab} />;
  if ((m = match('/clusters/:id', path))) return <ClusterPage id={m.id} tab="" />;
  if ((m = match('/clusters/:id/:tab', path))) return <ClusterPage id={m.id} tab={m.tab} />;
  if (match('/alerts', path)) return <Alerts tab="" />;
  if ((m = match('/alerts/:tab', path))) return <Alerts tab={m.tab} />;
  if (match('/audit', path)) return <Audit />;
  if ((m = match('/people', path))) return <People tab="" />;
  if ((m = match('/people/:tab', path))) return <People tab={m.tab} />;
  if (match('/account', path)) return <Account />;
  if (path === '/' || path === '/sign-in') return null;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no page at <code>{path}</code>. <Link to="/clusters">Go to the clusters.</Link>
      </p>
    </section>
  );
}

// ---- theme ----------------------------------------------------------------------------------

type Theme = 'light' | 'dark';
const themeListeners = new Set<(t: Theme) => void>();
function currentTheme(): Theme {
  const saved = localStorage.getItem('jsconsole.theme');
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}
function useTheme() {
  useEffect(() => {
    document.documentElement.dataset.theme = currentTheme();
  }, []);
}
function useThemeChoice(): [Theme, (t: Theme) => void] {
  const [t, setT] = useState<Theme>(currentTheme);
  useEffect(() => {
    themeListeners.add(setT);
    return () => {
      themeListeners.delete(setT);
    };
  }, []);
  return [
    t,
    (next) => {
      localStorage.setItem('jsconsole.theme', next);
      document.documentElement.dataset.theme = next;
      themeListeners.forEach((l) => l(next));
    },
  ];
}
