// Vite builds the application into dist/ (served by kasm-server). `npm run dev` proxies the API and
// the desktop WebSockets to KASM_DEV_BACKEND (default: the mock in dev/mock-server.mjs).
import { defineConfig } from 'vite';

const backend = process.env.KASM_DEV_BACKEND ?? 'http://127.0.0.1:8787';

export default defineConfig({
  // noVNC uses top-level await (WebCodecs probing), which needs an ES2022 target.
  build: {
    outDir: 'dist',
    target: 'es2022',
    sourcemap: true,
    assetsDir: 'assets',
    emptyOutDir: true,
    // The application, and the session viewer that kasm_url opens (served by the session proxy).
    rollupOptions: { input: { main: 'index.html', viewer: 'viewer.html', terminal: 'terminal.html' } },
  },
  esbuild: { target: 'es2022' },
  optimizeDeps: { esbuildOptions: { target: 'es2022' } },
  server: {
    host: '127.0.0.1',
    proxy: {
      '/api': { target: backend, changeOrigin: false },
      '/desktop': { target: backend, ws: true, changeOrigin: false },
    },
  },
});
