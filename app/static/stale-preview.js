// A preview shown beside the form it previews (policies' impact, a departure's plan) has
// its own Confirm button, which saves what was previewed. Changing the form afterwards
// left that button saving the old values while the form showed new ones (an admin
// previewed "On", switched to "Off, locked" and saved "On" for 223 members). Any change
// to a form marked data-preview="SELECTOR" takes the preview away and says why; and a
// preview that was still on its way when the form changed is not shown at all.
(function () {
  var NOTE = "The form has changed since this preview: preview again to see what it does before saving.";
  var edits = new WeakMap();  // form -> how many changes so far
  var sentAt = new WeakMap();  // form -> the count when its preview was asked for

  function say(form) {
    var slot = document.querySelector(form.getAttribute("data-preview"));
    if (!slot) { return; }
    slot.innerHTML = "";
    var note = document.createElement("p");
    note.className = "notice";
    note.setAttribute("role", "status");
    note.textContent = NOTE;
    slot.appendChild(note);
  }
  function changed(event) {
    var form = event.target.closest && event.target.closest("form[data-preview]");
    if (!form) { return; }
    edits.set(form, (edits.get(form) || 0) + 1);
    var slot = document.querySelector(form.getAttribute("data-preview"));
    if (slot && slot.querySelector("form")) { say(form); }
  }
  document.addEventListener("input", changed);
  document.addEventListener("change", changed);
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.matches && form.matches("form[data-preview]")) {
      sentAt.set(form, edits.get(form) || 0);
    }
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!form || !form.matches || !form.matches("form[data-preview]")) { return; }
    if ((edits.get(form) || 0) !== sentAt.get(form)) {
      event.detail.shouldSwap = false;  // the answer is about a form no longer shown
      say(form);
    }
  });
})();
