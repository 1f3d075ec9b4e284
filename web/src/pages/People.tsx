// People of the organization: members and their roles, invitations, teams, API keys (a new
// key is shown once).
import { useState } from 'react';
import { request, useQuery } from '../api';
import { atLeast, useOrg, type Role } from '../App';
import { graphql } from '../gql';
import { ActionForm, Actor, Dialog, ErrorBox, Field, Loading, PageHeader, Select, Table, Tabs, fmtTime, useAction } from '../ui';

const MembersQ = graphql(`
  query Members($org: ID!) {
    organization(id: $org) {
      id
      members(first: 500) {
        nodes {
          role
          user {
            id
            email
            name
            disabled
          }
        }
      }
    }
  }
`);

const InvitationsQ = graphql(`
  query Invitations($org: ID!) {
    organization(id: $org) {
      id
      invitations(first: 200) {
        nodes {
          id
          email
          role
          status
          expiresAt
          createdBy
        }
      }
    }
  }
`);

const TeamsQ = graphql(`
  query Teams($org: ID!) {
    organization(id: $org) {
      id
      teams(first: 50) {
        nodes {
          id
          name
          members(first: 25) {
            totalCount
            nodes {
              id
              email
            }
          }
          clusterRoles {
            clusterId
            role
          }
        }
      }
      members(first: 200) {
        nodes {
          user {
            id
            email
          }
        }
      }
    }
    clusters(organizationId: $org, first: 200) {
      nodes {
        id
        name
      }
    }
  }
`);

const CreateTeam = graphql(`
  mutation CreateTeam($org: ID!, $name: String!) {
    createTeam(input: { organizationId: $org, name: $name }) {
      team {
        id
      }
    }
  }
`);

const DeleteTeam = graphql(`
  mutation DeleteTeam($org: ID!, $team: ID!) {
    deleteTeam(input: { organizationId: $org, teamId: $team }) {
      correlationId
    }
  }
`);

const AddTeamMember = graphql(`
  mutation AddTeamMember($org: ID!, $team: ID!, $user: ID!) {
    addTeamMember(input: { organizationId: $org, teamId: $team, userId: $user }) {
      correlationId
    }
  }
`);

const RemoveTeamMember = graphql(`
  mutation RemoveTeamMember($org: ID!, $team: ID!, $user: ID!) {
    removeTeamMember(input: { organizationId: $org, teamId: $team, userId: $user }) {
      correlationId
    }
  }
`);

const SetTeamClusterRole = graphql(`
  mutation SetTeamClusterRole($org: ID!, $team: ID!, $cluster: ID!, $role: Role) {
    setTeamClusterRole(input: { organizationId: $org, teamId: $team, clusterId: $cluster, role: $role }) {
      correlationId
    }
  }
`);

const KeysQ = graphql(`
  query ApiKeys($org: ID!) {
    organization(id: $org) {
      id
      apiKeys(first: 200) {
        nodes {
          id
          name
          role
          createdAt
          createdBy
          expiresAt
          revoked
          lastUsedAt
        }
      }
    }
  }
`);

const SetRole = graphql(`
  mutation SetMemberRole($org: ID!, $user: ID!, $role: Role!) {
    setMemberRole(input: { organizationId: $org, userId: $user, role: $role }) {
      correlationId
    }
  }
`);

const Invite = graphql(`
  mutation InviteUser($org: ID!, $email: String!, $role: Role!) {
    inviteUser(input: { organizationId: $org, email: $email, role: $role }) {
      token
    }
  }
`);

const RevokeInvite = graphql(`
  mutation RevokeInvitation($id: ID!) {
    revokeInvitation(input: { id: $id }) {
      correlationId
    }
  }
`);

const CreateKey = graphql(`
  mutation CreateApiKey($org: ID!, $name: String!, $role: Role!) {
    createApiKey(input: { organizationId: $org, name: $name, role: $role }) {
      key
    }
  }
`);

const RevokeKey = graphql(`
  mutation RevokeApiKey($id: ID!) {
    revokeApiKey(input: { id: $id }) {
      correlationId
    }
  }
`);

const ROLES: readonly Role[] = ['VIEWER', 'OPERATOR', 'ADMIN', 'OWNER'];

export function People({ tab }: { tab: string }) {
  const { org } = useOrg();
  const [inviting, setInviting] = useState(false);
  const [keying, setKeying] = useState(false);
  // Bumped after a change made from a dialog, so the tab shows it.
  const [changed, setChanged] = useState(0);
  const bump = () => setChanged((n) => n + 1);
  const admin = atLeast(org.role, 'ADMIN');
  return (
    <section>
      <PageHeader
        title="People"
        sub={`Who can do what in ${org.name}.`}
        actions={
          admin && (
            <>
              <button onClick={() => setInviting(true)}>Invite</button>
              <button className="secondary" onClick={() => setKeying(true)}>
                New API key
              </button>
            </>
          )
        }
      />
      <Tabs
        base="/people"
        current={tab}
        tabs={[
          ['', 'Members'],
          ['invitations', 'Invitations'],
          ['teams', 'Teams'],
          ['api-keys', 'API keys'],
        ]}
      />
      {tab === '' && <Members admin={admin} />}
      {tab === 'invitations' && <Invitations admin={admin} key={changed} />}
      {tab === 'teams' && <Teams admin={admin} />}
      {tab === 'api-keys' && <Keys admin={admin} key={changed} />}
      <Dialog title="Invite someone" open={inviting} onClose={() => setInviting(false)}>
        <InviteForm onDone={bump} />
      </Dialog>
      <Dialog title="New API key" open={keying} onClose={() => setKeying(false)}>
        <KeyForm onDone={bump} />
      </Dialog>
    </section>
  );
}

function Members({ admin }: { admin: boolean }) {
  const { org, me, reloadMe } = useOrg();
  const q = useQuery(MembersQ, { org: org.id });
  const roleChange = useAction(async (user: string, role: Role) => {
    await request(SetRole, { org: org.id, user, role });
    q.reload();
    if (user === me.id) reloadMe();
  });
  const o = q.data?.organization;
  if (!o) return q.error ? <ErrorBox error={q.error} /> : <Loading what="members" />;
  return (
    <>
      <ErrorBox error={q.error ?? roleChange.error} />
      <Table
        caption="Members"
        rows={o.members.nodes}
        rowKey={(m) => m.user.id}
        columns={[
          ['Name', (m) => <>{m.user.name || '—'} {m.user.disabled && <span className="badge muted">disabled</span>}</>],
          ['Email', (m) => m.user.email],
          [
            'Role',
            (m) =>
              admin ? (
                <select
                  aria-label={`Role of ${m.user.email}`}
                  value={m.role}
                  disabled={roleChange.busy}
                  onChange={(e) => void roleChange.run(m.user.id, e.target.value as Role)}
                >
                  {ROLES.map((r) => (
                    <option key={r} value={r}>
                      {r.toLowerCase()}
                    </option>
                  ))}
                </select>
              ) : (
                m.role.toLowerCase()
              ),
          ],
        ]}
      />
    </>
  );
}

function Invitations({ admin }: { admin: boolean }) {
  const { org } = useOrg();
  const q = useQuery(InvitationsQ, { org: org.id });
  const revoke = useAction(async (id: string) => {
    await request(RevokeInvite, { id });
    q.reload();
  });
  const o = q.data?.organization;
  if (!o) return q.error ? <ErrorBox error={q.error} /> : <Loading what="invitations" />;
  if (!o.invitations.nodes.length) return <p className="empty">No invitation.</p>;
  return (
    <>
      <ErrorBox error={revoke.error} />
      <Table
        caption="Invitations"
        rows={o.invitations.nodes}
        rowKey={(i) => i.id}
        columns={[
          ['Email', (i) => i.email],
          ['Role', (i) => i.role.toLowerCase()],
          ['Status', (i) => i.status.toLowerCase()],
          ['Expires', (i) => fmtTime(i.expiresAt)],
          [
            '',
            (i) =>
              admin &&
              i.status === 'PENDING' && (
                <button className="secondary small" onClick={() => void revoke.run(i.id)}>
                  Revoke
                </button>
              ),
          ],
        ]}
      />
    </>
  );
}

/** Teams raise their members' role on chosen clusters (never lower it). */
function Teams({ admin }: { admin: boolean }) {
  const { org } = useOrg();
  const q = useQuery(TeamsQ, { org: org.id });
  const [name, setName] = useState('');
  const create = useAction(async () => {
    await request(CreateTeam, { org: org.id, name });
    setName('');
    q.reload();
  });
  const change = useAction(async (fn: () => Promise<unknown>) => {
    await fn();
    q.reload();
  });
  const o = q.data?.organization;
  if (!o) return q.error ? <ErrorBox error={q.error} /> : <Loading what="teams" />;
  const clusters = q.data?.clusters.nodes ?? [];
  const clusterName = (id: string) => clusters.find((c) => c.id === id)?.name ?? id;
  return (
    <>
      {admin && (
        <ActionForm act={create} className="toolbar">
          <Field label="New team" name="name" value={name} onChange={setName} error={create.fieldError('name')} placeholder="e.g. payments" />
          <button type="submit" disabled={!name || create.busy}>
            Create team
          </button>
        </ActionForm>
      )}
      <ErrorBox error={create.error ?? change.error} />
      {!o.teams.nodes.length ? (
        <p className="empty">No team. A team raises its members&apos; role on the clusters you choose, e.g. operators on payments-prod.</p>
      ) : (
        <Table
          caption="Teams"
          rows={o.teams.nodes}
          rowKey={(t) => t.id}
          columns={[
            ['Team', (t) => <strong>{t.name}</strong>],
            [
              'Members',
              (t) => (
                <>
                  {t.members.nodes.map((u) => (
                    <div key={u.id} className="small">
                      {u.email}{' '}
                      {admin && (
                        <button
                          className="link small"
                          aria-label={`Remove ${u.email} from ${t.name}`}
                          onClick={() => void change.run(() => request(RemoveTeamMember, { org: org.id, team: t.id, user: u.id }))}
                        >
                          remove
                        </button>
                      )}
                    </div>
                  ))}
                  {admin && (
                    <select
                      aria-label={`Add a member to ${t.name}`}
                      value=""
                      onChange={(e) => e.target.value && void change.run(() => request(AddTeamMember, { org: org.id, team: t.id, user: e.target.value }))}
                    >
                      <option value="">Add a member…</option>
                      {o.members.nodes
                        .filter((m) => !t.members.nodes.some((u) => u.id === m.user.id))
                        .map((m) => (
                          <option key={m.user.id} value={m.user.id}>
                            {m.user.email}
                          </option>
                        ))}
                    </select>
                  )}
                </>
              ),
            ],
            [
              'Cluster roles',
              (t) => (
                <>
                  {t.clusterRoles.map((g) => (
                    <div key={g.clusterId} className="small">
                      {clusterName(g.clusterId)}: {g.role.toLowerCase()}{' '}
                      {admin && (
                        <button
                          className="link small"
                          aria-label={`Remove the role on ${clusterName(g.clusterId)} from ${t.name}`}
                          onClick={() => void change.run(() => request(SetTeamClusterRole, { org: org.id, team: t.id, cluster: g.clusterId, role: null }))}
                        >
                          remove
                        </button>
                      )}
                    </div>
                  ))}
                  {admin && <GrantForm teamName={t.name} clusters={clusters} onGrant={(cluster, role) => change.run(() => request(SetTeamClusterRole, { org: org.id, team: t.id, cluster, role }))} />}
                </>
              ),
            ],
            [
              '',
              (t) =>
                admin && (
                  <button className="secondary small" onClick={() => void change.run(() => request(DeleteTeam, { org: org.id, team: t.id }))}>
                    Delete
                  </button>
                ),
            ],
          ]}
        />
      )}
    </>
  );
}

function GrantForm({ teamName, clusters, onGrant }: { teamName: string; clusters: { id: string; name: string }[]; onGrant: (cluster: string, role: Role) => Promise<unknown> }) {
  const [cluster, setCluster] = useState('');
  const [role, setRole] = useState<Role>('OPERATOR');
  return (
    <span className="grant">
      <select aria-label={`Cluster to grant ${teamName} a role on`} value={cluster} onChange={(e) => setCluster(e.target.value)}>
        <option value="">Grant on a cluster…</option>
        {clusters.map((c) => (
          <option key={c.id} value={c.id}>
            {c.name}
          </option>
        ))}
      </select>
      <select aria-label={`Role for ${teamName}`} value={role} onChange={(e) => setRole(e.target.value as Role)}>
        {(['VIEWER', 'OPERATOR', 'ADMIN'] as const).map((r) => (
          <option key={r} value={r}>
            {r.toLowerCase()}
          </option>
        ))}
      </select>
      <button className="secondary small" disabled={!cluster} onClick={() => void onGrant(cluster, role).then(() => setCluster(''))}>
        Grant
      </button>
    </span>
  );
}

function Keys({ admin }: { admin: boolean }) {
  const { org } = useOrg();
  const q = useQuery(KeysQ, { org: org.id });
  const revoke = useAction(async (id: string) => {
    await request(RevokeKey, { id });
    q.reload();
  });
  const o = q.data?.organization;
  if (!o) return q.error ? <ErrorBox error={q.error} /> : <Loading what="API keys" />;
  if (!o.apiKeys.nodes.length) return <p className="empty">No API key.</p>;
  return (
    <>
      <ErrorBox error={revoke.error} />
      <Table
        caption="API keys"
        rows={o.apiKeys.nodes}
        rowKey={(k) => k.id}
        columns={[
          ['Name', (k) => <>{k.name} {k.revoked && <span className="badge muted">revoked</span>}</>],
          ['Role', (k) => k.role.toLowerCase()],
          ['Created', (k) => <>{fmtTime(k.createdAt)} by <Actor actor={k.createdBy} /></>, 'small'],
          ['Last used', (k) => fmtTime(k.lastUsedAt), 'small'],
          [
            '',
            (k) =>
              admin &&
              !k.revoked && (
                <button className="secondary small" onClick={() => void revoke.run(k.id)}>
                  Revoke
                </button>
              ),
          ],
        ]}
      />
    </>
  );
}

function InviteForm({ onDone }: { onDone: () => void }) {
  const { org } = useOrg();
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('VIEWER');
  const [link, setLink] = useState<string | null>(null);
  const act = useAction(async () => {
    const r = await request(Invite, { org: org.id, email, role });
    setLink(`${location.origin}/invitation?token=${encodeURIComponent(r.inviteUser.token)}`);
    onDone();
  });
  if (link)
    return (
      <div>
        <p>Send this link to {email}; it is shown only now:</p>
        <pre className="secret">{link}</pre>
      </div>
    );
  return (
    <ActionForm act={act}>
      <Field label="Email" name="email" type="email" value={email} onChange={setEmail} required error={act.fieldError('email')} />
      <Select label="Role" name="role" value={role} options={ROLES} onChange={setRole} />
      <ErrorBox error={act.error} />
      <div className="actions">
        <button type="submit" disabled={act.busy}>
          Invite
        </button>
      </div>
    </ActionForm>
  );
}

function KeyForm({ onDone }: { onDone: () => void }) {
  const { org } = useOrg();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('VIEWER');
  const [key, setKey] = useState<string | null>(null);
  const act = useAction(async () => {
    const r = await request(CreateKey, { org: org.id, name, role });
    setKey(r.createApiKey.key);
    onDone();
  });
  if (key)
    return (
      <div>
        <p>Copy the key now: it is shown only once. Send it as <code>Authorization: Bearer &lt;key&gt;</code>.</p>
        <pre className="secret" data-testid="api-key">
          {key}
        </pre>
      </div>
    );
  return (
    <ActionForm act={act}>
      <Field label="Name" name="name" value={name} onChange={setName} required error={act.fieldError('name')} />
      <Select label="Role" name="role" value={role} options={ROLES} onChange={setRole} />
      <ErrorBox error={act.error} />
      <div className="actions">
        <button type="submit" disabled={act.busy}>
          Create key
        </button>
      </div>
    </ActionForm>
  );
}
