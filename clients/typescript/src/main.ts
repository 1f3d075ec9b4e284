// A typed client of the JetStream Console GraphQL API: signs in, creates a stream on the
// first cluster it may see, subscribes to the stream's changes over WebSocket, publishes one
// message and prints the change it caused. Every operation is typed from
// schema/console.graphql (see clients/operations.graphql and `npm run codegen`).
//
//   node dist/main.js http://127.0.0.1:8080 owner@example.com 'password' [STREAM]

import { print } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

import {
  ClustersDocument,
  CreateStreamDocument,
  PublishDocument,
  SignInDocument,
  StreamChangesDocument,
  type StreamChangesSubscription,
} from "./generated/graphql.js";

const [base = "http://127.0.0.1:8080", email = "", password = "", stream = "TS_CLIENT"] = process.argv.slice(2);

/** One GraphQL request over HTTP; throws with the answer's first error. */
async function request<R, V>(doc: TypedDocumentNode<R, V>, variables: V, token?: string): Promise<R> {
  const res = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query: print(doc), variables }),
  }).catch((e: unknown) => {
    throw new Error(`the console at ${base} did not answer (${e instanceof Error ? e.message : e}); is it running?`);
  });
  const body = (await res.json()) as { data?: R; errors?: { message: string; extensions?: { code?: string } }[] };
  const error = body.errors?.[0];
  if (error || !body.data) {
    throw new Error(`${error?.extensions?.code ?? res.status}: ${error?.message ?? "no data"}`);
  }
  return body.data;
}

async function main(): Promise<void> {
  const { login } = await request(SignInDocument, { input: { email, password } });
  const token = login.accessToken;
  const { clusters } = await request(ClustersDocument, { first: 1 }, token);
  const cluster = clusters.nodes[0];
  if (!cluster) throw new Error("no cluster to create the stream on: register one first");

  const ws = createClient({
    url: `${base.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
  });
  // Subscribe first, so the change the publish makes cannot be missed.
  const changes = ws.iterate<StreamChangesSubscription>({
    query: print(StreamChangesDocument),
    variables: { clusterId: cluster.id, name: stream },
  });

  const { createStream: created } = await request(
    CreateStreamDocument,
    { input: { clusterId: cluster.id, config: { name: stream, subjects: [`${stream.toLowerCase()}.>`] } } },
    token,
  );
  const made = created.stream;
  console.log(
    `created ${made.name} (${made.id}) on ${cluster.name}: ${made.config.subjects.join(", ")} (event ${created.sequence ?? "-"})`,
  );

  // The subscription starts as the server gets to it: a change made before then is not
  // sent. So publish, wait a second for the change, and publish again if it did not come.
  const it = changes[Symbol.asyncIterator]();
  let next = it.next();
  const timeout = (ms: number) => new Promise<null>((resolve) => setTimeout(() => resolve(null), ms));
  let seen = false;
  for (let attempt = 1; !seen; attempt++) {
    if (attempt > 10) throw new Error("no PUBLISHED change arrived after 10 messages");
    const { publishMessage: published } = await request(
      PublishDocument,
      { input: { clusterId: cluster.id, stream, subject: `${stream.toLowerCase()}.hello`, payload: "hello" } },
      token,
    );
    console.log(`published at sequence ${published.ack.sequence} (event ${published.sequence ?? "-"})`);
    const deadline = Date.now() + 1000;
    while (!seen) {
      const r = await Promise.race([next, timeout(Math.max(0, deadline - Date.now()))]);
      if (r === null) break;
      if (r.done) throw new Error("the subscription ended");
      next = it.next();
      const change = r.value.data?.streamChanged;
      if (!change) throw new Error(`subscription error: ${JSON.stringify(r.value.errors)}`);
      console.log(`change ${change.kind} ${change.name} version ${change.stream?.version ?? "-"}`);
      seen = change.kind === "PUBLISHED";
    }
  }
  await ws.dispose();
}

// A failure is one line saying what went wrong (the console's code and message), exit 1.
main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
