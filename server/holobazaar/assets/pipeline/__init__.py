"""The asset pipeline: any reasonable 3D model or image in, web-ready files out.

inputs (format detection, zip extraction and structural checks: nothing hostile reaches a
parser) -> meshes (OBJ/STL/PLY to glTF with trimesh) or images (Pillow) -> gltf (the Node
glTF-Transform tool: normalize, LODs, textures, meshopt) -> preserve (what the input
carried vs. what the output carries) -> thumbnail (Pillow software render)."""


class Refused(Exception):
    """The input cannot be processed; the message says what is wrong, for the curator."""
