// Builds the visitor client into dist/, served by the server under /client/.
// The server finds the hashed entry files through dist/.vite/manifest.json.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { unicodeFonts } from './unicode-fonts.js';

// Packages' own folders (three does not export its package.json to require.resolve).
const pkgDir = (name) => join(dirname(fileURLToPath(import.meta.url)), 'node_modules', name);
const version = (name) => JSON.parse(readFileSync(join(pkgDir(name), 'package.json'))).version;

// Files no module imports, copied from installed packages into dist/vendor/ (no CDN at run
// time): Swagger UI for /docs; the server finds vendor/swagger-ui-<version>/ (the version in
// the folder name keeps caches right). KTX2's transcoder needs no copy: see scene.js.
function vendorFiles() {
  const copies = [
    ['swagger-ui-dist', `vendor/swagger-ui-${version('swagger-ui-dist')}`,
      ['swagger-ui-bundle.js', 'swagger-ui.css', 'oauth2-redirect.html', 'favicon-32x32.png']],
  ];
  return {
    name: 'holobazaar-vendor-files',
    generateBundle() {
      for (const [pkg, dir, files] of copies) {
        for (const file of files) {
          this.emitFile({ type: 'asset', fileName: `${dir}/${file.split('/').pop()}`,
            source: readFileSync(join(pkgDir(pkg), file)) });
        }
      }
    },
  };
}

// Fallback fonts for scripts Noto Sans latin lacks (CJK, Arabic, emoji...): see unicode-fonts.js.
const fallbackFonts = unicodeFonts({ pkgDir, version, mainFont: 'noto-sans-latin' });

export default defineConfig({
  base: '/client/',
  publicDir: false,
  plugins: [vendorFiles(), fallbackFonts.plugin],
  define: { __UNICODE_FONTS_DIR__: JSON.stringify(fallbackFonts.dir) },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    manifest: true,
    target: 'es2022',
    // The emulator chunk (IWER + SEM, test mode only) is large; it never loads in production.
    chunkSizeWarningLimit: 2500,
    assetsInlineLimit: 0,
    rollupOptions: {
      // `studio`: the display editor (/studio/<m>/displays/<d>), a chunk of its own so
      // visitor pages never download it; it shares scene.js and stream.js with them.
      // `timeline`: the show timeline (/studio/<m>/shows/<s>), sharing schemaform.js.
      input: { display: 'src/display.js', perform: 'src/perform.js', market: 'src/market.js',
        studio: 'src/studio/editor.js', timeline: 'src/studio/timeline.js' },
    },
  },
});
