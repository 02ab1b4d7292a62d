// A refused form comes back with what was typed (the server keeps it in a cookie for the
// page after the redirect), but a cookie holds a few kilobytes: a long message, reason or
// justification did not fit and came back empty. This keeps a copy of what a form sends in
// the tab's sessionStorage; when the next page shows a refusal and a field of that form
// came back empty, the copy is put back. Never passwords, secrets or CSRF tokens; the copy
// is removed on the next page whatever it shows, and is ignored after two minutes.
(function () {
  var KEY = "tenantry.sent-form";
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
  }, true);

  function restore() {
    var store = storage();
    if (!store) { return; }
    var raw = store.getItem(KEY);
    if (!raw) { return; }
    store.removeItem(KEY);
    var sent;
    try { sent = JSON.parse(raw); } catch (e) { return; }
    if (!sent || Date.now() - sent.at > MAX_AGE_MS) { return; }
    if (!document.querySelector('.field-error, .error-banner, [aria-invalid="true"]')) { return; }
    var forms = document.querySelectorAll("form");
    for (var i = 0; i < forms.length; i++) {
      var form = forms[i];
      var which = form.querySelector('input[type="hidden"][name="form"]');
      if ((form.getAttribute("action") || "") !== sent.action) { continue; }
      if ((which ? which.value : "") !== sent.form) { continue; }
      Object.keys(sent.values).forEach(function (name) {
        var field = form.elements.namedItem(name);
        if (field && field.tagName && keepable(field) && !field.value) {
          field.value = sent.values[name];
        }
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", restore);
  } else {
    restore();
  }
})();
