// Vite builds the client into dist/, which the server embeds and serves at
// `/`. The dev server proxies the API and both sockets to a running
// `crowdroom serve` (CROWDROOM_URL, default http://127.0.0.1:8080), so the
// page talks to relative URLs in development exactly as in production.
import { defineConfig } from 'vite'

const target = process.env.CROWDROOM_URL ?? 'http://127.0.0.1:8080'
const proxy = {
  '/api': { target, changeOrigin: true },
  '/yjs': { target, ws: true, changeOrigin: true },
  '/rooms': { target, ws: true, changeOrigin: true },
}

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // One JS and one CSS file: nothing to gain from splitting a small app.
    modulePreload: false,
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: { proxy },
  preview: { proxy },
})
