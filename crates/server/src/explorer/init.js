// Starts GraphiQL against this console: queries and mutations over HTTP, subscriptions
// over WebSocket (graphql-transport-ws). Everything is served by the console itself.
(function () {
  var wsScheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  // Subscriptions carry the Authorization header set in GraphiQL's Headers tab.
  function connectionParams() {
    try {
      var headers = JSON.parse(window.localStorage.getItem('graphiql:headers') || '{}');
      var auth = headers.Authorization || headers.authorization;
      return auth ? { authorization: auth } : {};
    } catch (e) {
      return {};
    }
  }
  var wsClient = graphqlWs.createClient({
    url: wsScheme + '//' + window.location.host + '/graphql',
    lazy: true,
    connectionParams: connectionParams
  });
  var fetcher = GraphiQL.createFetcher({ url: '/graphql', wsClient: wsClient });
  var defaultQuery = [
    '# Welcome to JetStream Console.',
    '#',
    '# Sign in first (the first start printed the owner password on the terminal), then put',
    '#   {"Authorization": "Bearer <accessToken>"}',
    '# in the Headers tab below; subscriptions use it too.',
    'mutation Login {',
    '  login(input: {email: "admin@localhost", password: "<printed password>"}) { accessToken refreshToken accessTokenExpiresAt }',
    '}',
    '',
    '# List the managed clusters (the embedded server is registered as "local"). Every list is a',
    '# cursor connection: page on with clusters(first: 10, after: "<pageInfo.endCursor>").',
    'query Clusters {',
    '  clusters { nodes { id name urls tags lastConnectionTest { ok serverVersion } } pageInfo { hasNextPage endCursor } }',
    '}',
    '',
    '# Register another cluster, then run TestConnection with its id:',
    'mutation Register {',
    '  registerCluster(input: { name: "staging", urls: ["nats://127.0.0.1:4222"], tags: ["demo"] }) { cluster { id name version } }',
    '}',
    '',
    'mutation TestConnection($id: ID!) {',
    '  testClusterConnection(input: {id: $id}) { test { ok serverVersion jetstream rttMs account { streams storage } } }',
    '}',
    '',
    '# Streams and consumers on a cluster, with live state:',
    'query Streams {',
    '  streams(clusterId: "local") { totalCount nodes { id name config { subjects maxAge } state { messages bytes } consumers { nodes { name state { pending } } } } }',
    '}',
    '',
    '# Any object again by its global id (the `id` of a stream, cluster, user, audit entry...):',
    'query Node {',
    '  node(id: "<an id from Streams>") { __typename id ... on Stream { name state { messages } } }',
    '}',
    '',
    '# Every mutation takes one `input` and answers what changed, the request\'s',
    '# correlationId and the event stream sequence of the event it committed:',
    'mutation CreateStream {',
    '  createStream(input: {clusterId: "local", config: { name: "ORDERS", subjects: ["orders.>"], maxAge: "7d" }}) { stream { name provenance { createdBy } } correlationId sequence }',
    '}',
    '',
    '# What a stream holds, newest first, without consuming it (page on with after: endCursor):',
    'query Messages {',
    '  messages(clusterId: "local", stream: "ORDERS", direction: BACKWARD, first: 20) { nodes { sequence subject time headers { name value } payload { encoding text truncated } } pageInfo { endCursor hasNextPage } readPath }',
    '}',
    '',
    '# Alerts: a rule on consumer lag; alerts firing now with their deliveries (add a channel',
    '# with createNotificationChannel and send to it with setAlertPolicy):',
    'mutation LagRule {',
    '  createAlertRule(input: {rule: {name: "consumer behind", condition: {kind: CONSUMER_LAG, threshold: 1000}, for: "1m", annotations: [{name: "summary", value: "{{ consumer }} has {{ value }} pending"}]}}) { alertRule { id } }',
    '}',
    '',
    'query Alerts {',
    '  alerts { nodes { id state since ruleName stream consumer value threshold deliveries { channelName ok code error } } }',
    '}',
    '',
    '# Watch changes live (open in a second tab and mutate in the first):',
    'subscription Changes {',
    '  clusterChanged { kind clusterId cluster { name version } }',
    '}',
    ''
  ].join('\n');
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, { fetcher: fetcher, defaultQuery: defaultQuery, defaultEditorToolsVisibility: true }));
})();
