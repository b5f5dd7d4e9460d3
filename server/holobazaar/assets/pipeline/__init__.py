"""The asset pipeline: any reasonable 3D model or image in, web-ready files out.

inputs (format detection, zip extraction and structural checks: nothing hostile reaches a
parser) -> meshes (OBJ/STL/PLY to glTF with trimesh) or images (Pillow) -> gltf (the Node
glTF-Transform tool: normalize, LODs, textures, meshopt) -> preserve (what the input
carried vs. what the output carries) -> thumbnail (Pillow software render)."""


from holobazaar.redact import without_paths


class Refused(Exception):
    """The input cannot be processed; the message says what is wrong, for the curator.
    Messages often quote a library's error, which names the file by its server path: the
    path is cut to the file name here, where every refusal is made."""

    def __init__(self, message: object) -> None:
        super().__init__(without_paths(message))
