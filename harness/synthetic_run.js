// A long run fed to the page's own message handler, and a probe of the page's main thread.
// Loaded into the page by harness/synthetic_run.py (see there).

window.syntheticRun = {
  /** Feed a run from step `o.start`: its snapshot, then steps messages as the server sends them. */
  async feed([run, opts]) {
    const { handleMessage } = await import("/static/js/events.js");
    const o = { start: 1_000_000, evalEvery: 500, rate: 3000, hz: 10, maxSteps: 2_000_000, noiseEvery: 3, ...opts };
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const loss = (s) => 2.05 + 0.6 * Math.exp(-s / 30000) + 0.4 * (rand() - 0.5);
    const evalLoss = (s, d) => 2.1 + d + 0.5 * Math.exp(-s / 30000);
    const chars = [".", ..."abcdefghijklmnopqrstuvwxyz"];
    const map = (s) => ({
      type: "embeddings",
      step: s,
      method: "pca",
      chars,
      x: chars.map((_, i) => Math.sin(i + s / 1e5)),
      y: chars.map((_, i) => Math.cos(1.7 * i + s / 1e5)),
    });
    const noisy = (s) => (s / o.evalEvery) % o.noiseEvery === 0;

    // the history as the server downsamples it: the min and max of groups of steps
    const history = { step: [], loss: [], lr: [], time: [], n_steps: o.start };
    const groups = 1000;
    const width = Math.max(1, Math.floor(o.start / groups));
    for (let a = 0; a < o.start; a += width) {
      const b = Math.min(o.start - 1, a + width - 1);
      for (const s of a === b ? [a] : [a, b]) {
        history.step.push(s);
        history.loss.push(loss(s));
        history.lr.push(0.1);
        history.time.push(s / o.rate);
      }
    }
    const evals = [];
    for (let s = 0; s <= o.start; s += o.evalEvery) {
      evals.push([s, evalLoss(s, 0), evalLoss(s, 0.05), noisy(s) ? 300 + (s % 97) : null]);
    }
    const schedule = { kind: "constant" };
    handleMessage({
      type: "snapshot",
      reason: "connect",
      history,
      evals,
      embeddings: map(o.start),
      lrfind: null,
      run: { ...run, status: "running", detail: "", step: o.start, config: { ...run.config, max_steps: o.maxSteps } },
      changes: [{ step: 0, lr: 0.1, batch_size: 32, eval_every: o.evalEvery, schedule, max_steps: o.maxSteps }],
    });

    let next = o.start;
    const per = Math.max(1, Math.round(o.rate / o.hz));
    const tick = () => {
      const step = [], losses = [], lr = [];
      for (let s = next; s < next + per; s++) {
        step.push(s);
        losses.push(Math.round(loss(s) * 1e5) / 1e5);
        lr.push(0.1);
      }
      const firstEval = Math.ceil(next / o.evalEvery) * o.evalEvery;
      next += per;
      handleMessage({ type: "steps", step, loss: losses, lr, time: next / o.rate, steps_per_s: o.rate, examples_per_s: 32 * o.rate });
      for (let s = firstEval; s < next; s += o.evalEvery) {
        handleMessage({ type: "eval", step: s, train_loss: evalLoss(s, 0), dev_loss: evalLoss(s, 0.05), ms: 10 });
        if (noisy(s)) handleMessage({ type: "noise", step: s, b_noise: 300 + (s % 97) });
        handleMessage(map(s));
      }
    };
    const timer = setInterval(tick, 1000 / o.hz);
    window.synthetic = { stop: () => clearInterval(timer), get step() { return next; } };
    return next;
  },

  /** Long tasks (> 50 ms), each Plotly.react's synchronous time, and Sample's round trip: from
   *  the submit event (the user's click) to the button saying "Sample" again. (No frame counter:
   *  a requestAnimationFrame loop would make the page render every frame, and so measure itself.) */
  installProbe() {
    const probe = { longtasks: [], redraws: {}, since: performance.now(), samples: [] };
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) probe.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: "longtask" });
    const react = window.Plotly.react;
    window.Plotly.react = function (el, ...rest) {
      const t0 = performance.now();
      const out = react.call(this, el, ...rest);
      (probe.redraws[el.id] ||= []).push(performance.now() - t0);
      return out;
    };
    const button = document.getElementById("sample-button");
    let asked = null;
    document.getElementById("sample-form").addEventListener("submit", (e) => (asked = e.timeStamp), true);
    new MutationObserver(() => {
      if (asked !== null && button.textContent === "Sample") {
        probe.samples.push(performance.now() - asked);
        asked = null;
      }
    }).observe(button, { childList: true, characterData: true, subtree: true });
    probe.reset = () => Object.assign(probe, { longtasks: [], redraws: {}, since: performance.now() });
    window.probe = probe;
  },

  readProbe() {
    const p = window.probe;
    const now = performance.now();
    let busy = 0;
    for (const [start, duration] of p.longtasks) busy += Math.max(0, Math.min(start + duration, now) - Math.max(start, p.since));
    const seconds = (now - p.since) / 1000;
    return {
      seconds,
      longtask_ms: busy,
      longtask_share: busy / (now - p.since),
      longtasks: p.longtasks.length,
      longest_ms: Math.max(0, ...p.longtasks.map(([, d]) => d)),
      redraws: p.redraws,
      samples: p.samples,
    };
  },
};
