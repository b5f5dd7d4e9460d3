"""Live ecosystem shows: cue lists fired by performers, played in sync on every device."""
