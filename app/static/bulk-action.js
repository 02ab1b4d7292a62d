// The members list's bulk actions: only the field the chosen action needs is shown (the
// unit for a move, the group, the product); the others are hidden and disabled, so they
// are not sent. Without JavaScript every field shows and the server takes the one it needs.
(function () {
  var action = document.getElementById("bulk-action");
  if (!action) { return; }
  var parts = document.querySelectorAll("[data-bulk-for]");
  function show() {
    parts.forEach(function (part) {
      var wanted = part.getAttribute("data-bulk-for").split(" ").indexOf(action.value) !== -1;
      part.hidden = !wanted;
      part.querySelectorAll("input, select").forEach(function (field) { field.disabled = !wanted; });
    });
  }
  action.addEventListener("change", show);
  show();
})();
