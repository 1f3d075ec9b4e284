// Typed operations for the web console, generated from the exported schema: a schema change
// that breaks a page fails `npm run build` (codegen validates every document, tsc the pages).
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../schema/console.graphql',
  documents: ['src/**/*.{ts,tsx}', '!src/gql/**/*'],
  ignoreNoDocuments: false,
  errorsOnly: true,
  generates: {
    './src/gql/': {
      preset: 'client',
      config: {
        documentMode: 'string',
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', Duration: 'string', JSON: 'unknown', ID: 'string' },
      },
      presetConfig: { fragmentMasking: false },
    },
  },
};
export default config;
