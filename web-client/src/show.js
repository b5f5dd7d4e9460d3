// Plays live show cues (docs/shows.md) on top of a display: node changes and tweens,
// animation clips, narrative overlays, story beats, audio and the display's mood.
//
// Every effect is a pure function of the fired cues and the server time: each frame the
// player replays the actions of every cue that has started, in start order, from the
// display's own state. So a device that joins mid-cue (from the zone snapshot) shows what
// everyone else shows, a paused show is the same picture frozen at `paused_at`, and
// clearing the cues (stop / panic) restores the display exactly.
import * as THREE from 'three';
import { captionIn } from './captions.js';
import { language } from './i18n.js';

const DEG = Math.PI / 180;
const LATE_LIMIT_MS = 2000;
// A frame that is being drawn when a cue is due delays its timer by up to a frame (tens of
// ms on a slow phone). Frames due this close before a cue are skipped, so the main thread
// is free at the cue's instant; the frame after it shows the cue.
const HOLD_BEFORE_CUE_MS = 60;
const EASE = {
  linear: (p) => p,
  'ease-in': (p) => p * p,
  'ease-out': (p) => 1 - (1 - p) * (1 - p),
  'ease-in-out': (p) => (p < 0.5 ? 2 * p * p : 1 - 2 * (1 - p) * (1 - p)),
};

function finite(v) {
  return typeof v === 'number' && Number.isFinite(v);
}
function vec3(v) {
  if (finite(v)) return [v, v, v];
  return Array.isArray(v) && v.length === 3 && v.every(finite) ? v : null;
}
function lerp3(a, b, p) {
  return a.map((x, i) => x + (b[i] - x) * p);
}
function clamp01(x) {
  return Math.min(1, Math.max(0, x));
}

export class ShowPlayer {
  /**
   * @param {object} o
   * @param {import('./scene.js').DisplayRenderer} o.display
   * @param {string} o.displayId this page's display (mood / node actions name a display)
   * @param {() => number} o.serverNow server time estimate in ms (stream clock offset)
   * @param {(id, executedAt) => void} o.onExecuted a cue ran on time (for the heartbeat)
   */
  constructor({ display, displayId, serverNow, onExecuted = () => {}, onWarning = () => {},
    reducedMotion = () => false }) {
    this.display = display;
    // Reduced motion (access.js): moves, turns and growth land at once; fades still fade.
    this.reducedMotion = reducedMotion;
    this.displayId = displayId;
    this.serverNow = serverNow;
    this.onExecuted = onExecuted;
    this.onWarning = onWarning;
    this.cues = new Map(); // id -> cue (event go), in the order they were fired
    this.timers = new Map();
    this.executed = []; // {id, executedAt (server estimate), wallAt} for the test hook
    this.pausedAt = null;
    this.touched = new Set(); // node ids the show changed: restored when it lets go
    this.mixers = new Map(); // node id -> {mixer, action, cueStart, speed, loop}
    this.audioCtx = null;
    this.mood = document.getElementById('show-mood');
    this.overlay = document.getElementById('show-overlay');
    // Captions of audio cues (docs/shows.md `caption`): in a live region that is always
    // there (a region added with its text is not announced), shown while the sound plays.
    this.captionRegion = document.getElementById('show-captions');
    this.caption = null;
  }

  // ---- input: cue frames and the zone state's `show` -------------------------------

  onCue(cue) {
    switch (cue.event) {
      case 'go': this.add(cue); break;
      case 'pause': this.pausedAt = cue.start_time; break;
      case 'resume': this.resume(cue.shift); break;
      case 'stop': case 'panic': this.clear(cue.event === 'panic'); break;
      default: break;
    }
  }

  // live: the state came by a patch (this device was connected when the cue fired), not
  // by a snapshot (a late joiner, who joins running cues mid-way without re-running them).
  setShowState(show, live = false) {
    if (!show || show.status === 'stopped' || !Array.isArray(show.cues)) {
      this.clear(false);
      return;
    }
    this.pausedAt = Number.isFinite(show.paused_at) ? show.paused_at : null;
    const ids = new Set();
    for (const cue of show.cues) {
      ids.add(cue.id);
      const known = this.cues.get(cue.id);
      if (!known) this.add(cue, live);
      else if (known.start_time !== cue.start_time) {
        known.start_time = cue.start_time; // moved by a resume
        this.reschedule(known);
      }
    }
    for (const id of [...this.cues.keys()]) if (!ids.has(id)) this.drop(id);
  }

  add(cue, live = true) {
    if (this.cues.has(cue.id) || !Number.isFinite(cue.start_time)) return;
    this.cues.set(cue.id, cue);
    const delay = cue.start_time - this.serverNow();
    if (delay >= 0) {
      this.schedule(cue, delay);
    } else if (live && delay > -LATE_LIMIT_MS) {
      this.execute(cue); // arrived late (slow network or busy page): run now, report it
    }
    // Long started (a late joiner): the frame loop shows it mid-cue; no sound, no report.
  }

  // The instant that matters: run at start_time - clock offset, on this device's clock.
  schedule(cue, delay) {
    const timer = setTimeout(() => this.execute(cue), delay);
    this.timers.set(cue.id, { timer, due: cue.start_time });
  }

  reschedule(cue) {
    const pending = this.timers.get(cue.id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.schedule(cue, Math.max(0, cue.start_time - this.serverNow()));
  }

  execute(cue) {
    this.timers.delete(cue.id);
    if (!this.cues.has(cue.id)) return;
    if (this.pausedAt !== null && cue.start_time >= this.pausedAt) {
      // Sent just before a pause: it runs when the show resumes (its start moves then).
      this.timers.set(cue.id, { timer: null, due: Infinity });
      return;
    }
    const executedAt = this.serverNow();
    this.executed.push({ id: cue.id, number: cue.number, executedAt, wallAt: Date.now() });
    if (this.executed.length > 50) this.executed.shift();
    for (const action of cue.actions || []) {
      if (action.kind === 'audio') this.playAudio(action, cue);
    }
    this.onExecuted(cue.id, executedAt);
  }

  resume(shift) {
    if (!finite(shift) || this.pausedAt === null) return;
    const moved = [];
    for (const cue of this.cues.values()) {
      if (cue.start_time + (cue.duration || 0) > this.pausedAt) {
        cue.start_time += shift;
        moved.push(cue);
      }
    }
    this.pausedAt = null;
    for (const cue of moved) this.reschedule(cue);
  }

  // Skip drawing this frame? (see HOLD_BEFORE_CUE_MS)
  holdFrame() {
    if (this.timers.size === 0) return false;
    const now = this.serverNow();
    for (const { due } of this.timers.values()) {
      if (due - now < HOLD_BEFORE_CUE_MS && due - now > -HOLD_BEFORE_CUE_MS) return true;
    }
    return false;
  }

  drop(id) {
    clearTimeout(this.timers.get(id)?.timer);
    this.timers.delete(id);
    this.cues.delete(id);
  }

  clear(panic) {
    for (const id of [...this.cues.keys()]) this.drop(id);
    this.pausedAt = null;
    if (panic && this.audioCtx) this.audioCtx.suspend().catch(() => {});
    for (const audio of this.playing || []) audio.pause();
    this.playing = [];
  }

  // ---- every frame -------------------------------------------------------------------

  update() {
    // Paused: frozen at the pause instant (which is a lead ahead when the pause arrives).
    const live = this.serverNow();
    const now = this.pausedAt === null ? live : Math.min(live, this.pausedAt);
    const started = [...this.cues.values()].filter((c) => c.start_time <= now)
      .sort((a, b) => a.start_time - b.start_time);
    const nodes = new Map(); // node id -> {position, rotation, scale, visible, opacity}
    let mood = { dim: 0, tint: null };
    let overlay = null;
    let caption = null;
    const clips = new Map();
    for (const cue of started) {
      const t = now - cue.start_time;
      for (const action of cue.actions || []) {
        if (action.display && action.display !== this.displayId) continue;
        switch (action.kind) {
          case 'node': this.node(nodes, action, t); break;
          case 'mood': mood = this.moodAt(mood, action, t); break;
          case 'overlay': case 'story': {
            const length = finite(action.duration) ? action.duration * 1000 : cue.duration;
            if (!(length > 0) || t < length) overlay = { action, cue };
            break;
          }
          case 'animation': clips.set(action.node, { action, t }); break;
          case 'audio': {
            const length = finite(action.duration) ? action.duration * 1000
              : (cue.duration > 0 ? cue.duration : 3000);
            const text = captionIn(action, language());
            if (text && t < Math.max(length, 2000)) caption = { text, key: `${cue.id}/${text}` };
            break;
          }
          default: break;
        }
      }
    }
    this.applyNodes(nodes);
    this.applyClips(clips);
    this.applyMood(mood);
    this.applyOverlay(overlay);
    this.applyCaption(caption);
  }

  applyCaption(current) {
    const key = current ? current.key : '';
    if (key === (this.caption?.key ?? '')) return;
    this.caption = current;
    if (!this.captionRegion) return;
    this.captionRegion.replaceChildren();
    if (!current) return;
    const line = document.createElement('p');
    line.textContent = current.text; // plain text, never HTML
    this.captionRegion.append(line);
  }

  base(id) {
    const entry = this.display.entries.get(id);
    if (!entry) return null;
    const d = entry.data;
    return {
      position: vec3(d.position) || [0, 0, 0],
      rotation: vec3(d.rotation) || [0, 0, 0],
      scale: vec3(d.scale) || [1, 1, 1],
      visible: d.visible !== false,
      opacity: 1,
    };
  }

  node(nodes, action, t) {
    if (!nodes.has(action.node)) {
      const start = this.base(action.node);
      if (!start) return;
      nodes.set(action.node, start);
    }
    const v = nodes.get(action.node);
    if (action.op === 'appear') v.visible = true;
    else if (action.op === 'hide') v.visible = false;
    else {
      const duration = action.op === 'tween' ? (action.duration || 0) * 1000 : 0;
      const ease = EASE[action.easing] || EASE['ease-in-out'];
      const p = duration > 0 ? ease(clamp01(t / duration)) : 1;
      const moveP = this.reducedMotion() ? 1 : p; // reduced motion: only fades animate
      for (const key of ['position', 'rotation', 'scale']) {
        const target = vec3(action[key]);
        if (target) v[key] = lerp3(v[key], target, moveP);
      }
      if (finite(action.opacity)) v.opacity += (action.opacity - v.opacity) * p;
    }
  }

  applyNodes(nodes) {
    for (const id of this.touched) {
      if (nodes.has(id)) continue;
      const entry = this.display.entries.get(id);
      if (entry) {
        this.display.applyTransform(entry.object, entry.data);
        setOpacity(entry.object, 1);
      }
    }
    this.touched = new Set(nodes.keys());
    for (const [id, v] of nodes) {
      const { object } = this.display.entries.get(id);
      object.position.set(...v.position);
      object.rotation.set(v.rotation[0] * DEG, v.rotation[1] * DEG, v.rotation[2] * DEG, 'XYZ');
      object.scale.set(...v.scale);
      object.visible = v.visible;
      setOpacity(object, v.opacity);
    }
  }

  applyClips(clips) {
    for (const [id, state] of this.mixers) {
      if (!clips.has(id)) {
        state.mixer.stopAllAction();
        this.mixers.delete(id);
      }
    }
    for (const [id, { action, t }] of clips) {
      const object = this.display.entries.get(id)?.object;
      const model = object?.children.find((c) => c.animations?.length);
      const clip = model && THREE.AnimationClip.findByName(model.animations, action.clip);
      if (!clip) {
        const key = `${id}/${action.clip}`;
        if (!this.warned?.has(key)) {
          (this.warned ||= new Set()).add(key);
          this.onWarning(`show: node ${id} has no animation clip ${JSON.stringify(action.clip)}`);
        }
        continue;
      }
      let state = this.mixers.get(id);
      if (!state || state.clip !== clip) {
        const mixer = new THREE.AnimationMixer(model);
        const played = mixer.clipAction(clip);
        played.setLoop(action.loop ? THREE.LoopRepeat : THREE.LoopOnce, Infinity);
        played.clampWhenFinished = true;
        played.play();
        state = { mixer, clip };
        this.mixers.set(id, state);
      }
      // Set, not advance: the clip's time is a function of the cue's start, like tweens.
      // Reduced motion: the clip holds still (a loop at its first pose, else its last).
      const still = action.loop ? 0 : clip.duration;
      state.mixer.setTime(this.reducedMotion() ? still : (t / 1000) * (action.speed || 1));
    }
  }

  moodAt(previous, action, t) {
    const fade = (action.fade || 0) * 1000;
    const p = fade > 0 ? clamp01(t / fade) : 1;
    return {
      dim: previous.dim + ((action.dim ?? 0) - previous.dim) * p,
      tint: p >= 0.5 || !previous.tint ? (action.tint ?? previous.tint) : previous.tint,
    };
  }

  applyMood({ dim, tint }) {
    if (!this.mood) return;
    this.mood.style.opacity = String(clamp01(dim));
    this.mood.style.backgroundColor = tint || '#000000';
    this.mood.hidden = dim <= 0.001;
    this.moodNow = { dim, tint };
  }

  applyOverlay(current) {
    if (!this.overlay) return;
    const key = current ? `${current.cue.id}/${current.action.title}/${current.action.text}` : '';
    if (key === this.overlayKey) return;
    this.overlayKey = key;
    this.overlay.hidden = !current;
    if (!current) return;
    // Plain text only (textContent): show text comes from files and is never HTML.
    this.overlay.querySelector('h2').textContent = String(current.action.title || '');
    this.overlay.querySelector('p').textContent = String(current.action.text || '');
  }

  playAudio(action, cue) {
    const seconds = finite(action.duration) ? action.duration : (cue.duration || 1000) / 1000;
    try {
      if (action.url) {
        const audio = new Audio(action.url);
        audio.volume = clamp01(action.volume ?? 0.8);
        (this.playing ||= []).push(audio);
        audio.play().catch(() => {}); // autoplay rules: a visitor may not have tapped yet
        return;
      }
      this.audioCtx ||= new AudioContext();
      if (this.audioCtx.state === 'suspended') this.audioCtx.resume().catch(() => {});
      const osc = this.audioCtx.createOscillator();
      const gain = this.audioCtx.createGain();
      osc.frequency.value = action.tone;
      gain.gain.value = clamp01(action.volume ?? 0.8) * 0.2;
      osc.connect(gain).connect(this.audioCtx.destination);
      osc.start();
      osc.stop(this.audioCtx.currentTime + seconds);
    } catch (err) {
      this.onWarning(`show audio failed: ${err.message}`);
    }
  }
}

function setOpacity(object, opacity) {
  object.traverse((o) => {
    if (!o.material) return;
    if (opacity < 1 && !o.userData.showMaterial) {
      // Models share materials through the loader cache: fade a private copy.
      o.material = Array.isArray(o.material) ? o.material.map((m) => m.clone()) : o.material.clone();
      o.userData.showMaterial = true;
    }
    if (!o.userData.showMaterial) return;
    for (const m of Array.isArray(o.material) ? o.material : [o.material]) {
      m.transparent = opacity < 1;
      m.opacity = opacity;
    }
  });
}
