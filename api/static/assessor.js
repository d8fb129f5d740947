// Keyboard shortcuts for the assessor page. No framework: the page works without this file
// (plain forms); the script only adds shortcuts and shows the active criterion's highlights.
(function () {
  "use strict";
  var crits = Array.prototype.slice.call(document.querySelectorAll("fieldset.criterion"));
  var active = 0;

  function setActive(i) {
    if (!crits.length) return;
    active = Math.max(0, Math.min(crits.length - 1, i));
    crits.forEach(function (f, j) { f.classList.toggle("active", j === active); });
    var cid = crits[active].dataset.crit;
    var views = document.querySelectorAll(".hl-view");
    if (views.length) {
      var any = false;
      views.forEach(function (v) { var on = v.dataset.crit === cid; v.hidden = !on; any = any || on; });
      document.querySelectorAll(".text.plain").forEach(function (p) { p.hidden = any; });
    }
    crits[active].scrollIntoView({ block: "nearest" });
  }

  function choose(digit) {
    var radios = crits[active].querySelectorAll("input[type=radio]");
    var pick = null;
    radios.forEach(function (r) { if (r.value === String(digit)) pick = r; });
    if (!pick && digit >= 1 && digit <= radios.length) pick = radios[digit - 1];
    if (pick) { pick.checked = true; pick.dispatchEvent(new Event("change", { bubbles: true })); }
  }

  function submitForm(id) {
    var f = document.getElementById(id);
    if (!f) return;
    if (f.requestSubmit) f.requestSubmit(); else f.submit();
  }

  crits.forEach(function (f, j) {
    f.addEventListener("focusin", function () { if (active !== j) setActive(j); });
    f.addEventListener("click", function () { if (active !== j) setActive(j); });
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    var typing = t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type !== "radio"));
    if (typing) {
      if (e.key === "Escape") { t.blur(); e.preventDefault(); }
      return;
    }
    var k = e.key;
    if (/^[0-9]$/.test(k) && crits.length) { choose(parseInt(k, 10)); e.preventDefault(); }
    else if (k === "n") { setActive(active + 1); e.preventDefault(); }
    else if (k === "p") { setActive(active - 1); e.preventDefault(); }
    else if (k === "Enter" && crits.length) {
      var ta = crits[active].querySelector("textarea"); if (ta) { ta.focus(); e.preventDefault(); }
    }
    else if (k === "s" && crits.length) { submitForm("score-form"); e.preventDefault(); }
    else if (k === "r" && crits.length) { submitForm("release-form"); e.preventDefault(); }
    else if (k === "k" && crits.length) { submitForm("skip-form"); e.preventDefault(); }
    else if (k === "c") { submitForm("claim-form"); e.preventDefault(); }
  });

  setActive(0);
})();
