// The glTF half of the asset pipeline, run by the Python worker as a subprocess:
//   node process.mjs <job.json>
// job: {input, outdir, maxEdge, lodEdge, ratios, minTriangles, up, unitScale, size,
//       meshoptLevel, maxImagePixels,
//       thumbnailTriangles, quality}
// Writes lod<N>.glb, compat.glb (textures kept PNG/JPEG, for clients without WebP) and
// thumb.bin (triangles for the Python thumbnail renderer) into outdir and prints one JSON
// report on stdout. Errors print {"error": "..."} and exit 2.
//
// Everything is done at the glTF level with glTF-Transform, which models every ratified
// extension, animations, skins, morph targets, sparse accessors and both compression
// schemes, so what the curator made is carried through, not re-derived from a mesh.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EXTTextureWebP } from '@gltf-transform/extensions';
import { cloneDocument, meshopt, simplify, weld } from '@gltf-transform/functions';
import { MeshoptEncoder, MeshoptSimplifier } from 'meshoptimizer';
import sharp from 'sharp';
import * as ktx2 from './ktx2.mjs';
import {
  NORMALIZE_NODE, createIO, meshNodeMatrices, readPositions, sceneTriangles, summarize,
  transformPoint, worldBounds,
} from './lib.mjs';

class Refusal extends Error {}

const RASTER = new Set(['image/png', 'image/jpeg', 'image/webp']);
// sharp refuses to decode more pixels than this (decompression bombs); set from the job.
let PIXELS = 8192 * 8192;

function floorPow2(n) {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

/** Every float attribute must be finite: NaN or infinite vertices poison bounds, LODs and
 * the renderer, so they are refused, naming the mesh. */
function checkFinite(doc) {
  for (const mesh of doc.getRoot().listMeshes()) {
    for (const prim of mesh.listPrimitives()) {
      for (const source of [prim, ...prim.listTargets()]) {
        for (const semantic of source.listSemantics()) {
          const array = source.getAttribute(semantic).getArray();
          if (!(array instanceof Float32Array)) continue;
          for (let i = 0; i < array.length; i++) {
            if (!Number.isFinite(array[i])) {
              throw new Refusal(`mesh ${JSON.stringify(mesh.getName())}: ${semantic} has a `
                + `non-finite value (${array[i]}) at component ${i}`);
            }
          }
        }
      }
    }
  }
}

const AXIS_Z_UP = [-Math.SQRT1_2, 0, 0, Math.SQRT1_2]; // -90 degrees about X: Z up -> Y up

function rotate(q, v) {
  // v' = q v q*, q = [x, y, z, w]
  const [x, y, z, w] = q;
  const [vx, vy, vz] = v;
  const tx = 2 * (y * vz - z * vy);
  const ty = 2 * (z * vx - x * vz);
  const tz = 2 * (x * vy - y * vx);
  return [vx + w * tx + (y * tz - z * ty), vy + w * ty + (z * tx - x * tz),
    vz + w * tz + (x * ty - y * tx)];
}

/** Metres, Y up, origin at the centre of the base: one root node per scene carries the
 * transform, so the curator's own nodes, skins and animations are untouched. */
function normalize(doc, job, warnings) {
  const root = doc.getRoot();
  const bounds = worldBounds(doc);
  if (!Number.isFinite(bounds.min[0])) throw new Refusal('the model has no geometry');
  const rotation = job.up === 'z' ? AXIS_Z_UP : [0, 0, 0, 1];
  let scale = job.unitScale || 1;
  const corners = [];
  for (const x of [bounds.min[0], bounds.max[0]]) {
    for (const y of [bounds.min[1], bounds.max[1]]) {
      for (const z of [bounds.min[2], bounds.max[2]]) corners.push(rotate(rotation, [x, y, z]));
    }
  }
  const lo = [0, 1, 2].map((k) => Math.min(...corners.map((c) => c[k])));
  const hi = [0, 1, 2].map((k) => Math.max(...corners.map((c) => c[k])));
  const extent = Math.max(...[0, 1, 2].map((k) => hi[k] - lo[k]));
  if (!(extent > 0)) throw new Refusal('the model has zero size');
  if (job.size) {
    scale = job.size / extent;
  } else if (extent * scale > 20) {
    warnings.push({ code: 'LARGE_MODEL', message: `the model is ${(extent * scale).toFixed(1)} m `
      + 'across: give its real size (size) or units if that is wrong' });
  }
  const base = [(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2];
  const translation = base.map((v) => -v * scale);
  for (const scene of root.listScenes()) {
    const wrapper = doc.createNode(NORMALIZE_NODE)
      .setTranslation(translation).setRotation(rotation).setScale([scale, scale, scale]);
    for (const child of scene.listChildren()) {
      scene.removeChild(child);
      wrapper.addChild(child);
    }
    scene.addChild(wrapper);
  }
  const size = [0, 1, 2].map((k) => (hi[k] - lo[k]) * scale);
  return { min: [-size[0] / 2, 0, -size[2] / 2], max: [size[0] / 2, size[1], size[2] / 2] };
}

/** Power-of-two raster textures no larger than `edge`, re-encoded. `webp` false keeps PNG
 * and JPEG (the compat file for clients without EXT_texture_webp). KTX2 (Basis Universal)
 * textures are decoded, resized and encoded again (ktx2.mjs; `lower`: a level below the
 * top, in phone modes); other GPU formats are carried as they are. Returns the number of
 * textures changed. */
async function processTextures(doc, { edge, webp, quality, lower = false }, warnings) {
  let changed = 0;
  let webpUsed = false;
  for (const texture of doc.getRoot().listTextures()) {
    const mime = texture.getMimeType();
    const image = texture.getImage();
    if (mime === 'image/ktx2' && image && ktx2.describe(image)) {
      let smaller;
      try {
        smaller = await ktx2.shrink(texture, { edge, lower, pixels: PIXELS });
      } catch (error) {
        const index = doc.getRoot().listTextures().indexOf(texture);
        throw new Refusal(`KTX2 texture ${index} ${JSON.stringify(texture.getURI() || texture.getName())}: `
          + `${error.message}`);
      }
      if (smaller) {
        texture.setImage(smaller.data);
        changed++;
      }
      continue;
    }
    if (!RASTER.has(mime) || !image) {
      if (mime && !RASTER.has(mime)) {
        const index = doc.getRoot().listTextures().indexOf(texture);
        warnings.push({ code: 'TEXTURE_KEPT', message: `texture ${index} ${JSON.stringify(texture.getName())} `
          + `(${mime}) is carried unchanged: it is already a GPU format` });
      }
      continue;
    }
    const meta = await sharp(image, { limitInputPixels: PIXELS }).metadata();
    const w = meta.width;
    const h = meta.height;
    const factor = Math.min(1, edge / Math.max(w, h));
    const tw = floorPow2(Math.round(w * factor));
    const th = floorPow2(Math.round(h * factor));
    const target = webp ? 'image/webp' : mime === 'image/webp' ? 'image/png' : mime;
    if (tw === w && th === h && target === mime) continue;
    let pipeline = sharp(image, { limitInputPixels: PIXELS });
    if (tw !== w || th !== h) pipeline = pipeline.resize(tw, th, { fit: 'fill', kernel: 'lanczos3' });
    let data;
    if (target === 'image/webp') data = await pipeline.webp({ quality, effort: 4 }).toBuffer();
    else if (target === 'image/jpeg') data = await pipeline.jpeg({ quality: 85, mozjpeg: true }).toBuffer();
    else data = await pipeline.png({ compressionLevel: 9 }).toBuffer();
    if (target === 'image/webp' && tw === w && th === h && data.length >= image.byteLength) {
      continue; // WebP larger than the source (small flat PNGs) is not worth it
    }
    texture.setImage(new Uint8Array(data)).setMimeType(target);
    const uri = texture.getURI();
    if (uri) texture.setURI(uri.replace(/\.[a-z0-9]+$/i, target === 'image/webp' ? '.webp'
      : target === 'image/jpeg' ? '.jpg' : '.png'));
    webpUsed ||= target === 'image/webp';
    changed++;
  }
  if (webpUsed) doc.createExtension(EXTTextureWebP).setRequired(true);
  return changed;
}

/** Triangles (world space, normalized) with a colour each, for the thumbnail renderer. */
async function thumbnailTriangles(doc, limit) {
  const tris = [];
  const colorCache = new Map();
  const colorOf = async (material) => {
    if (!material) return [0.8, 0.8, 0.8];
    if (colorCache.has(material)) return colorCache.get(material);
    const factor = material.getBaseColorFactor();
    let rgb = factor.slice(0, 3);
    const texture = material.getBaseColorTexture();
    if (texture && RASTER.has(texture.getMimeType()) && texture.getImage()) {
      try {
        const stats = await sharp(texture.getImage(), { limitInputPixels: PIXELS }).stats();
        rgb = rgb.map((v, k) => v * ((stats.channels[k] || stats.channels[0]).mean / 255));
      } catch { /* colour stays the factor's */ }
    }
    colorCache.set(material, rgb);
    return rgb;
  };
  for (const { node, world } of meshNodeMatrices(doc, { skipNormalize: false })) {
    for (const prim of node.getMesh().listPrimitives()) {
      if (prim.getMode() !== 4) continue;
      const position = prim.getAttribute('POSITION');
      if (!position) continue;
      const local = readPositions(position);
      const indices = prim.getIndices();
      const index = indices ? indices.getArray() : null;
      const n = index ? index.length : local.length / 3;
      const rgb = await colorOf(prim.getMaterial());
      for (let i = 0; i + 2 < n; i += 3) {
        const tri = [];
        for (let k = 0; k < 3; k++) {
          const v = index ? index[i + k] : i + k;
          tri.push(...transformPoint(world, local[v * 3], local[v * 3 + 1], local[v * 3 + 2]));
        }
        tris.push([...tri, ...rgb]);
      }
    }
  }
  // Keep an even sample when there are too many: the thumbnail is 256 px wide.
  const step = Math.max(1, Math.ceil(tris.length / limit));
  const kept = tris.filter((_, i) => i % step === 0);
  return Float32Array.from(kept.flat());
}

/** The nodes of a document and what they carry, to see what a transform changed. */
function snapshotNodes(doc) {
  return new Map(doc.getRoot().listNodes().map((node) => [node, {
    mesh: node.getMesh(), translation: node.getTranslation().slice(),
    rotation: node.getRotation().slice(), scale: node.getScale().slice(),
  }]));
}

function nodeName(doc, node) {
  return node.getName() ? JSON.stringify(node.getName())
    : `node ${doc.getRoot().listNodes().indexOf(node)}`;
}

function fmt(values) {
  return values.every((v) => Math.abs(v - values[0]) < 1e-6) ? `${+values[0].toFixed(4)}`
    : `[${values.map((v) => +v.toFixed(4)).join(', ')}]`;
}

/** What quantization (meshopt) did to the node tree, in plain words: meshopt stores
 * positions as integers, and a mesh's dequantization transform goes on its node; a mesh
 * used by a node with other content moves to a new child node carrying that transform. */
function nodeChanges(doc, before, inputNodes) {
  const nodes = doc.getRoot().listNodes();
  const added = nodes.filter((n) => !before.has(n));
  const moved = [];
  const rescaled = [];
  const same = (a, b) => a.every((v, i) => Math.abs(v - b[i]) < 1e-9);
  for (const [node, was] of before) {
    if (was.mesh && node.getMesh() !== was.mesh) {
      const child = added.find((a) => a.getMesh() === was.mesh && a.getParentNode() === node);
      moved.push(`mesh ${JSON.stringify(was.mesh.getName())} of ${nodeName(doc, node)}`
        + (child ? ` (scale ${fmt(child.getScale())})` : ''));
    }
    if (!same(was.translation, node.getTranslation()) || !same(was.rotation, node.getRotation())
        || !same(was.scale, node.getScale())) {
      rescaled.push(`${nodeName(doc, node)} (scale ${fmt(was.scale)} -> ${fmt(node.getScale())})`);
    }
  }
  if (!added.length && !moved.length && !rescaled.length) return null;
  const list = (items) => (items.length > 5
    ? `${items.slice(0, 5).join(', ')} and ${items.length - 5} more` : items.join(', '));
  const parts = [`the output has ${nodes.length} nodes where the input had ${inputNodes}: `
    + `one root node the pipeline adds (${JSON.stringify(NORMALIZE_NODE)}: metres, Y up, `
    + `base at the origin)${added.length ? ` and ${added.length} added by quantization` : ''}`];
  if (moved.length) parts.push(`meshes moved to new child nodes that carry their `
    + `dequantization scale: ${list(moved)}`);
  if (rescaled.length) parts.push(`nodes rescaled to hold quantized positions: ${list(rescaled)}`);
  return {
    code: 'NODES_CHANGED',
    message: `${parts.join('; ')}. The model looks the same; whatever addresses nodes by `
      + 'index, or sets the transform of a node named here, sees the new tree',
    nodes: { input: inputNodes, output: nodes.length, added: added.length, moved, rescaled },
  };
}

async function writeGlb(io, doc, file) {
  const data = await io.writeBinary(doc);
  await writeFile(file, data);
  return data.byteLength;
}

async function main() {
  // stdout carries the JSON report alone: library logs (the Basis encoder prints its
  // progress with console.log) go to stderr.
  console.log = console.error;
  const job = JSON.parse(await readFile(process.argv[2], 'utf8'));
  PIXELS = job.maxImagePixels || PIXELS;
  const started = performance.now();
  const io = await createIO();
  const warnings = [];
  const doc = await io.read(job.input);
  const input = summarize(doc);
  // Draco geometry is decoded on read; the output carries it as meshopt instead.
  for (const ext of doc.getRoot().listExtensionsUsed()) {
    if (ext.extensionName === 'KHR_draco_mesh_compression') ext.dispose();
  }
  checkFinite(doc);
  const bbox = normalize(doc, job, warnings);
  const outputs = [];

  // Compat (no WebP): textures power-of-two within maxEdge, PNG/JPEG kept, meshopt geometry.
  const hasRaster = doc.getRoot().listTextures().some((t) => RASTER.has(t.getMimeType()));
  const base = cloneDocument(doc);
  await processTextures(doc, { edge: job.maxEdge, webp: true, quality: job.quality }, warnings);
  const thumb = await thumbnailTriangles(doc, job.thumbnailTriangles);
  await writeFile(path.join(job.outdir, 'thumb.bin'), Buffer.from(thumb.buffer));

  // LOD 0: every triangle; then simplified levels while they still pay off.
  const levels = [{ ratio: 1, doc }];
  let previous = sceneTriangles(doc);
  for (const ratio of job.ratios.filter((r) => r < 1)) {
    if (previous * ratio < job.minTriangles) break;
    const lod = cloneDocument(base);
    await lod.transform(weld(), simplify({ simplifier: MeshoptSimplifier, ratio, error: 0.02 }));
    const triangles = sceneTriangles(lod);
    // A level that saves little is not worth a download of its own, and one that lost a
    // part (a primitive simplified away) is not the same model.
    if (triangles > previous * 0.6 || triangles < job.minTriangles) break;
    const after = summarize(lod);
    if (['meshes', 'primitives', 'materials', 'morphTargets', 'skins'].some((k) => after[k] < input[k])) break;
    await processTextures(lod, { edge: job.lodEdge, webp: true, quality: job.quality, lower: true }, []);
    levels.push({ ratio, doc: lod });
    previous = triangles;
  }
  for (const [i, level] of levels.entries()) {
    const triangles = sceneTriangles(level.doc);
    const nodesBefore = snapshotNodes(level.doc);
    await level.doc.transform(meshopt({ encoder: MeshoptEncoder, level: job.meshoptLevel || 'medium' }));
    if (i === 0) { // every level's tree changes the same way: reported once
      const changes = nodeChanges(level.doc, nodesBefore, input.nodes);
      if (changes) warnings.push(changes);
    }
    const file = path.join(job.outdir, `lod${i}.glb`);
    const bytes = await writeGlb(io, level.doc, file);
    // Read back what was written (decoding meshopt) for the preservation comparison.
    const summary = summarize(await io.read(file));
    outputs.push({ role: `lod${i}`, file, bytes, triangles, ratio: level.ratio, summary });
  }
  if (hasRaster) {
    await processTextures(base, { edge: job.maxEdge, webp: false, quality: job.quality }, []);
    await base.transform(meshopt({ encoder: MeshoptEncoder, level: job.meshoptLevel || 'medium' }));
    const file = path.join(job.outdir, 'compat.glb');
    const bytes = await writeGlb(io, base, file);
    const summary = summarize(await io.read(file));
    outputs.push({ role: 'compat', file, bytes, triangles: sceneTriangles(base), ratio: 1, summary });
  }
  process.stdout.write(JSON.stringify({
    input, outputs, bbox, warnings, ms: Math.round(performance.now() - started),
  }));
}

main().catch((error) => {
  const message = error instanceof Refusal ? error.message : `cannot read the glTF: ${error.message}`;
  process.stdout.write(JSON.stringify({ error: message }));
  process.exit(2);
});
