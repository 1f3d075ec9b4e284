// Your account: change password (other sessions end; this one continues) and your sessions.
import { useState } from 'react';
import { request, setSession, useQuery } from '../api';
import { useOrg } from '../App';
import { graphql } from '../gql';
import { ErrorBox, Field, Loading, PageHeader, Table, fmtTime, useAction } from '../ui';

const Sessions = graphql(`
  query MySessions {
    me {
      id
      sessions(first: 100) {
        nodes {
          id
          startedAt
          lastRefreshedAt
          expiresAt
          current
        }
      }
    }
  }
`);

const ChangePassword = graphql(`
  mutation ChangePassword($current: String!, $next: String!) {
    changePassword(input: { currentPassword: $current, newPassword: $next }) {
      accessToken
      accessTokenExpiresAt
      refreshToken
      userId
    }
  }
`);

const RevokeSession = graphql(`
  mutation RevokeSession($id: ID!) {
    revokeSession(input: { id: $id }) {
      sessionId
    }
  }
`);

export function Account() {
  const { me } = useOrg();
  const q = useQuery(Sessions, {});
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [changed, setChanged] = useState(false);
  const change = useAction(async () => {
    const r = await request(ChangePassword, { current, next });
    setSession(r.changePassword);
    setChanged(true);
    setCurrent('');
    setNext('');
    q.reload();
  });
  const revoke = useAction(async (id: string) => {
    await request(RevokeSession, { id });
    q.reload();
  });
  return (
    <section>
      <PageHeader title="Account" sub={`${me.name || me.email} · ${me.email}`} />
      <div className="grid">
        <form
          className="card"
          onSubmit={(e) => {
            e.preventDefault();
            setChanged(false);
            void change.run();
          }}
        >
          <h2>Change password</h2>
          <Field label="Current password" name="currentPassword" type="password" value={current} onChange={setCurrent} autoComplete="current-password" required error={change.fieldError('currentPassword')} />
          <Field
            label="New password"
            name="newPassword"
            type="password"
            value={next}
            onChange={setNext}
            autoComplete="new-password"
            required
            hint="At least 12 characters. Your other sessions end."
            error={change.fieldError('newPassword') ?? change.fieldError('password')}
          />
          <ErrorBox error={change.error} />
          {changed && (
            <p className="result ok" role="status">
              Password changed; your other sessions have ended.
            </p>
          )}
          <div className="actions">
            <button type="submit" disabled={change.busy}>
              Change password
            </button>
          </div>
        </form>
        <div className="card">
          <h2>Sessions</h2>
          <ErrorBox error={q.error ?? revoke.error} />
          {!q.data ? (
            <Loading what="sessions" />
          ) : (
            <Table
              caption="Your sessions"
              rows={q.data.me?.sessions.nodes ?? []}
              rowKey={(s) => s.id}
              columns={[
                ['Started', (s) => fmtTime(s.startedAt)],
                ['Last refreshed', (s) => fmtTime(s.lastRefreshedAt)],
                ['Ends', (s) => fmtTime(s.expiresAt)],
                [
                  '',
                  (s) =>
                    s.current ? (
                      <span className="badge ok">this one</span>
                    ) : (
                      <button className="secondary small" onClick={() => void revoke.run(s.id)}>
                        Sign out
                      </button>
                    ),
                ],
              ]}
            />
          )}
        </div>
      </div>
    </section>
  );
}
