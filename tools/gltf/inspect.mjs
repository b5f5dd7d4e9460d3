// node inspect.mjs <file.glb|file.gltf> [--positions]: the summary lib.mjs computes, plus world-space
// positions of sparse-accessor primitives and the scene bounds (compressed content is
// decoded: Draco, meshopt, quantization), as JSON on stdout.
import { createIO, sparsePositions, summarize, worldBounds } from './lib.mjs';

const io = await createIO();
const doc = await io.read(process.argv[2]);
process.stdout.write(JSON.stringify({
  summary: summarize(doc), sparse: sparsePositions(doc),
  positions: process.argv[3] === '--positions' ? sparsePositions(doc, { all: true }) : undefined, bounds: worldBounds(doc),
}));
