// A preview shown beside the form it previews (policies' impact, a departure's plan) has
// its own Confirm button, which saves what was previewed. Changing the form afterwards
// left that button saving the old values while the form showed new ones (an admin
// previewed "On", switched to "Off, locked" and saved "On" for 223 members). Any change
// to a form marked data-preview="SELECTOR" now takes the preview away and says why.
(function () {
  function stale(event) {
    var form = event.target.closest && event.target.closest("form[data-preview]");
    if (!form) { return; }
    var slot = document.querySelector(form.getAttribute("data-preview"));
    if (!slot || !slot.querySelector("form")) { return; }
    slot.innerHTML = "";
    var note = document.createElement("p");
    note.className = "notice";
    note.setAttribute("role", "status");
    note.textContent = "The form has changed since this preview: preview again to see what it does before saving.";
    slot.appendChild(note);
  }
  document.addEventListener("input", stale);
  document.addEventListener("change", stale);
})();
