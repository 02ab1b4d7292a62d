// A refused form comes back with what was typed (the server keeps it in a cookie for the
// page after the redirect), but a cookie holds a few kilobytes: a long message, reason or
// justification did not fit and came back empty. This keeps a copy of what a form sends in
// the tab's sessionStorage; when the next page shows a refusal and a field of that form
// came back empty, the copy is put back. Never passwords, secrets or CSRF tokens; the copy
// is removed on the next page whatever it shows, and is ignored after two minutes.
//
// A page with several forms (a privacy request: answer, note, extend, assign) sends one
// at a time, and the page that comes back is drawn again: a long answer typed but not yet
// sent was lost to a note added beside it. The text areas of the forms *not* sent are
// kept too, and put back into the same fields of the page drawn again (same address),
// whatever the sent form's outcome.
(function () {
  var KEY = "tenantry.sent-form";
  var DRAFTS = "tenantry.drafts";
  var MAX_AGE_MS = 120000;
  var KEPT = /^(textarea|input)$/;
  var SKIPPED_TYPES = { password: 1, hidden: 1, file: 1, checkbox: 1, radio: 1, submit: 1, button: 1 };

  function keepable(field) {
    if (!field.name || !KEPT.test(field.tagName.toLowerCase())) { return false; }
    if (SKIPPED_TYPES[(field.type || "").toLowerCase()]) { return false; }
    return !/csrf|password|secret/i.test(field.name);
  }

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var store = storage();
    if (!store || !form || (form.method || "").toLowerCase() !== "post") { return; }
    var values = {};
    for (var i = 0; i < form.elements.length; i++) {
      var field = form.elements[i];
      if (keepable(field) && field.value) { values[field.name] = field.value; }
    }
    var which = form.querySelector('input[type="hidden"][name="form"]');
    try {
      store.setItem(KEY, JSON.stringify({
        action: form.getAttribute("action") || "",
        form: which ? which.value : "",
        at: Date.now(),
        values: values
      }));
    } catch (e) { /* full or refused: the cookie's copy is still there */ }
    var drafts = [];
    var forms = document.querySelectorAll("form");
    for (var f = 0; f < forms.length; f++) {
      if (forms[f] === form) { continue; }
      var other = forms[f].querySelector('input[type="hidden"][name="form"]');
      var areas = forms[f].querySelectorAll("textarea[name]");
      for (var a = 0; a < areas.length; a++) {
        if (areas[a].value && keepable(areas[a])) {
          drafts.push({
            action: forms[f].getAttribute("action") || "",
            form: other ? other.value : "",
            name: areas[a].name,
            value: areas[a].value
          });
        }
      }
    }
    try {
      if (drafts.length) {
        store.setItem(DRAFTS, JSON.stringify({ path: location.pathname, at: Date.now(), drafts: drafts }));
      } else {
        store.removeItem(DRAFTS);
      }
    } catch (e) { /* full or refused: nothing else to do */ }
  }, true);

  function formFor(action, which) {
    var forms = document.querySelectorAll("form");
    for (var i = 0; i < forms.length; i++) {
      var named = forms[i].querySelector('input[type="hidden"][name="form"]');
      if ((forms[i].getAttribute("action") || "") === action && (named ? named.value : "") === which) {
        return forms[i];
      }
    }
    return null;
  }

  // What the last page kept under ``key``, once (it is removed), while fresh; or null.
  function taken(key) {
    var store = storage();
    var raw = store && store.getItem(key);
    if (!raw) { return null; }
    store.removeItem(key);
    var kept;
    try { kept = JSON.parse(raw); } catch (e) { return null; }
    return kept && Date.now() - kept.at <= MAX_AGE_MS ? kept : null;
  }

  function restoreDrafts() {
    var kept = taken(DRAFTS);
    if (!kept || kept.path !== location.pathname) { return; }
    kept.drafts.forEach(function (draft) {
      var form = formFor(draft.action, draft.form);
      var field = form && form.elements.namedItem(draft.name);
      if (field && field.tagName && field.tagName.toLowerCase() === "textarea" && !field.value) {
        field.value = draft.value;
      }
    });
  }

  function restore() {
    var sent = taken(KEY);
    if (!sent) { return; }
    if (!document.querySelector('.field-error, .error-banner, [aria-invalid="true"]')) { return; }
    var form = formFor(sent.action, sent.form);
    if (!form) { return; }
    Object.keys(sent.values).forEach(function (name) {
      var field = form.elements.namedItem(name);
      if (field && field.tagName && keepable(field) && !field.value) {
        field.value = sent.values[name];
      }
    });
  }

  function restoreAll() {
    restore();
    restoreDrafts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", restoreAll);
  } else {
    restoreAll();
  }
})();
