"""The landmark animator's helpers (``backends/landmark.py``): the face rig and its mesh warp, the mouth,
phoneme and viseme tracks, blinks and head motion."""
