// The assessor page's script. No framework, and the page works without it (plain forms and redirects).
// It adds: keyboard shortcuts, the active criterion's highlights, the machine's level in one key,
// a local draft of levels and rationales (kept through reloads, expired leases and network failures),
// lease renewal while the assessor is active with a visible countdown, and submits that never replace
// the page with the browser's offline page. The lead's resolve page uses the same form shape (one
// criterion, no lease): digits, the rationale, the draft and the submit.
(function () {
  "use strict";
  var form = document.getElementById("score-form");
  var lead = !!(form && form.dataset.lead);  // the lead's resolve page: one criterion, digits, rationale, submit
  var crits = Array.prototype.slice.call(document.querySelectorAll("fieldset.criterion"));
  var live = document.getElementById("live");
  var active = 0;
  var hlIndex = -1;
  // A request the server never answers (a stalled proxy, a half-open connection) is treated as no
  // connection after this long, so the page says so and retries instead of waiting forever.
  var REQUEST_TIMEOUT_MS = 15000;

  function post(url, body) {
    var ctl = typeof AbortController === "function" ? new AbortController() : null;
    var t = ctl ? setTimeout(function () { ctl.abort(); }, REQUEST_TIMEOUT_MS) : null;
    return fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { Accept: "application/json" },
      signal: ctl ? ctl.signal : undefined })
      .then(function (r) {
        return r.json().then(function (j) { return { status: r.status, body: j }; }, function () {
          var err = new Error("HTTP " + r.status);  // the server (or a proxy) answered, but not with the page's JSON
          err.status = r.status;
          throw err;
        });
      })
      .finally(function () { clearTimeout(t); });
  }

  function unreachable(err) {
    // a network failure, or an answer that is not the page's JSON (a crash, a proxy's 502 page): said as it is
    return err && err.status ? "The server answered with an error (HTTP " + err.status + ")" : "No connection to the server";
  }

  function say(text, kind, near) {
    // the live region at the top (read out by screen readers), and a copy where the assessor is looking
    // (above the criterion's levels or the submit buttons): on a phone the top is far away
    document.querySelectorAll(".near-msg").forEach(function (e) { e.parentNode.removeChild(e); });
    if (live) {
      live.textContent = text;
      live.className = "msg " + (kind || "ok") + (near ? " sr-only" : "");  // shown once, where it matters
      live.hidden = false;
    }
    if (near) {
      var p = document.createElement("p");
      p.className = "msg near-msg " + (kind || "ok");
      p.textContent = text;
      near.parentNode.insertBefore(p, near);
      scrollWithin(p, "nearest");
    }
  }

  function nearCrit(f) { return f ? f.querySelector(".levels") : null; }
  function nearActions() { return form ? form.querySelector(".actions") : null; }

  // -- criteria and highlights ------------------------------------------------------------------
  function pane(el) {
    while (el && !(el.classList && el.classList.contains("pane"))) el = el.parentElement;
    return el;
  }

  function scrollWithin(el, where) {
    // scroll only the pane holding el (the evidence or the rubric), never the whole window
    var p = pane(el);
    if (!p || p.scrollHeight <= p.clientHeight) { el.scrollIntoView({ block: "nearest" }); return; }
    var pr = p.getBoundingClientRect(), er = el.getBoundingClientRect();
    if (where === "nearest") {
      if (er.top < pr.top) p.scrollTop += er.top - pr.top - 8;
      else if (er.bottom > pr.bottom) p.scrollTop += Math.min(er.bottom - pr.bottom + 8, er.top - pr.top - 8);
    } else {
      p.scrollTop += (er.top - pr.top) - p.clientHeight / 3;
    }
  }

  function marks() {
    var v = document.querySelector(".hl-view:not([hidden])");
    return v ? Array.prototype.slice.call(document.querySelectorAll(".hl-view:not([hidden]) mark")) : [];
  }

  function gotoHighlight(step, bringPane) {
    var ms = marks();
    if (!ms.length) {  // said beside the criterion, not in a banner that pushes the page down
      var blind = form && form.dataset.blind === "1";
      say(blind ? "Highlights are hidden on blind items: they come from the machine's reading." :
          "No highlights for this criterion.", "warn", crits.length ? nearCrit(crits[active]) : null);
      return;
    }
    ms.forEach(function (m) { m.classList.remove("current"); });
    hlIndex = ((hlIndex + step) % ms.length + ms.length) % ms.length;
    ms[hlIndex].classList.add("current");
    if (bringPane) {  // asked for with ] or [: on a phone the evidence may be above the window
      var p = pane(ms[hlIndex]), r = p ? p.getBoundingClientRect() : null;
      if (r && (r.top < 0 || r.bottom > window.innerHeight)) p.scrollIntoView({ block: "nearest" });
    }
    scrollWithin(ms[hlIndex], "center");
  }

  function setActive(i, quiet) {
    if (!crits.length) return;
    active = Math.max(0, Math.min(crits.length - 1, i));
    crits.forEach(function (f, j) { f.classList.toggle("active", j === active); });
    var cid = crits[active].dataset.crit;
    var views = document.querySelectorAll(".hl-view");
    if (views.length) {
      var fields = {};
      views.forEach(function (v) { var on = v.dataset.crit === cid; v.hidden = !on; if (on) fields[v.dataset.field] = true; });
      document.querySelectorAll(".view.plain").forEach(function (p) { p.hidden = !!fields[p.dataset.field]; });
      var name = document.getElementById("hl-crit");
      if (name) name.textContent = Object.keys(fields).length ? crits[active].dataset.title : crits[active].dataset.title + " (none)";
      hlIndex = -1;
      if (!quiet && marks().length) gotoHighlight(1);
    }
    if (!quiet) scrollWithin(crits[active], "nearest");
  }

  // -- levels, the machine's level and when a rationale is needed ----------------------------------
  function scale(f) { return (f.dataset.scale || "").split(",").filter(function (x) { return x !== ""; }); }

  function chosen(f) {
    var r = f.querySelector("input[type=radio]:checked");
    return r ? r.value : null;
  }

  function updateRationale(f) {
    if (!form) return;
    var rule = form.dataset.rule, lv = chosen(f), ta = f.querySelector("textarea"), tag = f.querySelector(".req");
    var sc = scale(f), lowest = sc.length ? String(Math.min.apply(null, sc.map(Number))) : null;
    var m = f.dataset.machine, why = "";
    if (rule === "always") why = "required";
    else if (rule !== "never" && lv !== null) {
      if (m !== undefined && lv !== m) why = "required: differs from the machine's level";
      else if (rule === "disagreement_or_lowest" && lv === lowest) why = "required: lowest level";
    }
    ta.required = !!why;
    tag.textContent = why ? "(" + why + ")" : "(optional)";
    tag.classList.toggle("needed", !!why);
  }

  function choose(digit) {
    var f = crits[active], pick = null;
    f.querySelectorAll("input[type=radio]").forEach(function (r) { if (r.value === String(digit)) pick = r; });
    if (!pick) {  // never clamp: an out-of-scale key is refused, visibly
      say(digit + " is not a level of \u201c" + f.dataset.title + "\u201d: its levels are " + scale(f).join(", ") + ".", "warn", nearCrit(f));
      return false;
    }
    pick.checked = true;
    pick.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function acceptMachine(f) {
    if (f.dataset.machine === undefined) { say("There is no machine level to accept on this item.", "warn", nearCrit(f)); return; }
    active = crits.indexOf(f);
    if (choose(f.dataset.machine)) say("Accepted the machine's level " + f.dataset.machine + " for \u201c" + f.dataset.title + "\u201d.");
  }

  // -- the local draft ---------------------------------------------------------------------------
  // A draft is one assessor's: on a shared computer, whoever claims the item after a lost lease must not
  // get the previous holder's levels and rationales (their rating would no longer be independent).
  var draftKey = form ? "rs-draft:" + form.dataset.item : null;
  var who = form ? form.dataset.who : null;

  function saveDraft() {
    if (!draftKey) return;
    var d = { who: who, levels: {}, why: {}, at: Date.now() };
    crits.forEach(function (f) {
      var c = f.dataset.crit, lv = chosen(f), ta = f.querySelector("textarea");
      if (lv !== null) d.levels[c] = lv;
      if (ta && ta.value) d.why[c] = ta.value;
    });
    try { localStorage.setItem(draftKey, JSON.stringify(d)); } catch (e) { /* storage full or disabled */ }
  }

  function restoreDraft() {
    if (!draftKey) return;
    var raw = null;
    try { raw = localStorage.getItem(draftKey); } catch (e) { return; }
    if (!raw) return;
    var d;
    try { d = JSON.parse(raw); } catch (e) { return; }
    if (!d || d.who !== who) { clearDraft(); return; }  // another person's (the item is yours now): never shown
    var n = 0;
    crits.forEach(function (f) {
      var c = f.dataset.crit, ta = f.querySelector("textarea");
      if (d.levels && d.levels[c] !== undefined && chosen(f) === null) {
        f.querySelectorAll("input[type=radio]").forEach(function (r) { if (r.value === d.levels[c]) { r.checked = true; n++; } });
      }
      if (d.why && d.why[c] && ta && !ta.value) { ta.value = d.why[c]; n++; }
    });
    if (n) say("Your draft for this item was restored from this device (saved " + new Date(d.at).toLocaleTimeString() + ").");
  }

  function clearDraft() { if (draftKey) try { localStorage.removeItem(draftKey); } catch (e) { /* ignore */ } }

  // -- the lease ---------------------------------------------------------------------------------
  var timer = document.getElementById("lease-left");
  var leaseBox = document.getElementById("lease");
  var deadline = null, renewing = false, lastRenew = Date.now(), activeSince = 0, lost = false;
  var leaseSeconds = timer ? Number(timer.dataset.seconds) : 0;
  var renewEvery = Math.max(1, Math.min(60, leaseSeconds / 3)) * 1000;
  if (timer) deadline = Date.now() + Number(timer.dataset.left) * 1000;

  function setToken(tok) {
    document.querySelectorAll("input[name=lease_token]").forEach(function (i) { i.value = tok; });
  }

  var warned = false;

  function tick() {
    if (!timer || deadline === null) return;
    var left = Math.round((deadline - Date.now()) / 1000);
    var text = left > 0 ? Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2) : "expired";
    timer.textContent = text;
    leaseBox.classList.toggle("low", left <= 60);
    document.querySelectorAll(".lease-copy").forEach(function (c) { c.textContent = text; });  // beside the buttons
    // "Lease 4:59 left", but "Lease expired"
    document.querySelectorAll(".lease-word").forEach(function (w) { w.hidden = left <= 0; });
    if (left <= 0 && !warned && !lost) {  // said where the assessor is working, not only in the header
      warned = true;
      say("Your lease on this item expired while you were away. Keep working: when you continue or submit, the " +
          "item is taken back if nobody else has claimed it, and your draft is kept on this device.", "warn",
          nearCrit(crits[active]));
    }
    if (left > 0) warned = false;
    if (activeSince > lastRenew && !lost && (Date.now() - lastRenew > renewEvery || left <= 0)) renew();
  }

  function renew() {
    if (renewing || !form) return;
    renewing = true;
    var body = new URLSearchParams({ lease_token: document.getElementById("lease-token").value });
    post("/assessor/items/" + form.dataset.item + "/renew", body)
      .then(function (res) {
        lastRenew = Date.now();
        if (res.body.ok) {
          setToken(res.body.lease_token);
          deadline = Date.now() + res.body.seconds_left * 1000;
        } else if (res.body.login) {
          // the session ended (logged out elsewhere, key revoked): say so once; renewing resumes after a new login
          say(res.body.message + ".", "err", nearActions());
        } else {
          lost = true;
          say(res.body.message + ". Your levels and rationales stay saved on this device.", "err", nearActions());
        }
      })
      .catch(function () { lastRenew = Date.now(); })  // offline: the next activity tries again
      .then(function () { renewing = false; tick(); });
  }

  // -- submitting without losing anything --------------------------------------------------------
  var retryTimer = null, pending = null, inFlight = false;

  function send(then) {
    saveDraft();
    if (inFlight) return;  // a double click sends once: the second would only be told it was already submitted
    inFlight = true;
    var data = new URLSearchParams(new FormData(form));
    if (then) data.set("then", then);
    pending = then;
    post(form.action, data)
      .then(function (res) {
        inFlight = false;
        pending = null;
        if (res.body.ok) { clearDraft(); window.location.href = res.body.next; return; }
        if (res.body.lost) lost = true;
        say(res.body.message + (res.body.lost ? ". Your levels and rationales stay saved on this device." : ""),
            res.body.lost ? "err" : "warn", nearActions());
      })
      .catch(function (err) {
        inFlight = false;
        say(unreachable(err) + ": nothing was lost, your levels and rationales are saved on this device. " +
            "Retrying every 5 seconds (or submit again, key s, to retry now).", "err", nearActions());
        clearTimeout(retryTimer);
        retryTimer = setTimeout(function () { if (pending !== null) send(pending || ""); }, 5000);
      });
  }

  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!form.reportValidity()) return;
      var then = e.submitter && e.submitter.name === "then" ? e.submitter.value : "";
      send(then);
    });
    form.addEventListener("input", saveDraft);
    form.addEventListener("change", function (e) {
      var f = e.target.closest("fieldset.criterion");
      if (f) updateRationale(f);
      saveDraft();
    });
    form.querySelectorAll("button.accept").forEach(function (b) {
      b.addEventListener("click", function () { acceptMachine(b.closest("fieldset.criterion")); });
    });
    window.addEventListener("online", function () { if (pending !== null) send(pending || ""); });
  }

  // -- release and skip: asked first when there is typed work, the draft cleared only once the server agreed --
  function typedWork() {
    return crits.some(function (f) {
      var ta = f.querySelector("textarea");
      return chosen(f) !== null || !!(ta && ta.value.trim());
    });
  }

  function leave(lf, skip) {
    var ask = skip ? "Skip this item? It will never be offered to you again, and the levels and rationales you " +
        "typed for it will be discarded." :
        "Release this item back to the queue? The levels and rationales you typed for it will be discarded.";
    if (typedWork() && !window.confirm(ask)) {
      say("Nothing was " + (skip ? "skipped" : "released") + ": your levels and rationales are still here.", "ok",
          nearActions());
      return;
    }
    post(lf.action, new URLSearchParams(new FormData(lf)))
      .then(function (res) {
        if (res.body.ok) { clearDraft(); window.location.href = res.body.next; return; }
        var m = res.body.message;
        say(/saved on this device/.test(m) ? m : m + ". Your levels and rationales stay saved on this device.", "err",
            nearActions());
      })
      .catch(function (err) {
        say(unreachable(err) + ": the item was not " + (skip ? "skipped" : "released") + ", and your " +
            "levels and rationales stay saved on this device. Try again in a moment.", "err", nearActions());
      });
  }

  [["release-form", false], ["skip-form", true]].forEach(function (x) {
    var lf = document.getElementById(x[0]);
    if (lf) lf.addEventListener("submit", function (e) { e.preventDefault(); leave(lf, x[1]); });
  });

  crits.forEach(function (f, j) {
    f.addEventListener("focusin", function () { if (active !== j) setActive(j, true); });
    f.addEventListener("click", function () { if (active !== j) setActive(j, true); });
  });

  ["keydown", "input", "click", "change"].forEach(function (ev) {
    document.addEventListener(ev, function () { activeSince = Date.now(); }, true);
  });

  function submitForm(id) {
    var f = document.getElementById(id);
    if (!f) return;
    if (f.requestSubmit) f.requestSubmit(); else f.submit();
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target, tag = t && t.tagName;
    var typing = tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && t.type !== "radio");
    if (typing) {
      if (e.key === "Escape") {  // back to the criterion (its fieldset), so Tab goes on from here, not the top
        var home = t.closest ? t.closest("fieldset.criterion") : null;
        if (home) home.focus({ preventScroll: true }); else t.blur();
        e.preventDefault();
      }
      return;
    }
    var k = e.key;
    if ((tag === "BUTTON" || tag === "A") && (k === "Enter" || k === " ")) return;
    if (/^[0-9]$/.test(k) && crits.length) { choose(k); e.preventDefault(); }
    else if (lead && (k === "a" || k === "]" || k === "[")) { /* the lead's page: no accept, no highlights */ }
    else if (k === "a" && crits.length) { acceptMachine(crits[active]); e.preventDefault(); }
    else if (k === "n") { setActive(active + 1); e.preventDefault(); }
    else if (k === "p") { setActive(active - 1); e.preventDefault(); }
    else if (k === "]" && crits.length) { gotoHighlight(1, true); e.preventDefault(); }
    else if (k === "[" && crits.length) { gotoHighlight(-1, true); e.preventDefault(); }
    else if (k === "Enter" && crits.length) {
      var ta = crits[active].querySelector("textarea"); if (ta) { ta.focus(); e.preventDefault(); }
    }
    else if (k === "s" && crits.length) { submitForm("score-form"); e.preventDefault(); }
    else if (k === "r" && crits.length) { submitForm("release-form"); e.preventDefault(); }
    else if (k === "k" && crits.length) { submitForm("skip-form"); e.preventDefault(); }
    else if (k === "c" && !crits.length) { submitForm("claim-form"); e.preventDefault(); }
  });

  restoreDraft();
  crits.forEach(updateRationale);
  setActive(0, true);
  if (marks().length === 0 && document.querySelector(".hl-view")) { /* nothing to jump to */ }
  if (timer) { tick(); setInterval(tick, 1000); }
})();
