// "Select all on this page" for a table of checkboxes (the members list's bulk actions): a
// header box with data-select-all="PREFIX" ticks or clears every box of its form whose name
// starts with PREFIX, shows "some" when only some are ticked, and a status element
// (data-selected-count="PREFIX") says how many are ticked. Without JavaScript the header box
// stays hidden and boxes are ticked one by one.
document.querySelectorAll("input[type=checkbox][data-select-all]").forEach(function (all) {
  var prefix = all.getAttribute("data-select-all");
  var form = all.form || all.closest("form");
  if (!form) { return; }
  var boxes = Array.prototype.filter.call(form.querySelectorAll("input[type=checkbox]"), function (box) {
    return box !== all && (box.name || "").indexOf(prefix) === 0;
  });
  var counts = document.querySelectorAll('[data-selected-count="' + prefix + '"]');
  function show() {
    var ticked = boxes.filter(function (box) { return box.checked; }).length;
    all.checked = ticked > 0 && ticked === boxes.length;
    all.indeterminate = ticked > 0 && ticked < boxes.length;
    counts.forEach(function (el) {
      el.textContent = ticked === 0 ? "None selected." : ticked + (ticked === 1 ? " member selected." : " members selected.");
    });
  }
  all.hidden = false;
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
    show();
  });
  boxes.forEach(function (box) { box.addEventListener("change", show); });
  show();
});
