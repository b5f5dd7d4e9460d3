"""Phone AR without WebXR (#22): each display's composed state as one USDZ file for iOS AR
Quick Look and one GLB file for Android's Scene Viewer, generated from the state the hub
holds and cached on disk by its state hash (docs/phones.md)."""
