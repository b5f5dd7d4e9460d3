// Undo/redo of whole documents (a display is small): every commit is one step.
export class History {
  constructor(limit = 200) {
    this.limit = limit;
    this.done = [];
    this.undone = [];
  }

  // Remember `before` (the document as it was) for undo.
  push(before, label) {
    this.done.push({ doc: before, label });
    if (this.done.length > this.limit) this.done.shift();
    this.undone = [];
  }

  undo(current) {
    const step = this.done.pop();
    if (!step) return null;
    this.undone.push({ doc: current, label: step.label });
    return step;
  }

  redo(current) {
    const step = this.undone.pop();
    if (!step) return null;
    this.done.push({ doc: current, label: step.label });
    return step;
  }

  get canUndo() { return this.done.length > 0; }

  get canRedo() { return this.undone.length > 0; }
}
