// KTX2 (KHR_texture_basisu) textures made smaller for a level of detail: Basis Universal
// decoded to RGBA with the transcoder of basis_universal's WebAssembly build (shipped by the
// npm package ktx2-encoder, which also drives its encoder), resized with sharp, and encoded
// again. KTX-Software's `ktx`/`toktx` would do the same but has no Debian package here and
// its Python binding (pyktx) needs libktx to build, so the WebAssembly encoder is used.
//
// Modes: a level of detail below the top gets ETC1S for colour and data textures (about a
// tenth of UASTC's bytes, the usual choice for phones) and UASTC + Zstandard for normal
// maps (ETC1S blocks show on normals); a top level larger than its edge limit keeps its
// source's mode. Transfer function (sRGB or linear) and mipmaps follow the source.
import { createHash } from 'node:crypto';
import { listTextureSlots } from '@gltf-transform/functions';
import { NodeBasisEncoder } from 'ktx2-encoder';
import { KHR_DF_MODEL_UASTC, KHR_DF_TRANSFER_SRGB, read } from 'ktx-parse';
import sharp from 'sharp';

const encoder = new NodeBasisEncoder();
const cache = new Map();

function floorPow2(n) {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

/** Header facts of a KTX2 file, or null when it is not Basis Universal (vkFormat 0). */
export function describe(data) {
  let container;
  try {
    container = read(data);
  } catch {
    return null;
  }
  const dfd = container.dataFormatDescriptor[0];
  if (container.vkFormat !== 0 || !dfd) return null;
  return {
    width: container.pixelWidth,
    height: container.pixelHeight,
    uastc: dfd.colorModel === KHR_DF_MODEL_UASTC,
    srgb: dfd.transferFunction === KHR_DF_TRANSFER_SRGB,
    mipmaps: container.levels.length > 1,
  };
}

/** RGBA pixels (width x height x 4) of a Basis Universal KTX2 file (also tools/gltf/plain.mjs). */
export async function decode(data, width, height) {
  const basis = await encoder.init();
  const file = new basis.KTX2File(data);
  try {
    if (!file.isValid() || !file.startTranscoding()) throw new Error('not a readable KTX2 file');
    const format = basis.transcoder_texture_format.cTFRGBA32.value;
    const out = new Uint8Array(file.getImageTranscodedSizeInBytes(0, 0, 0, format));
    if (!file.transcodeImage(out, 0, 0, 0, format, 0, -1, -1)) {
      throw new Error('the KTX2 texture cannot be transcoded');
    }
    if (out.length !== width * height * 4) throw new Error('unexpected KTX2 image size');
    return out;
  } finally {
    file.close();
    file.delete();
  }
}

/** The texture's image at most `edge` per side (power of two), re-encoded; `lower` picks
 * the level-of-detail modes above. Returns null when it is already within the edge and the
 * mode would not change, or when it is not Basis Universal (carried unchanged). */
export async function shrink(texture, { edge, lower, pixels }) {
  const data = texture.getImage();
  const info = describe(data);
  if (!info) return null;
  const normal = listTextureSlots(texture).some((slot) => /normal/i.test(slot));
  const uastc = lower ? normal : info.uastc;
  const factor = Math.min(1, edge / Math.max(info.width, info.height));
  const width = floorPow2(Math.round(info.width * factor));
  const height = floorPow2(Math.round(info.height * factor));
  if (width === info.width && height === info.height && uastc === info.uastc) return null;
  if (info.width * info.height > pixels) {
    const edge = Math.floor(Math.sqrt(pixels));
    const limit = edge * edge === pixels ? `${edge}x${edge}` : `${pixels}`;
    throw new RangeError(`${info.width}x${info.height} pixels, more than the limit of ${limit} `
      + 'pixels (a decompression bomb?)');
  }
  const key = createHash('sha256').update(data).digest('hex') + `:${width}x${height}:${uastc}`;
  if (!cache.has(key)) {
    cache.set(key, (async () => {
      const rgba = await decode(data, info.width, info.height);
      const resized = await sharp(rgba, { raw: { width: info.width, height: info.height, channels: 4 } })
        .resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
      return encoder.encode(new Uint8Array(resized), {
        isUASTC: uastc,
        isNormalMap: normal,
        isSetKTX2SRGBTransferFunc: info.srgb,
        isPerceptual: info.srgb,
        generateMipmap: info.mipmaps,
        needSupercompression: true, // Zstandard for UASTC
        compressionLevel: 0, // ETC1S effort: 1.4 s for 1024x1024, the same bytes as level 2
        uastcLDRQualityLevel: 0,
        qualityLevel: 150,
        imageDecoder: async (raw) => ({ data: raw, width, height }),
      });
    })());
  }
  return { data: await cache.get(key), width, height, uastc };
}
