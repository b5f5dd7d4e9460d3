// A plain copy of a pipeline output for readers that decode neither meshopt nor quantized
// attributes nor KTX2 (the phone AR files: server/holobazaar/quicklook/compose.py reads
// models with trimesh, and AR Quick Look shows PNG/JPEG textures only). Geometry decoded
// (EXT_meshopt_compression, KHR_draco_mesh_compression) and dequantized to floats
// (KHR_mesh_quantization); KTX2 textures (KHR_texture_basisu) transcoded to PNG at most
// 1024 px a side; other textures left as they are. Prints one JSON line (run through
// holobazaar.assets.pipeline.gltf.run_tool).  usage: node plain.mjs IN.glb OUT.glb
import { dequantize } from '@gltf-transform/functions';
import sharp from 'sharp';
import { createIO } from './lib.mjs';
import * as ktx2 from './ktx2.mjs';

const TRANSPORT = new Set(['EXT_meshopt_compression', 'KHR_draco_mesh_compression',
  'KHR_mesh_quantization', 'KHR_texture_basisu']);
const EDGE = 1024;

const [input, output] = process.argv.slice(2);
const io = await createIO();
const doc = await io.read(input);
await doc.transform(dequantize());
let transcoded = 0;
for (const texture of doc.getRoot().listTextures()) {
  const image = texture.getImage();
  const info = texture.getMimeType() === 'image/ktx2' && image ? ktx2.describe(image) : null;
  if (!info) continue;
  const rgba = await ktx2.decode(image, info.width, info.height);
  const png = await sharp(Buffer.from(rgba), { raw: { width: info.width, height: info.height, channels: 4 } })
    .resize(EDGE, EDGE, { fit: 'inside', withoutEnlargement: true }).png().toBuffer();
  texture.setImage(new Uint8Array(png)).setMimeType('image/png');
  transcoded += 1;
}
for (const extension of doc.getRoot().listExtensionsUsed()) {
  if (TRANSPORT.has(extension.extensionName)) extension.dispose();
}
await io.write(output, doc);
process.stdout.write(`${JSON.stringify({ ok: true, transcoded })}\n`);
