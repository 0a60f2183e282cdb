// The pulse chart in the top bar: live events per second over the last minute, drawn on a canvas (at most every
// 250 ms as events arrive, and every second). The canvas carries the figures as data-rate/-total/-max.
import { dom } from './dom.js';

const PULSE_SECONDS = 60;

const pulse = { secs: new Float64Array(PULSE_SECONDS).fill(-1), counts: new Uint32Array(PULSE_SECONDS), drawn: 0 };

export function pulseAdd(n) {
  const s = Math.floor(Date.now() / 1000);
  const i = s % PULSE_SECONDS;
  if (pulse.secs[i] !== s) {
    pulse.secs[i] = s;
    pulse.counts[i] = 0;
  }
  pulse.counts[i] += n;
  if (performance.now() - pulse.drawn > 250) drawPulse();
}

export function drawPulse() {
  pulse.drawn = performance.now();
  const canvas = dom.pulse;
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(60, canvas.clientWidth || 240);
  const h = Math.max(20, canvas.clientHeight || 40);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const now = Math.floor(Date.now() / 1000);
  const series = [];
  for (let k = PULSE_SECONDS - 1; k >= 0; k--) {
    const s = now - k;
    const i = s % PULSE_SECONDS;
    series.push(pulse.secs[i] === s ? pulse.counts[i] : 0);
  }
  const max = Math.max(1, ...series);
  const total = series.reduce((a, b) => a + b, 0);
  const bw = w / PULSE_SECONDS;
  ctx.fillStyle = '#5c9cff';
  for (let k = 0; k < series.length; k++) {
    if (!series[k]) continue;
    const bh = Math.max(1, (series[k] / max) * (h - 6));
    ctx.fillRect(k * bw + 0.5, h - bh, Math.max(1, bw - 1), bh);
  }
  ctx.fillStyle = '#8b93a5';
  ctx.font = '10px system-ui, sans-serif';
  ctx.fillText(`${max}/s`, 3, 10);
  const rate = series[series.length - 2]; // the last whole second
  dom.pulseRate.textContent = rate.toLocaleString();
  dom.pulseTotal.textContent = total.toLocaleString();
  canvas.dataset.rate = rate;
  canvas.dataset.total = total;
  canvas.dataset.max = max;
}

setInterval(drawPulse, 1000);
