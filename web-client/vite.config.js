// Builds the visitor client into dist/, served by the server under /client/.
// The server finds the hashed entry files through dist/.vite/manifest.json.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/client/',
  publicDir: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    manifest: true,
    target: 'es2022',
    // The emulator chunk (IWER + SEM, test mode only) is large; it never loads in production.
    chunkSizeWarningLimit: 2500,
    assetsInlineLimit: 0,
    rollupOptions: {
      input: { display: 'src/display.js', perform: 'src/perform.js' },
    },
  },
});
