// Vigil console: the key kept in this browser tab's session, sent as X-API-Key by every htmx
// request; the live event stream; dataset uploads with progress. No build step (docs/console.md).
"use strict";
(function () {
  const KEY = "vigil-api-key";
  const key = () => sessionStorage.getItem(KEY);
  const headers = () => ({ "X-API-Key": key() });

  function showLogin(message) {
    document.body.classList.add("signed-out");
    const note = document.getElementById("login-message");
    if (note && message) note.textContent = message;
  }

  async function signIn(event) {
    event.preventDefault();
    const input = document.getElementById("login-key");
    const answer = await fetch("/console/ui/me", { headers: { "X-API-Key": input.value.trim() } });
    if (!answer.ok) {
      const problem = await answer.json().catch(() => ({}));
      showLogin(problem.detail || `the API answered ${answer.status}`);
      return;
    }
    sessionStorage.setItem(KEY, input.value.trim());
    location.reload();
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    location.reload();
  }

  document.addEventListener("htmx:configRequest", (event) => {
    if (!key()) {
      event.preventDefault(); // nothing to ask without a key: the login form is shown instead
      return;
    }
    event.detail.headers["X-API-Key"] = key();
  });

  // A problem fragment is shown where the result would have been; a refused key asks again.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const status = event.detail.xhr.status;
    if (status === 401) {
      sessionStorage.removeItem(KEY);
      event.detail.shouldSwap = false;
      showLogin("the key was refused (unknown, revoked or expired); enter another");
    } else if (status >= 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // --- Live: the SSE stream read with fetch (EventSource cannot send a key header) ---------
  const scores = new Map(); // event id -> peak scores seen, for its curve

  function drawCurve(id) {
    const svg = document.getElementById(`curve-${id}`);
    const values = scores.get(id) || [];
    if (!svg || values.length === 0) return;
    const threshold = Number(svg.dataset.threshold || 0);
    const top = Math.max(threshold, ...values) * 1.1 || 1;
    const step = values.length > 1 ? 200 / (values.length - 1) : 0;
    const y = (v) => (40 - (v / top) * 38).toFixed(1);
    const points = values.map((v, i) => `${(i * step).toFixed(1)},${y(v)}`).join(" ");
    svg.innerHTML =
      `<line class="threshold" x1="0" x2="200" y1="${y(threshold)}" y2="${y(threshold)}"/>` +
      `<polyline points="${values.length > 1 ? points : `0,${y(values[0])} 200,${y(values[0])}`}"/>`;
  }

  function showEvent(data) {
    const id = data.event_id;
    const seen = scores.get(id) || [];
    seen.push(data.score);
    scores.set(id, seen);
    const existing = document.getElementById(`event-${id}`);
    const target = existing ? `#event-${id}` : "#live-events";
    const swap = existing ? "outerHTML" : "afterbegin";
    htmx.ajax("GET", `/console/ui/events/${id}/card`, { target, swap }).then(() => drawCurve(id));
    const note = document.getElementById("live-empty");
    if (note) note.remove();
  }

  function handleMessage(text) {
    let kind = "message";
    let data = "";
    for (const line of text.split("\n")) {
      if (line.startsWith("event:")) kind = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (kind === "event" && data) showEvent(JSON.parse(data));
    return kind;
  }

  async function follow(state) {
    const url = "/api/v1/events/stream";
    const init = { headers: { ...headers(), Accept: "text/event-stream" } };
    if (state.lastId) init.headers["Last-Event-ID"] = state.lastId;
    const response = await fetch(url, init);
    if (!response.ok) {
      const wait = retryAfterS(response);
      if (wait !== null) {
        // Busy (every stream slot taken): come back when the API says, not never.
        state.status.textContent = `busy (${response.status}): retrying in ${wait} s`;
        state.waitMs = wait * 1000;
        return true;
      }
      state.status.textContent = `stream refused: ${response.status}`;
      if (response.status === 401) showLogin("the key was refused; enter another");
      return false;
    }
    state.status.textContent = "connected";
    state.status.classList.add("ok");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const message = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const id = message.split("\n").find((l) => l.startsWith("id:"));
        if (id) state.lastId = id.slice(3).trim();
        handleMessage(message);
      }
    }
  }

  // Seconds a busy answer (503 or 429 with Retry-After, in seconds or as a date) asks the
  // client to wait, at least 1; null when the answer is not "busy, retry".
  function retryAfterS(response) {
    if (response.status !== 503 && response.status !== 429) return null;
    const value = (response.headers.get("Retry-After") || "").trim();
    if (/^\d+$/.test(value)) return Math.max(1, Number(value));
    const when = Date.parse(value);
    if (Number.isNaN(when)) return null;
    return Math.max(1, Math.ceil((when - Date.now()) / 1000));
  }

  async function startLive(element) {
    const state = { lastId: null, status: document.getElementById("live-status"), waitMs: 0 };
    // Reconnect after the stream ends (its time is up), the connection drops, or the API was
    // busy (after the wait it asked for).
    while (key()) {
      state.waitMs = 0;
      const again = await follow(state).catch(() => true);
      state.status.classList.remove("ok");
      if (!again) return;
      if (!state.waitMs) state.status.textContent = "reconnecting";
      await new Promise((resolve) => setTimeout(resolve, state.waitMs || 2000));
    }
  }

  // --- Datasets: an archive uploaded straight to the API, with its progress ------------------
  function upload(event) {
    event.preventDefault();
    const form = event.target;
    const name = form.elements.name.value.trim();
    const bar = document.getElementById("upload-progress");
    const result = document.getElementById("upload-result");
    const body = new FormData();
    body.append("archive", form.elements.file.files[0]);
    if (form.elements.description.value) body.append("description", form.elements.description.value);
    if (form.elements.video_fps.value) body.append("video_fps", form.elements.video_fps.value);
    const request = new XMLHttpRequest();
    request.open("POST", `/api/v1/datasets/${encodeURIComponent(name)}/versions`);
    request.setRequestHeader("X-API-Key", key());
    request.upload.onprogress = (p) => {
      if (p.lengthComputable) bar.value = Math.round((100 * p.loaded) / p.total);
    };
    request.onload = () => {
      const answer = JSON.parse(request.responseText || "{}");
      if (request.status < 300) {
        bar.value = 100;
        result.className = "done";
        result.textContent = `${name}: version ${answer.version.slice(0, 12)}, ${answer.n_items} images${answer.created ? "" : " (already stored)"}`;
        htmx.trigger(document.body, "datasets-changed");
      } else {
        result.className = "problem";
        result.textContent = `${answer.title || request.status}: ${answer.detail || request.statusText}`;
      }
    };
    request.onerror = () => { result.className = "problem"; result.textContent = "the upload failed: no answer"; };
    bar.value = 0;
    result.textContent = "uploading…";
    request.send(body);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("login-form").addEventListener("submit", signIn);
    document.getElementById("sign-out").addEventListener("click", signOut);
    if (!key()) {
      showLogin();
      return;
    }
    const live = document.getElementById("live-events");
    if (live) startLive(live);
    // The upload form arrives as a fragment (only for a key that may upload).
    document.addEventListener("submit", (event) => {
      if (event.target.id === "upload-form") upload(event);
    });
  });
})();
