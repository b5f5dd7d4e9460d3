// node inspect.mjs [--positions] <file.glb|file.gltf>...: for each file, the summary
// lib.mjs computes, world-space positions of sparse-accessor primitives (with
// --positions: of every small non-skinned primitive) and the scene bounds. Compressed
// content is decoded (Draco, meshopt, quantization). One JSON array on stdout.
import { createIO, sparsePositions, summarize, worldBounds } from './lib.mjs';

const args = process.argv.slice(2);
const positions = args.includes('--positions');
const io = await createIO();
const out = [];
for (const file of args.filter((a) => a !== '--positions')) {
  const doc = await io.read(file);
  out.push({
    file,
    summary: summarize(doc),
    sparse: sparsePositions(doc),
    bounds: worldBounds(doc),
    positions: positions ? sparsePositions(doc, { all: true }) : undefined,
  });
}
process.stdout.write(JSON.stringify(out));
