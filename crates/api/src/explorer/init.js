// Starts GraphiQL against this console: queries and mutations over HTTP, subscriptions
// over WebSocket (graphql-transport-ws). Everything is served by the console itself.
(function () {
  var wsScheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  var wsClient = graphqlWs.createClient({ url: wsScheme + '//' + window.location.host + '/graphql', lazy: true });
  var fetcher = GraphiQL.createFetcher({ url: '/graphql', wsClient: wsClient });
  var defaultQuery = [
    '# Welcome to JetStream Console.',
    '#',
    '# List the managed clusters (the embedded server is registered as "local"):',
    'query Clusters {',
    '  clusters { id name urls tags lastConnectionTest { ok serverVersion } }',
    '}',
    '',
    '# Register another cluster, then run TestConnection with its id:',
    'mutation Register {',
    '  registerCluster(input: { name: "staging", urls: ["nats://127.0.0.1:4222"], tags: ["demo"] }) { id name version }',
    '}',
    '',
    'mutation TestConnection($id: ID!) {',
    '  testClusterConnection(id: $id) { ok serverVersion jetstream rttMs account { streams storage } }',
    '}',
    '',
    '# Streams and consumers on a cluster, with live state:',
    'query Streams {',
    '  streams(clusterId: "local") { totalCount nodes { name config { subjects maxAge } state { messages bytes } consumers { name state { pending } } } }',
    '}',
    '',
    'mutation CreateStream {',
    '  createStream(clusterId: "local", config: { name: "ORDERS", subjects: ["orders.>"], maxAge: "7d" }) { name provenance { createdBy } }',
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
