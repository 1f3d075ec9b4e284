import { useState } from 'react';
import { request, setSession } from '../api';
import { graphql } from '../gql';
import { navigate, useLocation } from '../router';
import { ActionForm, ErrorBox, Field, useAction } from '../ui';

const Login = graphql(`
  mutation Login($email: String!, $password: String!) {
    login(input: { email: $email, password: $password }) {
      accessToken
      accessTokenExpiresAt
      refreshToken
      userId
    }
  }
`);

const Accept = graphql(`
  mutation AcceptInvitation($token: String!, $password: String!, $name: String!) {
    acceptInvitation(input: { token: $token, password: $password, name: $name }) {
      correlationId
    }
  }
`);

export function SignIn() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const act = useAction(async () => {
    const data = await request(Login, { email, password });
    setSession(data.login);
  });
  return (
    <main className="auth" id="main">
      <ActionForm act={act} className="card" labelledBy="signin-title">
        <h1 id="signin-title">Sign in to JetStream Console</h1>
        <p className="muted">
          The first start printed the password of <code>admin@localhost</code> on the terminal.
        </p>
        <Field label="Email" name="email" type="email" value={email} onChange={setEmail} autoComplete="username" required />
        <Field
          label="Password"
          name="password"
          type="password"
          value={password}
          onChange={setPassword}
          autoComplete="current-password"
          required
        />
        <ErrorBox error={act.error} />
        <button type="submit" disabled={act.busy}>
          {act.busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="muted small">
          Prefer queries? The GraphQL explorer is at <a href="/explorer">/explorer</a>.
        </p>
      </ActionForm>
    </main>
  );
}

/** The page an invitation link opens: choose a name and password, then sign in. */
export function AcceptInvitation() {
  const { query } = useLocation();
  const token = query.get('token') ?? '';
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [done, setDone] = useState(false);
  const act = useAction(async () => {
    await request(Accept, { token, password, name });
    setDone(true);
  });
  return (
    <main className="auth" id="main">
      <ActionForm act={act} className="card" labelledBy="accept-title">
        <h1 id="accept-title">Accept your invitation</h1>
        {done ? (
          <>
            <p>Your account is ready.</p>
            <button type="button" onClick={() => navigate('/sign-in')}>
              Sign in
            </button>
          </>
        ) : (
          <>
            {!token && <ErrorBox error="This link has no invitation token: open the link from your invitation again." />}
            <Field label="Your name" name="name" value={name} onChange={setName} autoComplete="name" />
            <Field
              label="Password"
              name="password"
              type="password"
              value={password}
              onChange={setPassword}
              autoComplete="new-password"
              error={act.fieldError('password')}
              hint="At least 12 characters."
              required
            />
            <ErrorBox error={act.error} />
            <button type="submit" disabled={act.busy || !token}>
              Accept and create my account
            </button>
          </>
        )}
      </ActionForm>
    </main>
  );
}
