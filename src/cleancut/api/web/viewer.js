// The result viewer: the "after" image over a checkerboard, the "before" photo clipped to the
// left of a divider, zoom (relative to the fitted size) with panning, and keyboard control.

const ZOOM_STEP = 1.5;

export class Viewer {
  constructor(doc, { onBeforeError } = {}) {
    this.stage = doc.getElementById("stage");
    this.canvas = doc.getElementById("canvas");
    this.after = doc.getElementById("after-img");
    this.beforeLayer = doc.getElementById("before");
    this.before = doc.getElementById("before-img");
    this.divider = doc.getElementById("divider");
    this.empty = doc.getElementById("stage-empty");
    this.busy = doc.getElementById("stage-busy");
    this.slider = doc.getElementById("compare");
    this.zoomLabel = doc.getElementById("zoom-level");
    this.zoomInButton = doc.getElementById("zoom-in");
    this.zoomOutButton = doc.getElementById("zoom-out");
    this.fitButton = doc.getElementById("zoom-fit");
    this.onBeforeError = onBeforeError;
    this.zoom = 1;
    this.position = 50;
    this.size = null; // natural size of the shown result
    this.beforeSize = null;
    this.wire();
    this.setCompare(50);
    this.setEmpty(true);
  }

  wire() {
    this.slider.addEventListener("input", () => this.setCompare(Number(this.slider.value)));
    this.zoomInButton.addEventListener("click", () => this.zoomBy(ZOOM_STEP));
    this.zoomOutButton.addEventListener("click", () => this.zoomBy(1 / ZOOM_STEP));
    this.fitButton.addEventListener("click", () => this.zoomTo(1));
    this.after.addEventListener("load", () => this.onAfterLoad());
    this.before.addEventListener("load", () => {
      this.beforeSize = [this.before.naturalWidth, this.before.naturalHeight];
      this.updateCompareAvailability();
    });
    this.before.addEventListener("error", () => {
      if (this.before.getAttribute("src")) this.onBeforeError?.();
    });
    new ResizeObserver(() => this.layout()).observe(this.stage);
    this.stage.addEventListener("keydown", (e) => this.onKey(e));
    this.stage.addEventListener(
      "wheel",
      (e) => {
        if (!e.ctrlKey && !e.metaKey) return;
        e.preventDefault();
        this.zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX, e.clientY);
      },
      { passive: false },
    );
    this.canvas.addEventListener("pointerdown", (e) => this.onPointerDown(e));
  }

  setEmpty(empty) {
    this.canvas.hidden = empty;
    this.empty.hidden = !empty;
    for (const el of [this.slider, this.zoomInButton, this.zoomOutButton, this.fitButton]) {
      el.disabled = empty;
    }
    if (empty) {
      this.stage.style.removeProperty("height");
      this.after.removeAttribute("src");
      this.before.removeAttribute("src");
      this.size = null;
      this.beforeSize = null;
    }
  }

  setBusy(busy) {
    this.busy.hidden = !busy;
    this.stage.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // before: the photo's URL (or null); after: the cut-out (or mask) URL; alt: its description.
  show({ before, after, alt }) {
    this.setEmpty(false);
    if (before !== undefined && this.before.getAttribute("src") !== before) {
      this.beforeSize = null;
      if (before) this.before.src = before;
      else this.before.removeAttribute("src");
    }
    if (after && this.after.getAttribute("src") !== after) this.after.src = after;
    if (alt !== undefined) this.after.alt = alt;
    this.updateCompareAvailability();
  }

  onAfterLoad() {
    const size = [this.after.naturalWidth, this.after.naturalHeight];
    const changed = !this.size || size[0] !== this.size[0] || size[1] !== this.size[1];
    this.size = size;
    if (changed) this.zoom = 1;
    this.layout();
    this.updateCompareAvailability();
  }

  // The comparison needs the photo and a result of the same geometry (trim changes it).
  updateCompareAvailability() {
    const same =
      this.size &&
      this.beforeSize &&
      this.size[0] === this.beforeSize[0] &&
      this.size[1] === this.beforeSize[1];
    this.compareOn = Boolean(same);
    this.beforeLayer.hidden = !same;
    this.divider.hidden = !same;
    this.canvas.classList.toggle("no-compare", !same);
    this.slider.disabled = !same;
  }

  setCompare(percent) {
    this.position = Math.max(0, Math.min(100, percent));
    this.slider.value = String(Math.round(this.position));
    this.slider.setAttribute("aria-valuetext", `${Math.round(this.position)}% before`);
    this.canvas.style.setProperty("--pos", `${this.position}%`);
  }

  fitWidth() {
    if (!this.size) return 0;
    const [w, h] = this.size;
    const styles = getComputedStyle(this.stage);
    const padX = parseFloat(styles.paddingLeft) + parseFloat(styles.paddingRight);
    const padY = parseFloat(styles.paddingTop) + parseFloat(styles.paddingBottom);
    const boxW = Math.max(40, this.stage.clientWidth - padX);
    const boxH = Math.max(40, this.maxStageHeight() - padY);
    return Math.min(boxW, (boxH * w) / h, w * 2);
  }

  // The stage is as tall as the fitted image needs, up to its CSS max-height.
  maxStageHeight() {
    const max = parseFloat(getComputedStyle(this.stage).maxHeight);
    return Number.isFinite(max) ? max : this.stage.clientHeight;
  }

  maxZoom() {
    const fit = this.fitWidth();
    return fit ? Math.max(8, (this.size[0] * 8) / fit) : 8;
  }

  layout() {
    if (!this.size) return;
    const fit = this.fitWidth();
    const styles = getComputedStyle(this.stage);
    const padY = parseFloat(styles.paddingTop) + parseFloat(styles.paddingBottom);
    const border = parseFloat(styles.borderTopWidth) + parseFloat(styles.borderBottomWidth);
    const fitHeight = (fit * this.size[1]) / this.size[0];
    this.stage.style.height = `${Math.min(this.maxStageHeight(), fitHeight + padY + border)}px`;
    const width = fit * this.zoom;
    const height = (width * this.size[1]) / this.size[0];
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    const actual = Math.round((width / this.size[0]) * 100);
    this.zoomLabel.value = `${actual}%`;
    this.zoomLabel.textContent = `${actual}%`;
    this.canvas.classList.toggle("pixelated", actual >= 300);
    this.stage.classList.toggle("zoomed", this.zoom > 1.001);
    this.zoomOutButton.disabled = this.zoom <= 1.001;
    this.zoomInButton.disabled = this.zoom >= this.maxZoom() - 0.001;
  }

  zoomBy(factor, clientX, clientY) {
    this.zoomTo(this.zoom * factor, clientX, clientY);
  }

  zoomTo(zoom, clientX, clientY) {
    if (!this.size) return;
    const next = Math.max(1, Math.min(this.maxZoom(), zoom));
    const stageRect = this.stage.getBoundingClientRect();
    const x = clientX ?? stageRect.left + stageRect.width / 2;
    const y = clientY ?? stageRect.top + stageRect.height / 2;
    const before = this.canvas.getBoundingClientRect();
    const fx = (x - before.left) / before.width;
    const fy = (y - before.top) / before.height;
    this.zoom = next;
    this.layout();
    const after = this.canvas.getBoundingClientRect();
    this.stage.scrollLeft += after.left + fx * after.width - x;
    this.stage.scrollTop += after.top + fy * after.height - y;
  }

  onKey(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "+" || e.key === "=") this.zoomBy(ZOOM_STEP);
    else if (e.key === "-" || e.key === "_") this.zoomBy(1 / ZOOM_STEP);
    else if (e.key === "0") this.zoomTo(1);
    else if (this.zoom <= 1.001 && this.compareOn && e.key === "ArrowLeft")
      this.setCompare(this.position - 5);
    else if (this.zoom <= 1.001 && this.compareOn && e.key === "ArrowRight")
      this.setCompare(this.position + 5);
    else return;
    e.preventDefault();
  }

  onPointerDown(e) {
    if (e.button !== 0) return;
    const rect = this.canvas.getBoundingClientRect();
    const dividerX = rect.left + (rect.width * this.position) / 100;
    const nearDivider = Math.abs(e.clientX - dividerX) < 24;
    const mode = this.compareOn && (this.zoom <= 1.001 || nearDivider) ? "compare" : "pan";
    if (mode === "pan" && this.zoom <= 1.001) return;
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    const start = { x: e.clientX, y: e.clientY, left: this.stage.scrollLeft, top: this.stage.scrollTop };
    const move = (ev) => {
      if (mode === "compare") {
        const r = this.canvas.getBoundingClientRect();
        this.setCompare(((ev.clientX - r.left) / r.width) * 100);
      } else {
        this.stage.scrollLeft = start.left - (ev.clientX - start.x);
        this.stage.scrollTop = start.top - (ev.clientY - start.y);
      }
    };
    const up = () => {
      this.canvas.removeEventListener("pointermove", move);
      this.canvas.removeEventListener("pointerup", up);
      this.canvas.removeEventListener("pointercancel", up);
      this.canvas.classList.remove("dragging");
    };
    this.canvas.classList.add("dragging");
    if (mode === "compare") move(e);
    this.canvas.addEventListener("pointermove", move);
    this.canvas.addEventListener("pointerup", up);
    this.canvas.addEventListener("pointercancel", up);
  }
}
