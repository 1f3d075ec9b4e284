import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev` serves the pages with hot reload and sends the API to a console on :8080.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: process.env.JSC_WEB_OUT ?? 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      '/graphql': { target: 'http://127.0.0.1:8080', ws: true },
      '/exports': 'http://127.0.0.1:8080',
    },
  },
});
