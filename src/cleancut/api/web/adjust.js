// The adjustment form → the public options of the effects endpoint (api/options.py), and the
// download formats the options schema offers.

const MAX_BACKGROUND_SIDE = 4096;

export const FORMATS = [
  { id: "png", label: "PNG (transparent)", ext: "png", needs: ["png"], options: { format: "png" } },
  {
    id: "webp",
    label: "WebP",
    ext: "webp",
    needs: ["webp"],
    options: { format: "webp", lossless: false, quality: 90 },
  },
  { id: "avif", label: "AVIF", ext: "avif", needs: ["avif"], options: { format: "avif", quality: 80 } },
  { id: "jpeg", label: "JPEG", ext: "jpg", needs: ["jpeg"], options: { format: "jpeg", quality: 92 } },
  {
    id: "jpeg-path",
    label: "JPEG with Photoshop clipping path",
    ext: "jpg",
    needs: ["jpeg", "clip_path"],
    options: { format: "jpeg", quality: 92, clip_path: true },
    note: "The photo with the subject's outline stored as a Photoshop path.",
  },
  {
    id: "psd",
    label: "PSD (layer, mask and path)",
    ext: "psd",
    needs: ["psd"],
    options: { format: "psd" },
    note: "A Photoshop document: the photo as a layer with its mask, plus the path.",
  },
  {
    id: "svg",
    label: "SVG (vector outline)",
    ext: "svg",
    needs: ["svg"],
    options: { format: "svg" },
    note: "The subject's outline as vector paths.",
  },
];

export function formatsFor(caps) {
  const have = new Set(caps.formats);
  if (caps.clipPath) have.add("clip_path");
  return FORMATS.filter((f) => f.needs.every((n) => have.has(n)));
}

function readAsDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener("load", () => resolve(reader.result));
    reader.addEventListener("error", () => reject(reader.error));
    reader.readAsDataURL(blob);
  });
}

// Large pictures are scaled down in the browser first: a background never needs more.
async function backgroundData(file) {
  try {
    const bitmap = await createImageBitmap(file);
    const side = Math.max(bitmap.width, bitmap.height);
    if (side > MAX_BACKGROUND_SIDE || file.size > 8 * 1024 * 1024) {
      const scale = Math.min(1, MAX_BACKGROUND_SIDE / side);
      const canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      const blob = await new Promise((r) => canvas.toBlob(r, "image/jpeg", 0.92));
      return readAsDataUrl(blob);
    }
    bitmap.close();
  } catch {
    // a format the browser cannot decode: the server may still read it
  }
  return readAsDataUrl(file);
}

export class Adjustments {
  constructor(doc, caps, onChange) {
    this.doc = doc;
    this.form = doc.getElementById("adjust");
    this.caps = caps;
    this.onChange = onChange;
    this.background = null; // {key, data} of the chosen picture
    this.refineGroup = doc.getElementById("refine-group");
    this.refineGroup.hidden = !caps.refine;
    this.wire();
    this.sync();
  }

  el(id) {
    return this.doc.getElementById(id);
  }

  wire() {
    const changed = () => {
      this.sync();
      this.onChange();
    };
    this.form.addEventListener("input", (e) => {
      if (e.target.id !== "bg-image") changed();
    });
    this.form.addEventListener("change", (e) => {
      if (e.target.id === "bg-image") this.loadBackground(e.target.files[0]).then(changed);
    });
    this.form.addEventListener("reset", () => {
      this.background = null;
      setTimeout(changed, 0); // after the browser has reset the fields
    });
    this.form.addEventListener("submit", (e) => e.preventDefault());
  }

  async loadBackground(file) {
    if (!file) {
      this.background = null;
      return;
    }
    const data = await backgroundData(file);
    this.background = { key: `${file.name}:${file.size}:${file.lastModified}`, data };
  }

  backgroundType() {
    return this.form.querySelector('input[name="bg"]:checked')?.value || "transparent";
  }

  // Shows the fields of the chosen background, enables dependent fields, updates outputs.
  sync() {
    const type = this.backgroundType();
    for (const sub of this.form.querySelectorAll("[data-bg]")) sub.hidden = sub.dataset.bg !== type;
    this.el("shadow-opacity").disabled = !this.el("shadow-on").checked;
    const trim = this.el("trim").checked;
    this.el("margin").disabled = !trim;
    this.el("margin-unit").disabled = !trim;
    this.el("grad-angle-out").textContent = `${this.el("grad-angle").value}°`;
    this.el("bg-blur-out").textContent = this.el("bg-blur").value;
    this.el("shadow-opacity-out").textContent = `${this.el("shadow-opacity").value}%`;
    this.el("decontaminate-out").textContent = `${this.el("decontaminate").value}%`;
  }

  // The public options (without the output format); null while incomplete.
  options() {
    const options = {};
    const type = this.backgroundType();
    if (type === "color") options.background = { type, color: this.el("bg-color").value };
    else if (type === "gradient") {
      options.background = {
        type,
        color: this.el("grad-from").value,
        color2: this.el("grad-to").value,
        angle: Number(this.el("grad-angle").value),
      };
    } else if (type === "blur") options.background = { type, blur: Number(this.el("bg-blur").value) };
    else if (type === "image") {
      if (!this.background) return null;
      options.background = { type, image: this.background.data, fit: this.el("bg-fit").value };
    }
    if (this.el("shadow-on").checked) {
      options.shadow = { opacity: Number(this.el("shadow-opacity").value) };
    }
    if (this.caps.refine) {
      const level = this.el("refine-level").value;
      const decontaminate = Number(this.el("decontaminate").value) / 100;
      if (level !== "" || decontaminate > 0) {
        options.refine = { decontaminate };
        if (level !== "") options.refine.level = Number(level);
      }
    }
    if (this.el("trim").checked) {
      options.trim = true;
      const margin = Math.max(0, Number(this.el("margin").value) || 0);
      if (margin > 0) options.margin = this.el("margin-unit").value === "%" ? `${margin}%` : margin;
    }
    return options;
  }

  // A short stable key for caching renders of these options.
  key(options) {
    return JSON.stringify(options, (name, value) =>
      name === "image" && this.background ? this.background.key : value,
    );
  }

  // The mask view only depends on the edge settings.
  maskOptions(options) {
    return options && options.refine ? { refine: options.refine } : {};
  }

  describe(options) {
    if (!options) return "Choose a background picture to see it.";
    const parts = [];
    const bg = options.background;
    if (!bg) parts.push("transparent background");
    else if (bg.type === "color") parts.push(`${bg.color} background`);
    else parts.push(`${bg.type} background`);
    if (options.shadow) parts.push("shadow");
    if (options.trim) parts.push("trimmed");
    return parts.join(", ");
  }
}

export function isEmpty(options) {
  return options !== null && Object.keys(options).length === 0;
}
