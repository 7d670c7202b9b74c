// LiWi layer viewer: upload a photo, get its layer stack from POST v1/decompose, and
// recompose it live on a canvas with the platform's layer math (docs/architecture.md):
//   normal   (rgb, a): C ← a·rgb + (1 − a)·C
//   multiply (rgb, a): C ← C ⊙ (1 − a + a·rgb)
// Objects can be toggled and dragged; a shadow moves with its object. Edits (move, shadow
// strength, remove) are recorded as the ops of liwi.edits v1 (docs/editing.md) and the
// edited image comes from POST v1/recompose. No dependencies.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const els = {
    file: $("file"), drop: $("drop"), dropText: $("drop-text"), run: $("run"),
    status: $("status"), view: $("view"), layers: $("layers"), shadows: $("shadows"),
    reset: $("reset"), dlZip: $("dl-zip"), dlPsd: $("dl-psd"), maxLayers: $("max-layers"),
    apiKey: $("api-key"), modelInfo: $("model-info"), boxMode: $("box-mode"),
    clearBox: $("clear-box"), editObject: $("edit-object"), strength: $("shadow-strength"),
    strengthValue: $("shadow-value"), remove: $("remove-object"), opsSummary: $("ops-summary"),
    dlEdited: $("dl-edited"), dlOps: $("dl-ops"),
  };
  // Alpha above which a click grabs an object (straight alpha, 0..1).
  const HIT_ALPHA = 0.3;

  const state = {
    file: null,         // the chosen File
    response: null,     // the JSON body of the last decomposition
    width: 0, height: 0,
    background: null,   // Float32Array, RGB, 0..1
    objects: [],        // [{index, name, rgba, shadow|null}]: cropped {data, channels, x, y, w, h}
    visible: {},        // layer name → bool
    offsets: [],        // per object [dx, dy] in image pixels
    strengths: [],      // per object shadow strength (the `shadow` op's factor on alpha)
    removed: [],        // per object: removed by a `remove` op
    ops: [],            // the edit ops in the order the user acted: [{op, object, ..., k}]
    selected: -1,       // the object the edit controls act on (position in `objects`)
    shadows: true,
    drag: null,         // {object, startX, startY, baseDx, baseDy}
    box: null,          // prompt box [x0, y0, x1, y1] in image pixels, or null
    boxDraft: null,     // the box being drawn: {x0, y0, x1, y1}
    frames: 0,          // composites drawn (tests wait on this)
  };

  const apiBase = () => {
    const path = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
    return location.origin + path;
  };

  function setStatus(text, isError = false) {
    els.status.textContent = text;
    els.status.classList.toggle("error", isError);
  }

  function authHeaders() {
    const key = els.apiKey.value.trim();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  // -- loading -----------------------------------------------------------------------
  // A layer arrives cropped to its box: {x, y, width, height, mode, png}. Mode RGB (the
  // background), RGBA (straight alpha) or L (a grey shadow's attenuation S, 255 = none).
  async function pngToLayer(layer) {
    const bytes = Uint8Array.from(atob(layer.png), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }), {
      premultiplyAlpha: "none", colorSpaceConversion: "none",
    });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const channels = { RGB: 3, RGBA: 4, L: 1 }[layer.mode || "RGBA"];
    const n = bitmap.width * bitmap.height;
    const out = new Float32Array(n * channels);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < channels; c++) out[i * channels + c] = data[i * 4 + c] / 255;
    }
    return { data: out, channels, x: layer.x || 0, y: layer.y || 0,
             w: bitmap.width, h: bitmap.height, bitmap };
  }

  async function loadStack(body) {
    state.response = body;
    state.width = body.width;
    state.height = body.height;
    state.objects = [];
    state.visible = {};
    els.layers.textContent = "";
    const byObject = new Map();
    const decoded = await Promise.all(body.layers.map(pngToLayer));
    body.layers.forEach((layer, i) => {
      const px = decoded[i];
      state.visible[layer.name] = true;
      addLayerRow(layer, px);
      if (layer.kind === "background") {
        state.background = px.data;  // full size, RGB
        return;
      }
      if (!byObject.has(layer.object_index)) {
        byObject.set(layer.object_index, { index: layer.object_index, rgba: null, shadow: null,
                                           name: null, shadowName: null });
      }
      const obj = byObject.get(layer.object_index);
      if (layer.kind === "shadow") { obj.shadow = px; obj.shadowName = layer.name; }
      else { obj.rgba = px; obj.name = layer.name; }
    });
    state.objects = [...byObject.values()].sort((a, b) => a.index - b.index);
    resetEdits();
    els.view.width = state.width;
    els.view.height = state.height;
    draw();
  }

  function addLayerRow(layer, px) {
    const li = document.createElement("li");
    li.dataset.layer = layer.name;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.dataset.layer = layer.name;
    box.setAttribute("aria-label", `show ${layer.name}`);
    box.addEventListener("change", () => {
      state.visible[layer.name] = box.checked;
      li.classList.toggle("off", !box.checked);
      draw();
    });
    const thumb = document.createElement("canvas");  // the crop drawn where it sits
    const scale = 96 / Math.max(state.width, state.height);
    thumb.width = Math.max(1, Math.round(state.width * scale));
    thumb.height = Math.max(1, Math.round(state.height * scale));
    thumb.getContext("2d").drawImage(px.bitmap, px.x * scale, px.y * scale,
                                     px.w * scale, px.h * scale);
    const text = document.createElement("div");
    text.innerHTML = `<div class="name"></div><div class="kind"></div>`;
    text.querySelector(".name").textContent = layer.name;
    text.querySelector(".kind").textContent = `${layer.kind} · ${layer.blend}`;
    li.append(box, thumb, text);
    els.layers.append(li);
  }

  // -- compositing (the same math as liwi.layers.LayerStack.composite) ---------------
  // Blend one cropped layer, moved by (dx, dy), into the H×W×3 canvas buffer `out`.
  // `strength` scales the layer's alpha (clipped to 1), as the `shadow` op does.
  function blend(out, px, dx, dy, multiply, strength = 1) {
    const w = state.width, h = state.height;
    const ox = px.x + dx, oy = px.y + dy;
    const x0 = Math.max(0, ox), x1 = Math.min(w, ox + px.w);
    const y0 = Math.max(0, oy), y1 = Math.min(h, oy + px.h);
    const d = px.data, c = px.channels;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const o = (y * w + x) * 3;
        const s = ((y - oy) * px.w + (x - ox)) * c;
        if (c === 1) {  // grey attenuation S = 1 − a (a black multiply layer): C ← C·S
          const v = strength === 1 ? d[s] : 1 - Math.min(1, (1 - d[s]) * strength);
          if (v < 1) { out[o] *= v; out[o + 1] *= v; out[o + 2] *= v; }
          continue;
        }
        const a = strength === 1 ? d[s + 3] : Math.min(1, d[s + 3] * strength);
        if (!(a > 0)) continue;
        if (multiply) {
          out[o] *= 1 - a + a * d[s];
          out[o + 1] *= 1 - a + a * d[s + 1];
          out[o + 2] *= 1 - a + a * d[s + 2];
        } else {
          out[o] = a * d[s] + (1 - a) * out[o];
          out[o + 1] = a * d[s + 1] + (1 - a) * out[o + 1];
          out[o + 2] = a * d[s + 2] + (1 - a) * out[o + 2];
        }
      }
    }
  }

  function composite() {
    const w = state.width, h = state.height;
    const out = new Float32Array(w * h * 3);
    if (state.background && state.visible.background !== false) out.set(state.background);
    state.objects.forEach((obj, k) => {
      if (state.removed[k]) return;
      const [dx, dy] = state.offsets[k];
      if (state.shadows && obj.shadow && state.visible[obj.shadowName] !== false) {
        blend(out, obj.shadow, dx, dy, true, state.strengths[k]);
      }
      if (obj.rgba && state.visible[obj.name] !== false) blend(out, obj.rgba, dx, dy, false);
    });
    return out;
  }

  let pending = false;
  function draw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const w = state.width, h = state.height;
      if (!w || !h) return;
      const rgb = composite();
      const img = new ImageData(w, h);
      for (let i = 0, n = w * h; i < n; i++) {
        img.data[i * 4] = Math.floor(rgb[i * 3] * 255 + 0.5);
        img.data[i * 4 + 1] = Math.floor(rgb[i * 3 + 1] * 255 + 0.5);
        img.data[i * 4 + 2] = Math.floor(rgb[i * 3 + 2] * 255 + 0.5);
        img.data[i * 4 + 3] = 255;
      }
      const ctx = els.view.getContext("2d");
      ctx.putImageData(img, 0, 0);
      const b = state.boxDraft || (state.box && { x0: state.box[0], y0: state.box[1],
                                                  x1: state.box[2], y1: state.box[3] });
      if (b) {
        ctx.lineWidth = Math.max(1, Math.round(w / 300));
        ctx.strokeStyle = "#2f6fde";
        ctx.setLineDash([6, 4]);
        ctx.strokeRect(Math.min(b.x0, b.x1), Math.min(b.y0, b.y1),
                       Math.abs(b.x1 - b.x0), Math.abs(b.y1 - b.y0));
        ctx.setLineDash([]);
      }
      state.frames += 1;
      document.body.dataset.frames = String(state.frames);
    });
  }

  // -- dragging ------------------------------------------------------------------------
  function imagePoint(ev) {
    const r = els.view.getBoundingClientRect();
    return [
      ((ev.clientX - r.left) / r.width) * state.width,
      ((ev.clientY - r.top) / r.height) * state.height,
    ];
  }

  function objectAt(x, y) {
    // Front to back: the first visible object whose alpha under the cursor is solid.
    for (let k = state.objects.length - 1; k >= 0; k--) {
      const obj = state.objects[k];
      if (!obj.rgba || state.removed[k] || state.visible[obj.name] === false) continue;
      const px = obj.rgba;
      const sx = Math.floor(x - state.offsets[k][0] - px.x);
      const sy = Math.floor(y - state.offsets[k][1] - px.y);
      if (sx < 0 || sy < 0 || sx >= px.w || sy >= px.h) continue;
      if (px.data[(sy * px.w + sx) * 4 + 3] > HIT_ALPHA) return k;
    }
    return -1;
  }

  const clampX = (x) => Math.min(state.width, Math.max(0, Math.round(x)));
  const clampY = (y) => Math.min(state.height, Math.max(0, Math.round(y)));

  els.view.addEventListener("pointerdown", (ev) => {
    if (!state.width) return;
    const [x, y] = imagePoint(ev);
    if (els.boxMode.checked) {
      state.boxDraft = { x0: clampX(x), y0: clampY(y), x1: clampX(x), y1: clampY(y) };
      els.view.setPointerCapture(ev.pointerId);
      return;
    }
    if (!state.objects.length) return;
    const k = objectAt(x, y);
    if (k < 0) return;
    select(k);
    state.drag = { object: k, startX: x, startY: y,
                   baseDx: state.offsets[k][0], baseDy: state.offsets[k][1] };
    els.view.setPointerCapture(ev.pointerId);
    els.view.classList.add("dragging");
  });
  els.view.addEventListener("pointermove", (ev) => {
    if (state.boxDraft) {
      const [x, y] = imagePoint(ev);
      state.boxDraft.x1 = clampX(x);
      state.boxDraft.y1 = clampY(y);
      draw();
      return;
    }
    if (!state.drag) return;
    const [x, y] = imagePoint(ev);
    const d = state.drag;
    // Keep the object's box centre on the canvas (a move entirely off it is a bad op).
    const px = state.objects[d.object].rgba;
    const cx = px.x + px.w / 2, cy = px.y + px.h / 2;
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    state.offsets[d.object] = [
      Math.round(clamp(d.baseDx + x - d.startX, -cx, state.width - cx)),
      Math.round(clamp(d.baseDy + y - d.startY, -cy, state.height - cy)),
    ];
    draw();
  });
  const endDrag = () => {
    if (state.drag) {
      const [dx, dy] = state.offsets[state.drag.object];
      recordOp("move", state.drag.object, { dx, dy }, dx === 0 && dy === 0);
    }
    state.drag = null;
    els.view.classList.remove("dragging");
    const b = state.boxDraft;
    if (!b) return;
    state.boxDraft = null;
    const box = [Math.min(b.x0, b.x1), Math.min(b.y0, b.y1),
                 Math.max(b.x0, b.x1), Math.max(b.y0, b.y1)];
    if (box[2] - box[0] < 2 || box[3] - box[1] < 2) { draw(); return; }  // a click, not a box
    state.box = box;
    els.boxMode.checked = false;
    els.view.classList.remove("boxing");
    els.clearBox.disabled = false;
    decompose();
  };
  els.boxMode.addEventListener("change", () => {
    els.view.classList.toggle("boxing", els.boxMode.checked);
  });
  els.clearBox.addEventListener("click", () => {
    state.box = null;
    els.clearBox.disabled = true;
    decompose();
  });
  els.view.addEventListener("pointerup", endDrag);
  els.view.addEventListener("pointercancel", endDrag);

  els.shadows.addEventListener("change", () => { state.shadows = els.shadows.checked; draw(); });
  els.reset.addEventListener("click", () => { resetEdits(); draw(); });

  // -- edits: the ops of liwi.edits v1 (docs/editing.md) ------------------------------
  // Ops are kept in the order the user acted. `object` indexes the stack as it is when
  // the op runs, so it is fixed when the op is recorded: the object's position among the
  // objects not removed so far. One move and one shadow op per object, updated in place:
  // neither changes the indices, so updating (or dropping) one keeps every other op right.
  const liveIndex = (k) => state.removed.slice(0, k).filter((r) => !r).length;

  function recordOp(op, k, fields, drop = false) {
    const at = state.ops.findIndex((o) => o.op === op && o.k === k);
    if (drop) {
      if (at >= 0) state.ops.splice(at, 1);
    } else if (at >= 0) {
      Object.assign(state.ops[at], fields);
    } else {
      state.ops.push({ op, object: liveIndex(k), ...fields, k });
    }
    showOps();
  }

  function removeObject(k) {
    if (k < 0 || state.removed[k]) return;
    // Its own move and shadow ops change nothing any more; dropping them keeps indices.
    state.ops = state.ops.filter((o) => o.k !== k);
    state.ops.push({ op: "remove", object: liveIndex(k), k });
    state.removed[k] = true;
    for (const name of [state.objects[k].name, state.objects[k].shadowName]) {
      const row = els.layers.querySelector(`li[data-layer="${name}"]`);
      if (row) row.classList.add("removed");
    }
    select(state.objects.findIndex((_, j) => !state.removed[j]));
    showOps();
    draw();
  }

  function editList() {
    return { version: 1, ops: state.ops.map(({ k, ...op }) => op) };
  }

  function resetEdits() {
    state.offsets = state.objects.map(() => [0, 0]);
    state.strengths = state.objects.map(() => 1);
    state.removed = state.objects.map(() => false);
    state.ops = [];
    els.layers.querySelectorAll("li.removed").forEach((li) => li.classList.remove("removed"));
    select(state.objects.length ? state.objects.length - 1 : -1);
    showOps();
  }

  // The edit controls act on object k (−1: none).
  function select(k) {
    state.selected = k;
    els.editObject.textContent = "";
    state.objects.forEach((obj, j) => {
      if (state.removed[j]) return;
      els.editObject.append(new Option(obj.name || `object ${j + 1}`, String(j), false, j === k));
    });
    const on = k >= 0 && !!state.response && document.body.dataset.state !== "busy";
    els.editObject.disabled = !on;
    els.strength.disabled = !on;
    els.remove.disabled = !on;
    const v = k >= 0 ? state.strengths[k] : 1;
    els.strength.value = String(v);
    els.strengthValue.textContent = v.toFixed(2);
  }

  function showOps() {
    const n = state.ops.length;
    els.opsSummary.textContent = n
      ? `${n} op${n > 1 ? "s" : ""}: ` + state.ops.map((o) => `${o.op} ${o.object}`).join(", ")
      : "No edits.";
    document.body.dataset.ops = String(n);
  }

  els.editObject.addEventListener("change", () => select(Number(els.editObject.value)));
  els.strength.addEventListener("input", () => {
    const k = state.selected;
    if (k < 0) return;
    const v = Number(els.strength.value);
    state.strengths[k] = v;
    els.strengthValue.textContent = v.toFixed(2);
    recordOp("shadow", k, { strength: v }, v === 1);
    draw();
  });
  els.remove.addEventListener("click", () => removeObject(state.selected));

  // -- requests ------------------------------------------------------------------------
  // The server downscales large photos (work_pixels): a box is drawn on the returned
  // layers but sent in the uploaded photo's pixels.
  function toInputPixels(box) {
    const r = state.response;
    if (!r || !r.input_width) return box;
    const fx = r.input_width / r.width, fy = r.input_height / r.height;
    const x = (v) => Math.min(r.input_width, v * fx), y = (v) => Math.min(r.input_height, v * fy);
    return [x(box[0]), y(box[1]), x(box[2]), y(box[3])];
  }

  async function post(format) {
    const form = new FormData();
    form.append("image", state.file, state.file.name || "image");
    form.append("max_layers", els.maxLayers.value);
    form.append("format", format);
    if (state.box) form.append("prompt", JSON.stringify({ box: toInputPixels(state.box) }));
    return checked(await fetch(apiBase() + "v1/decompose", {
      method: "POST", body: form, headers: authHeaders(),
    }));
  }

  async function checked(resp) {
    if (!resp.ok) {
      let detail = resp.statusText;
      try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
      const hint = resp.status === 401 ? " (enter the API key)" : "";
      throw new Error(`${resp.status}: ${detail}${hint}`);
    }
    return resp;
  }

  function setBusy(busy) {
    document.body.dataset.state = busy ? "busy" : (state.response ? "ready" : "idle");
    els.run.disabled = busy || !state.file;
    const have = !busy && !!state.response;
    els.reset.disabled = !have;
    els.dlZip.disabled = !have;
    els.dlPsd.disabled = !have;
    els.dlEdited.disabled = !have;
    els.dlOps.disabled = !have;
    select(state.selected);
  }

  async function decompose() {
    if (!state.file) return;
    setBusy(true);
    setStatus("Decomposing…");
    const t0 = performance.now();
    try {
      const body = await (await post("json")).json();
      await loadStack(body);
      const n = body.layers.length;
      const prompt = state.box ? ` for box [${state.box.join(", ")}]` : "";
      setStatus(`${body.n_layers} layers (${n} with shadows)${prompt} in ` +
                `${Math.round(performance.now() - t0)} ms · model ${body.model.version || body.model.uri}`);
    } catch (err) {
      state.response = null;
      setStatus(`Failed: ${err.message}`, true);
      document.body.dataset.error = err.message;
    } finally {
      setBusy(false);
    }
  }

  async function download(format) {
    setBusy(true);
    setStatus(`Preparing ${format.toUpperCase()}…`);
    try {
      save(await (await post(format)).blob(), `layers.${format}`);
    } catch (err) {
      setStatus(`Download failed: ${err.message}`, true);
    } finally {
      setBusy(false);
    }
  }

  function save(blob, suffix) {
    const a = document.createElement("a");
    const stem = (state.file.name || "image").replace(/\.[^.]+$/, "");
    a.href = URL.createObjectURL(blob);
    a.download = `${stem}-${suffix}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    setStatus(`Downloaded ${a.download} (${Math.round(blob.size / 1024)} KiB).`);
  }

  // The edited image: the layers as decomposed (a ZIP built here from the JSON answer,
  // the same files as format=zip, so the model does not run again) plus the ops, sent to
  // POST v1/recompose, which applies them with liwi.edits as `liwi edit` does.
  async function downloadEdited() {
    setBusy(true);
    setStatus("Recomposing the edited image…");
    try {
      const form = new FormData();
      form.append("layers", layersZip(), "layers.zip");
      form.append("ops", JSON.stringify(editList()));
      const resp = await checked(await fetch(apiBase() + "v1/recompose", {
        method: "POST", body: form, headers: authHeaders(),
      }));
      save(await resp.blob(), "edited.png");
    } catch (err) {
      setStatus(`Download failed: ${err.message}`, true);
    } finally {
      setBusy(false);
    }
  }

  function downloadOps() {
    const text = JSON.stringify(editList(), null, 2) + "\n";
    save(new Blob([text], { type: "application/json" }), "ops.json");
  }

  // A stored (uncompressed) ZIP of layers.json and the layer PNGs of the JSON answer.
  const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let i = 0; i < 8; i++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  function layersZip() {
    const body = state.response;
    const enc = new TextEncoder();
    const manifest = {
      ...body.manifest, width: body.width, height: body.height, layout_version: 2,
      layers: body.layers.map(({ png, ...entry }) => entry),
    };
    const files = [["layers.json", enc.encode(JSON.stringify(manifest, null, 2))]];
    for (const layer of body.layers) {
      files.push([layer.file, Uint8Array.from(atob(layer.png), (c) => c.charCodeAt(0))]);
    }
    const parts = [], central = [];
    let offset = 0;
    const header = (size, fields) => {  // [bytes, value] pairs, little endian
      const buf = new DataView(new ArrayBuffer(size));
      let at = 0;
      for (const [n, v] of fields) {
        if (n === 2) buf.setUint16(at, v, true); else buf.setUint32(at, v, true);
        at += n;
      }
      return new Uint8Array(buf.buffer);
    };
    for (const [name, data] of files) {
      const nameBytes = enc.encode(name), crc = crc32(data), n = data.length;
      // version 2.0, flag 0x800 (UTF-8 names), stored, 1980-01-01 00:00
      const common = [[2, 20], [2, 0x800], [2, 0], [2, 0], [2, 0x21], [4, crc], [4, n], [4, n],
                      [2, nameBytes.length], [2, 0]];
      const local = header(30, [[4, 0x04034b50], ...common]);
      parts.push(local, nameBytes, data);
      central.push(header(46, [[4, 0x02014b50], [2, 20], ...common, [2, 0], [2, 0], [2, 0],
                               [4, 0], [4, offset]]), nameBytes);
      offset += local.length + nameBytes.length + n;
    }
    const size = central.reduce((t, b) => t + b.length, 0);
    const end = header(22, [[4, 0x06054b50], [2, 0], [2, 0], [2, files.length],
                            [2, files.length], [4, size], [4, offset], [2, 0]]);
    return new Blob([...parts, ...central, end], { type: "application/zip" });
  }

  function choose(file) {
    if (!file) return;
    state.file = file;
    state.box = null;
    els.clearBox.disabled = true;
    els.dropText.textContent = file.name || "pasted image";
    setBusy(false);
    decompose();
  }

  els.file.addEventListener("change", () => choose(els.file.files[0]));
  els.run.addEventListener("click", decompose);
  els.dlZip.addEventListener("click", () => download("zip"));
  els.dlPsd.addEventListener("click", () => download("psd"));
  els.dlEdited.addEventListener("click", downloadEdited);
  els.dlOps.addEventListener("click", downloadOps);
  for (const type of ["dragenter", "dragover"]) {
    els.drop.addEventListener(type, (ev) => { ev.preventDefault(); els.drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    els.drop.addEventListener(type, () => els.drop.classList.remove("over"));
  }
  els.drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    choose(ev.dataTransfer.files[0]);
  });

  els.apiKey.value = localStorage.getItem("liwi-api-key") || "";
  els.apiKey.addEventListener("change", () => {
    localStorage.setItem("liwi-api-key", els.apiKey.value.trim());
    loadModelInfo();
  });

  async function loadModelInfo() {
    try {
      const resp = await fetch(apiBase() + "v1/models", { headers: authHeaders() });
      if (resp.status === 401) { els.modelInfo.textContent = "model: (API key needed)"; return; }
      const info = (await resp.json()).data[0];
      els.modelInfo.textContent = `model: ${info.name || info.uri} · ${info.version || "?"} · ${info.device}`;
    } catch (_) {
      els.modelInfo.textContent = "model: unavailable";
    }
  }
  loadModelInfo();

  // For tests and the console: the live state and the compositor.
  window.liwiViewer = { state, composite, draw, editList, layersZip };
})();
