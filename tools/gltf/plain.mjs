// A plain copy of a pipeline output for readers that decode neither meshopt nor quantized
// attributes (the phone AR files: server/holobazaar/quicklook/compose.py reads models with
// trimesh). Geometry decoded (EXT_meshopt_compression, KHR_draco_mesh_compression) and
// dequantized to floats (KHR_mesh_quantization); textures left as they are (the pipeline's
// compat file has PNG/JPEG).  usage: node plain.mjs IN.glb OUT.glb
import { dequantize } from '@gltf-transform/functions';
import { createIO } from './lib.mjs';

const TRANSPORT = new Set(['EXT_meshopt_compression', 'KHR_draco_mesh_compression',
  'KHR_mesh_quantization']);

const [input, output] = process.argv.slice(2);
const io = await createIO();
const doc = await io.read(input);
await doc.transform(dequantize());
for (const extension of doc.getRoot().listExtensionsUsed()) {
  if (TRANSPORT.has(extension.extensionName)) extension.dispose();
}
await io.write(output, doc);
