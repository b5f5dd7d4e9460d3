"""A composition as a USDZ package for AR Quick Look, written with Pixar's USD (usd-core):
one binary layer (.usdc) with the meshes and UsdPreviewSurface materials, and the PNG/JPEG
textures beside it in the zip (Sdf.ZipFileWriter aligns them as USDZ requires).

Quick Look works in metres with Y up, like the display state, so positions go through
as they are; it puts the root on the horizontal surface the visitor taps. Today's prices,
the state hash and each label's text are in the file as customData under `holobazaar`,
so a test (or a curious visitor) reads back what the file shows."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from holobazaar.quicklook.labels import has_alpha
from holobazaar.quicklook.models import Composition, Part, Surface

ROOT = "/Display"


def _identifier(name: str, taken: set[str]) -> str:
    from pxr import Tf

    base = Tf.MakeValidIdentifier(name) or "part"
    out, n = base, 1
    while out in taken:
        n += 1
        out = f"{base}_{n}"
    taken.add(out)
    return out


def _save_texture(image: Image.Image, folder: Path, index: int) -> str:
    """The image as a file in the package: JPEG when opaque (smaller), PNG otherwise (a
    palette label stays a palette PNG)."""
    if image.mode == "P":
        name = f"textures/t{index}.png"
        image.save(folder / name, "PNG", compress_level=6)
        return name
    extrema = image.getextrema() if image.mode == "RGBA" else None
    opaque = image.mode == "RGB" or (extrema is not None and extrema[3][0] == 255)  # type: ignore[misc]
    if opaque:
        name = f"textures/t{index}.jpg"
        image.convert("RGB").save(folder / name, "JPEG", quality=85)
    else:
        name = f"textures/t{index}.png"
        image.save(folder / name, "PNG", optimize=False, compress_level=6)
    return name


class _Writer:
    def __init__(self, stage, folder: Path) -> None:
        self.stage = stage
        self.folder = folder
        self.materials: dict[tuple, object] = {}
        self.textures: dict[int, str] = {}  # id(image) -> file in the package
        self.names: set[str] = set()
        self.looks = f"{ROOT}/Looks"
        from pxr import UsdGeom

        UsdGeom.Scope.Define(stage, self.looks)

    def texture(self, image: Image.Image) -> str:
        key = id(image)
        if key not in self.textures:
            self.textures[key] = _save_texture(image, self.folder, len(self.textures))
        return self.textures[key]

    def material(self, surface: Surface):
        from pxr import Gf, Sdf, UsdShade

        key = (surface.color, id(surface.texture) if surface.texture is not None else None,
               round(surface.roughness, 3), round(surface.metallic, 3), surface.unlit)
        if key in self.materials:
            return self.materials[key]
        path = f"{self.looks}/M{len(self.materials)}"
        material = UsdShade.Material.Define(self.stage, path)
        shader = UsdShade.Shader.Define(self.stage, f"{path}/Surface")
        shader.CreateIdAttr("UsdPreviewSurface")
        r, g, b, a = surface.color
        shader.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(
            1.0 if surface.unlit else float(surface.roughness))
        shader.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(
            0.0 if surface.unlit else float(surface.metallic))
        if surface.texture is not None:
            reader = UsdShade.Shader.Define(self.stage, f"{path}/St")
            reader.CreateIdAttr("UsdPrimvarReader_float2")
            reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
            tex = UsdShade.Shader.Define(self.stage, f"{path}/BaseColor")
            tex.CreateIdAttr("UsdUVTexture")
            tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(self.texture(surface.texture))
            tex.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
            wrap = "clamp" if surface.unlit else "repeat"
            tex.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set(wrap)
            tex.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set(wrap)
            tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(
                reader.ConnectableAPI(), "result")
            rgb = tex.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
            shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(rgb)
            if surface.unlit:  # labels: as bright as printed, whatever the room's light
                shader.CreateInput("emissiveColor", Sdf.ValueTypeNames.Color3f) \
                    .ConnectToSource(rgb)
            if has_alpha(surface.texture):
                alpha = tex.CreateOutput("a", Sdf.ValueTypeNames.Float)
                shader.CreateInput("opacity", Sdf.ValueTypeNames.Float).ConnectToSource(alpha)
        else:
            shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(r, g, b))
            if a < 1:
                shader.CreateInput("opacity", Sdf.ValueTypeNames.Float).Set(float(a))
        material.CreateSurfaceOutput().ConnectToSource(shader.ConnectableAPI(), "surface")
        self.materials[key] = material
        return material

    def mesh(self, path: str, surface: Surface) -> None:
        from pxr import Gf, Sdf, UsdGeom, UsdShade, Vt

        mesh = UsdGeom.Mesh.Define(self.stage, path)
        positions = np.ascontiguousarray(surface.positions, dtype=np.float32)
        mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(positions))
        mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(
            np.full(len(surface.faces), 3, dtype=np.int32)))
        mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(
            np.ascontiguousarray(surface.faces, dtype=np.int32).ravel()))
        mesh.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(
            np.ascontiguousarray(surface.normals, dtype=np.float32)))
        mesh.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
        mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
        low, high = positions.min(axis=0), positions.max(axis=0)
        mesh.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, low)),
                                             Gf.Vec3f(*map(float, high))]))
        if surface.unlit:
            mesh.CreateDoubleSidedAttr(True)
        if surface.uvs is not None and surface.texture is not None:
            st = np.column_stack([surface.uvs[:, 0], 1.0 - surface.uvs[:, 1]])
            primvar = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar(
                "st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
            primvar.Set(Vt.Vec2fArray.FromNumpy(np.ascontiguousarray(st, dtype=np.float32)))
        UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(self.material(surface))

    def part(self, parent: str, part: Part) -> None:
        from pxr import Gf, UsdGeom

        path = f"{parent}/{_identifier(part.name, self.names)}"
        xform = UsdGeom.Xform.Define(self.stage, path)
        # numpy's column-vector matrix transposed: USD multiplies row vectors.
        xform.AddTransformOp().Set(Gf.Matrix4d(part.matrix.T.tolist()))
        prim = xform.GetPrim()
        info: dict[str, str] = {"kind": part.kind}
        if part.text:
            info["text"] = part.text
        if part.source:
            info["source"] = part.source
        prim.SetCustomDataByKey("holobazaar", info)
        for i, surface in enumerate(part.surfaces):
            self.mesh(f"{path}/Mesh{i}", surface)


def write_usdz(comp: Composition, target: Path) -> None:
    """Writes the composition to `target` (a .usdz file)."""
    from pxr import Kind, Sdf, Usd, UsdGeom, Vt

    with tempfile.TemporaryDirectory(prefix="holobazaar-usdz-") as tmp:
        folder = Path(tmp)
        (folder / "textures").mkdir()
        layer_path = folder / "display.usdc"
        stage = Usd.Stage.CreateNew(str(layer_path))
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        root = UsdGeom.Xform.Define(stage, ROOT).GetPrim()
        stage.SetDefaultPrim(root)
        Usd.ModelAPI(root).SetKind(Kind.Tokens.component)
        root.SetCustomDataByKey("holobazaar", {
            "market": comp.market, "display": comp.display, "title": comp.title,
            "state": comp.state_hash, "prices": dict(comp.prices),
            "left_out": Vt.StringArray(list(comp.left_out))})
        stage.SetMetadata("comment", f"{comp.title}: {comp.market}/{comp.display}, "
                          f"state {comp.state_hash}")
        writer = _Writer(stage, folder)
        UsdGeom.Scope.Define(stage, f"{ROOT}/Parts")
        for part in comp.parts:
            writer.part(f"{ROOT}/Parts", part)
        stage.GetRootLayer().Save()
        zipper = Sdf.ZipFileWriter.CreateNew(str(target))
        zipper.AddFile(str(layer_path), "display.usdc")
        for name in sorted(set(writer.textures.values())):
            zipper.AddFile(str(folder / name), name)
        zipper.Save()
