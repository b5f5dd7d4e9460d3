// Shared by process.mjs (the pipeline) and inspect.mjs (tests and the preservation check):
// one reader that understands every glTF extension and every compression scheme, and one
// summary of what a file carries, so input and output are compared the same way.
import { Logger, NodeIO, PropertyType } from '@gltf-transform/core';
import { ALL_EXTENSIONS } from '@gltf-transform/extensions';
import draco3d from 'draco3dgltf';
import { MeshoptDecoder, MeshoptEncoder, MeshoptSimplifier } from 'meshoptimizer';

// The marker on the root node the pipeline adds; transforms below it are the curator's.
export const NORMALIZE_NODE = 'holobazaar:normalize';

export async function createIO() {
  await MeshoptDecoder.ready;
  await MeshoptEncoder.ready;
  await MeshoptSimplifier.ready;
  // Network access stays off (the default): a glTF URI is never fetched. The Python side
  // has already refused any URI that is not a file inside the upload.
  // Info-level logs would go to stdout, which carries the JSON report: warnings only.
  return new NodeIO()
    .setLogger(new Logger(Logger.Verbosity.WARN))
    .setAllowNetwork(false)
    .registerExtensions(ALL_EXTENSIONS)
    .registerDependencies({
      'draco3d.decoder': await draco3d.createDecoderModule(),
      'meshopt.decoder': MeshoptDecoder,
      'meshopt.encoder': MeshoptEncoder,
    });
}

const MODE_TRIANGLES = 4;
const MODE_STRIP = 5;
const MODE_FAN = 6;

export function primitiveTriangles(prim) {
  const indices = prim.getIndices();
  const position = prim.getAttribute('POSITION');
  const n = indices ? indices.getCount() : position ? position.getCount() : 0;
  const mode = prim.getMode();
  if (mode === MODE_TRIANGLES) return Math.floor(n / 3);
  if (mode === MODE_STRIP || mode === MODE_FAN) return Math.max(0, n - 2);
  return 0;
}

/** Triangles drawn by the default scene (meshes instanced by several nodes count each time). */
export function sceneTriangles(doc) {
  const root = doc.getRoot();
  const scene = root.getDefaultScene() || root.listScenes()[0];
  let total = 0;
  if (!scene) return 0;
  scene.traverse((node) => {
    const mesh = node.getMesh();
    if (mesh) for (const prim of mesh.listPrimitives()) total += primitiveTriangles(prim);
  });
  return total;
}

function multiply(a, b) {
  const out = new Array(16).fill(0);
  for (let c = 0; c < 4; c++) {
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      out[c * 4 + r] = s;
    }
  }
  return out;
}

const IDENTITY = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];

/** World matrices of mesh nodes, treating the pipeline's normalize node as identity so
 * positions compare between the curator's file and ours. */
export function meshNodeMatrices(doc, { skipNormalize = true } = {}) {
  const root = doc.getRoot();
  const scene = root.getDefaultScene() || root.listScenes()[0];
  const out = [];
  if (!scene) return out;
  const visit = (node, parent) => {
    const local = skipNormalize && node.getName() === NORMALIZE_NODE ? IDENTITY : node.getMatrix();
    const world = multiply(parent, local);
    if (node.getMesh()) out.push({ node, world });
    for (const child of node.listChildren()) visit(child, world);
  };
  for (const child of scene.listChildren()) visit(child, IDENTITY);
  return out;
}

export function transformPoint(m, x, y, z) {
  return [
    m[0] * x + m[4] * y + m[8] * z + m[12],
    m[1] * x + m[5] * y + m[9] * z + m[13],
    m[2] * x + m[6] * y + m[10] * z + m[14],
  ];
}

/** Dequantized positions of an accessor (normalized integer types mapped to floats). */
export function readPositions(accessor) {
  const count = accessor.getCount();
  const out = new Float64Array(count * 3);
  const el = [0, 0, 0];
  for (let i = 0; i < count; i++) {
    accessor.getElement(i, el);
    out[i * 3] = el[0];
    out[i * 3 + 1] = el[1];
    out[i * 3 + 2] = el[2];
  }
  return out;
}

/** What a file carries, for the "nothing silently lost" comparison. */
export function summarize(doc) {
  const root = doc.getRoot();
  const meshes = root.listMeshes();
  let primitives = 0;
  let morphTargets = 0;
  let uvSets = 0;
  let colorSets = 0;
  let skinnedPrimitives = 0;
  let sparseAccessors = 0;
  const attributes = new Set();
  for (const mesh of meshes) {
    for (const prim of mesh.listPrimitives()) {
      primitives++;
      morphTargets += prim.listTargets().length;
      const semantics = prim.listSemantics();
      semantics.forEach((s) => attributes.add(s));
      uvSets = Math.max(uvSets, semantics.filter((s) => s.startsWith('TEXCOORD_')).length);
      colorSets = Math.max(colorSets, semantics.filter((s) => s.startsWith('COLOR_')).length);
      if (semantics.includes('JOINTS_0')) skinnedPrimitives++;
    }
  }
  for (const accessor of root.listAccessors()) if (accessor.getSparse()) sparseAccessors++;
  let textureTransforms = 0;
  for (const material of root.listMaterials()) {
    for (const prop of doc.getGraph().listChildren(material)) {
      if (prop.propertyType === PropertyType.TEXTURE_INFO
          && prop.getExtension('KHR_texture_transform')) textureTransforms++;
    }
  }
  const extensionUsesOf = (property) =>
    property.listExtensions ? property.listExtensions().map((e) => e.extensionName) : [];
  const materialExtensions = new Set();
  for (const material of root.listMaterials()) {
    extensionUsesOf(material).forEach((e) => materialExtensions.add(e));
  }
  const animations = root.listAnimations();
  return {
    scenes: root.listScenes().length,
    nodes: root.listNodes().length,
    cameras: root.listCameras().length,
    meshes: meshes.length,
    primitives,
    materials: root.listMaterials().length,
    textures: root.listTextures().length,
    textureMimeTypes: [...new Set(root.listTextures().map((t) => t.getMimeType()))].sort(),
    animations: animations.length,
    animationChannels: animations.reduce((n, a) => n + a.listChannels().length, 0),
    skins: root.listSkins().length,
    joints: root.listSkins().reduce((n, s) => n + s.listJoints().length, 0),
    skinnedPrimitives,
    morphTargets,
    uvSets,
    colorSets,
    attributes: [...attributes].sort(),
    sparseAccessors,
    textureTransforms,
    materialExtensions: [...materialExtensions].sort(),
    extensionsUsed: root.listExtensionsUsed().map((e) => e.extensionName).sort(),
    extensionsRequired: root.listExtensionsRequired().map((e) => e.extensionName).sort(),
    triangles: sceneTriangles(doc),
  };
}

/** World-space positions of every primitive whose POSITION (or a morph target) is a sparse
 * accessor: the data a pipeline that ignores sparse storage gets wrong. */
export function sparsePositions(doc, { all = false } = {}) {
  const out = [];
  const meshes = doc.getRoot().listMeshes();
  const seen = new Set();
  meshNodeMatrices(doc).forEach(({ node, world }) => {
    const mesh = meshes.indexOf(node.getMesh());
    if (seen.has(mesh) || node.getSkin()) return;
    seen.add(mesh);
    node.getMesh().listPrimitives().forEach((prim, p) => {
      const position = prim.getAttribute('POSITION');
      if (!position || !(all || position.getSparse()) || position.getCount() > 20000) return;
      const local = readPositions(position);
      const points = [];
      for (let i = 0; i < local.length; i += 3) {
        points.push(transformPoint(world, local[i], local[i + 1], local[i + 2]));
      }
      out.push({ mesh, primitive: p, points });
    });
  });
  return out;
}

/** World-space bounds of the default scene (normalize node as identity). */
export function worldBounds(doc, { skipNormalize = true } = {}) {
  const min = [Infinity, Infinity, Infinity];
  const max = [-Infinity, -Infinity, -Infinity];
  for (const { node, world } of meshNodeMatrices(doc, { skipNormalize })) {
    for (const prim of node.getMesh().listPrimitives()) {
      const position = prim.getAttribute('POSITION');
      if (!position) continue;
      const local = readPositions(position);
      for (let i = 0; i < local.length; i += 3) {
        const q = transformPoint(world, local[i], local[i + 1], local[i + 2]);
        for (let k = 0; k < 3; k++) {
          if (q[k] < min[k]) min[k] = q[k];
          if (q[k] > max[k]) max[k] = q[k];
        }
      }
    }
  }
  return { min, max };
}
