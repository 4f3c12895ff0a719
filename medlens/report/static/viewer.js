/* medlens viewer (report/viewer.py): draws a scan, a volume's three planes or a signal strip with
   explanation maps overlaid. Data come from the viewer's <script type="application/json"> block:
   arrays quantised to bytes, delta-coded along their last axis and deflated, base64 in JSON.
   Text from the data is only ever set with textContent or drawn on a canvas, never parsed as HTML. */
(function () {
  "use strict";

  function bytesOf(b64) {
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function inflate(b64) {
    var stream = new Blob([bytesOf(b64)]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (buf) { return new Uint8Array(buf); });
  }

  function undelta(a, rowLen) {
    for (var o = 0; o < a.length; o += rowLen) {
      for (var i = 1; i < rowLen; i++) a[o + i] = (a[o + i] + a[o + i - 1]) & 255;
    }
    return a;
  }

  function loadArray(spec, rowLen) {
    return inflate(spec.data).then(function (raw) {
      if (spec.dtype === "f32") return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      return undelta(raw, rowLen);
    });
  }

  function Viewer(root) {
    this.root = root;
    this.data = JSON.parse(root.querySelector("script.ml-data").textContent);
    this.method = this.data.initial || 0;
    this.opacity = this.data.opacity;
    this.slices = (this.data.slices || []).slice();
    this.zoom = 1;
    this.position = 0;
  }

  Viewer.prototype.start = function () {
    var self = this, d = this.data, shape = d.shape, rowLen = shape[shape.length - 1];
    var mapRow = d.kind === "signal" ? shape[shape.length - 1] : rowLen;
    var jobs = [loadArray(d.base, rowLen)].concat(d.maps.map(function (m) { return loadArray(m, mapRow); }));
    return Promise.all(jobs).then(function (arrays) {
      self.base = arrays[0];
      self.maps = arrays.slice(1);
      self.wire();
      self.drawAll();
      self.root.dataset.ready = "1";
    });
  };

  Viewer.prototype.q = function (sel) { return this.root.querySelectorAll(sel); };

  Viewer.prototype.wire = function () {
    var self = this;
    this.q("input.ml-method").forEach(function (input) {
      input.addEventListener("change", function () {
        if (input.checked) { self.method = parseInt(input.value, 10); self.root.dataset.method = input.value; self.drawAll(); }
      });
    });
    this.q("input.ml-opacity").forEach(function (input) {
      input.addEventListener("input", function () { self.opacity = input.value / 100; self.drawAll(); });
    });
    this.q("input.ml-slice").forEach(function (input) {
      input.addEventListener("input", function () {
        self.slices[parseInt(input.dataset.plane, 10)] = parseInt(input.value, 10);
        self.drawAll();
      });
    });
    this.q("button.ml-peak").forEach(function (button) {
      button.addEventListener("click", function () {
        var peak = self.data.maps[self.method].peak;
        if (self.data.kind === "volume") { self.slices = peak.slice(); }
        else if (self.data.kind === "signal") {
          var T = self.data.shape[self.data.shape.length - 1];
          self.zoom = Math.max(self.zoom, 4);
          self.position = Math.min(1, Math.max(0, (peak[0] - T / self.zoom / 2) / Math.max(1, T - T / self.zoom)));
        }
        self.syncControls();
        self.drawAll();
      });
    });
    this.q("input.ml-zoom").forEach(function (input) {
      input.addEventListener("input", function () { self.zoom = Math.pow(2, input.value / 10); self.drawAll(); });
    });
    this.q("input.ml-position").forEach(function (input) {
      input.addEventListener("input", function () { self.position = input.value / 1000; self.drawAll(); });
    });
    this.drawLegend();
  };

  Viewer.prototype.syncControls = function () {
    var self = this;
    this.q("input.ml-slice").forEach(function (input) { input.value = self.slices[parseInt(input.dataset.plane, 10)]; });
    this.q("input.ml-zoom").forEach(function (input) { input.value = Math.round(10 * Math.log2(self.zoom)); });
    this.q("input.ml-position").forEach(function (input) { input.value = Math.round(1000 * self.position); });
  };

  Viewer.prototype.lut = function () {
    return this.data.luts[this.data.maps[this.method].signed ? "signed" : "unsigned"];
  };

  Viewer.prototype.alpha = function (q) {
    var m = this.data.maps[this.method];
    var strength = m.signed ? Math.abs(q - 127.5) / 127.5 : q / 255;
    return this.opacity * strength;
  };

  Viewer.prototype.drawLegend = function () {
    var self = this;
    this.q("canvas.ml-legend-bar").forEach(function (c) {
      var ctx = c.getContext("2d"), lut = self.lut(), img = ctx.createImageData(256, 1);
      for (var i = 0; i < 256; i++) {
        img.data[4 * i] = lut[3 * i]; img.data[4 * i + 1] = lut[3 * i + 1]; img.data[4 * i + 2] = lut[3 * i + 2]; img.data[4 * i + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
    });
    var m = this.data.maps[this.method];
    this.q(".ml-legend-low").forEach(function (e) { e.textContent = m.signed ? "against" : "low"; });
    this.q(".ml-legend-high").forEach(function (e) { e.textContent = m.signed ? "for the finding" : "high importance"; });
  };

  Viewer.prototype.drawAll = function () {
    var self = this, d = this.data, name = d.maps[this.method].name;
    this.q("output.ml-opacity-value").forEach(function (o) { o.textContent = Math.round(self.opacity * 100) + "%"; });
    this.drawLegend();
    if (d.kind === "signal") { this.drawSignal(); return; }
    this.q("canvas.ml-pane").forEach(function (canvas) {
      var plane = parseInt(canvas.dataset.plane, 10);
      self.drawPlane(canvas, plane);
      var label = d.kind === "volume"
        ? d.plane_names[plane] + " slice " + (self.slices[plane] + 1) + " of " + d.shape[plane]
        : "image";
      canvas.dataset.slice = d.kind === "volume" ? String(self.slices[plane]) : "0";
      canvas.setAttribute("aria-label", d.alt + ": " + label + ", " + name + " map overlaid at " +
        Math.round(self.opacity * 100) + "% opacity");
      self.q('output.ml-slice-value[data-plane="' + plane + '"]').forEach(function (o) { o.textContent = label; });
    });
  };

  Viewer.prototype.drawPlane = function (canvas, plane) {
    var d = this.data, base = this.base, map = this.maps[this.method], lut = this.lut();
    var rows, cols, index;
    if (d.kind === "image") {
      rows = d.shape[0]; cols = d.shape[1];
      index = function (r, c) { return r * cols + c; };
    } else {
      // the panel says which stored axes run down and across and which are reversed (radiological
      // convention, data/formats/orientation.py); the slice index stays a stored index
      var p = d.panels.filter(function (q) { return q.axis === plane; })[0];
      var H = d.shape[1], W = d.shape[2], at = [0, 0, 0];
      var nr = d.shape[p.rows], nc = d.shape[p.cols];
      rows = nr; cols = nc; at[p.axis] = this.slices[plane];
      index = function (r, c) {
        at[p.rows] = p.flip_rows ? nr - 1 - r : r;
        at[p.cols] = p.flip_cols ? nc - 1 - c : c;
        return (at[0] * H + at[1]) * W + at[2];
      };
    }
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(cols, rows), px = img.data;
    for (var r = 0; r < rows; r++) {
      for (var c = 0; c < cols; c++) {
        var i = index(r, c), g = base[i], q = map[i], a = this.alpha(q), o = 4 * (r * cols + c);
        px[o] = g + (lut[3 * q] - g) * a;
        px[o + 1] = g + (lut[3 * q + 1] - g) * a;
        px[o + 2] = g + (lut[3 * q + 2] - g) * a;
        px[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  };

  Viewer.prototype.drawSignal = function () {
    var d = this.data, L = d.shape[0], T = d.shape[1], base = this.base, map = this.maps[this.method], lut = this.lut();
    var canvas = this.root.querySelector("canvas.ml-pane"), ctx = canvas.getContext("2d");
    var Wc = canvas.width, Hc = canvas.height, axis = 18;
    var span = T / this.zoom, t0 = this.position * (T - span), t1 = t0 + span;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, Wc, Hc);
    for (var x = 0; x < Wc; x++) {
      var t = Math.min(T - 1, Math.floor(t0 + (x + 0.5) * span / Wc)), q = map[t], a = this.alpha(q);
      ctx.fillStyle = "rgba(" + lut[3 * q] + "," + lut[3 * q + 1] + "," + lut[3 * q + 2] + "," + a.toFixed(3) + ")";
      ctx.fillRect(x, 0, 1, Hc - axis);
    }
    var band = (Hc - axis) / L;
    ctx.strokeStyle = "#111"; ctx.lineWidth = 1.5;
    for (var l = 0; l < L; l++) {
      var lo = Infinity, hi = -Infinity;
      for (var k = 0; k < T; k++) { var v = base[l * T + k]; if (v < lo) lo = v; if (v > hi) hi = v; }
      var scale = hi > lo ? (band - 8) / (hi - lo) : 0;
      ctx.beginPath();
      var first = Math.max(0, Math.floor(t0)), last = Math.min(T - 1, Math.ceil(t1));
      for (var k2 = first; k2 <= last; k2++) {
        var px = (k2 - t0) * Wc / span, py = l * band + band - 4 - (base[l * T + k2] - lo) * scale;
        if (k2 === first) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      }
      ctx.stroke();
    }
    ctx.fillStyle = "#333"; ctx.font = "11px sans-serif"; ctx.strokeStyle = "#777"; ctx.lineWidth = 1;
    var rate = d.rate || 0, unit = rate ? "s" : "samples", step = Math.pow(10, Math.floor(Math.log10(span / 5 || 1)));
    for (var tick = Math.ceil(t0 / step) * step; tick <= t1; tick += step) {
      var tx = (tick - t0) * Wc / span;
      ctx.beginPath(); ctx.moveTo(tx, Hc - axis); ctx.lineTo(tx, Hc - axis + 4); ctx.stroke();
      ctx.fillText(rate ? (tick / rate + (d.start || 0)).toFixed(2) : String(Math.round(tick)), tx + 2, Hc - 4);
    }
    ctx.fillText(unit, Wc - 50, Hc - 4);
    ctx.setLineDash([4, 3]); ctx.strokeStyle = "#0b5394";
    (d.annotations || []).forEach(function (note) {
      if (note.at < t0 || note.at > t1) return;
      var ax = (note.at - t0) * Wc / span;
      ctx.beginPath(); ctx.moveTo(ax, 0); ctx.lineTo(ax, Hc - axis); ctx.stroke();
      ctx.fillStyle = "#0b5394"; ctx.fillText(note.label, ax + 3, 12);
    });
    ctx.setLineDash([]);
    var label = (rate ? (t0 / rate + (d.start || 0)).toFixed(2) + " to " + (t1 / rate + (d.start || 0)).toFixed(2) + " s"
                      : "samples " + Math.round(t0) + " to " + Math.round(t1) + " of " + T) + " (zoom " + this.zoom.toFixed(1) + "x)";
    canvas.dataset.window = Math.round(t0) + "-" + Math.round(t1);
    canvas.setAttribute("aria-label", d.alt + ": " + label + ", " + d.maps[this.method].name + " map as a coloured band");
    this.q("output.ml-window-value").forEach(function (o) { o.textContent = label; });
  };

  function init() {
    document.querySelectorAll(".ml-viewer").forEach(function (root) {
      if (root.dataset.started) return;
      root.dataset.started = "1";
      if (typeof DecompressionStream === "undefined") {
        root.querySelector(".ml-error").textContent = "This browser is too old to draw the scan (no DecompressionStream).";
        return;
      }
      new Viewer(root).start().catch(function (err) {
        root.querySelector(".ml-error").textContent = "The scan could not be drawn: " + err;
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
