// Builds the offline service worker (src/sw.js, Workbox) into dist/sw.js: one classic
// script, a fixed name (the server serves it at /sw.js, web/client.py, with the precache
// list in place of `self.__WB_MANIFEST`). Runs after the main build (package.json).
import { defineConfig } from 'vite';

export default defineConfig({
  publicDir: false,
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    copyPublicDir: false,
    target: 'es2020',
    minify: true,
    lib: { entry: 'src/sw.js', formats: ['iife'], name: 'holobazaarServiceWorker',
      fileName: () => 'sw.js' },
  },
});
